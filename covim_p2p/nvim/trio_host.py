"""trio in guest mode on pynvim's asyncio loop: one thread, so the pycrdt Doc needs no locks.

Rules (DESIGN.md section 3): never block a pynvim handler waiting on trio; reach
Neovim from trio only through ``nvim.async_call``; and supervise every task,
because an uncaught exception would otherwise kill the nursery silently while
the plugin looks alive.
"""

from __future__ import annotations

import traceback
from typing import Awaitable, Callable

import trio


class TrioHost:
    def __init__(self, loop, report: Callable[[str], None]) -> None:
        self._loop = loop
        self._report = report
        self._nursery: trio.Nursery | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._pending: list[tuple[Callable[[], Awaitable[None]], str, trio.CancelScope]] = []
        self.finished = False

    def start(self) -> None:
        async def main() -> None:
            self._token = trio.lowlevel.current_trio_token()
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for fn, what, scope in self._pending:
                    nursery.start_soon(self._supervised, fn, what, scope)
                self._pending.clear()
                await trio.sleep_forever()

        def done(outcome) -> None:
            self.finished = True
            try:
                outcome.unwrap()
            except BaseException as exc:  # noqa: BLE001 - report, never raise into asyncio
                if not isinstance(exc, trio.Cancelled):
                    self._report(f"network engine stopped: {type(exc).__name__}: {exc}")

        trio.lowlevel.start_guest_run(
            main,
            run_sync_soon_threadsafe=self._loop.call_soon_threadsafe,
            run_sync_soon_not_threadsafe=self._loop.call_soon,
            done_callback=done,
            host_uses_signal_set_wakeup_fd=True,
        )

    def spawn(self, fn: Callable[[], Awaitable[None]], what: str) -> trio.CancelScope:
        """Start ``fn`` as a supervised task; cancel it with the returned scope."""
        scope = trio.CancelScope()
        if self._nursery is None:
            self._pending.append((fn, what, scope))
        else:
            self.run_soon(lambda: self._nursery.start_soon(self._supervised, fn, what, scope))
        return scope

    def run_soon(self, fn: Callable[[], None]) -> None:
        if self._token is None:
            self._loop.call_soon_threadsafe(lambda: self.run_soon(fn))
            return
        try:
            self._token.run_sync_soon(fn)
        except trio.RunFinishedError:
            pass

    def cancel(self, scope: trio.CancelScope) -> None:
        self.run_soon(scope.cancel)

    def stop(self) -> None:
        if self._nursery is not None:
            self.run_soon(self._nursery.cancel_scope.cancel)

    async def _supervised(self, fn, what: str, scope: trio.CancelScope) -> None:
        with scope:
            try:
                await fn()
            except Exception as exc:  # noqa: BLE001
                self._report(f"{what} failed: {type(exc).__name__}: {exc}")
                traceback.print_exc()
