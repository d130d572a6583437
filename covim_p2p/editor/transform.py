"""Reconciling a local edit with remote edits the buffer has not shown yet.

The document is ahead of the buffer by ``pending`` (remote edits waiting for
Neovim to accept them at the right changedtick).  A user keystroke that lands
meanwhile is relative to the buffer, not the document.  For the common case,
edits in different places, we shift each past the other (a two-edit
operational transform).  When the ranges overlap there is no unique answer:
we map the local edit's ends through the remote ones, apply that, and let the
caller bring the buffer to the document with a plain text diff, so buffer and
document can never disagree.
"""

from __future__ import annotations

from .edits import TextEdit


def _nbytes(text: str) -> int:
    return len(text.encode("utf-8"))


def map_offset(pos: int, edit: TextEdit) -> int:
    """Where byte position ``pos`` ends up after ``edit`` (inside a replaced range: after the insert)."""
    end = edit.offset + edit.delete
    if pos <= edit.offset:
        return pos
    if pos >= end:
        return pos + _nbytes(edit.insert) - edit.delete
    return edit.offset + _nbytes(edit.insert)


def _shift(edit: TextEdit, by: int) -> TextEdit:
    return TextEdit(edit.offset + by, edit.delete, edit.insert)


def transform_pair(local: TextEdit, remote: TextEdit) -> tuple[TextEdit, TextEdit] | None:
    """(local', remote') with remote∘local' == local∘remote', or None when they overlap."""
    if local.offset + local.delete <= remote.offset:
        return local, _shift(remote, _nbytes(local.insert) - local.delete)
    if remote.offset + remote.delete <= local.offset:
        return _shift(local, _nbytes(remote.insert) - remote.delete), remote
    return None


def transform_local(local: TextEdit, pending: list[TextEdit]) -> tuple[TextEdit, list[TextEdit] | None]:
    """Rebase ``local`` onto the document; also rebase ``pending`` onto the buffer (None: overlap, diff instead)."""
    rebased: list[TextEdit] | None = []
    current = local
    for remote in pending:
        pair = transform_pair(current, remote) if rebased is not None else None
        if pair is None:
            rebased = None
            start = map_offset(current.offset, remote)
            end = max(start, map_offset(current.offset + current.delete, remote))
            current = TextEdit(start, end - start, current.insert)
        else:
            current, remote_after = pair
            rebased.append(remote_after)
    return current, rebased
