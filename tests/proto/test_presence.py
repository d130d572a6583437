from covim_p2p.proto.document import SharedDocument
from covim_p2p.proto.presence import AWARENESS_OUTDATED, AWARENESS_RENEW, Presence


def two():
    a_doc, b_doc = SharedDocument(1, "hello wörld"), SharedDocument(2)
    b_doc.doc.apply_update(a_doc.doc.get_update())  # the text, document to document
    return Presence(a_doc, "alice", 0.0), Presence(b_doc, "bob", 0.0)


def test_a_cursor_travels_as_a_byte_offset_with_the_name():
    alice, bob = two()
    alice.dirty = False
    alice.set_cursor(7, 9, 1.0)
    assert alice.dirty
    new = bob.apply(alice.own_update(), origin=7, now=1.0)
    assert new == {1} and bob.changed
    assert bob.cursors() == [(1, "alice", 7, 9)]
    alice.dirty = False
    alice.set_cursor(7, 9, 2.0)  # no move, no news
    assert not alice.dirty


def test_a_peers_state_goes_when_its_link_drops_or_it_falls_silent():
    alice, bob = two()
    bob.apply(alice.own_update(), origin=7, now=0.0)
    bob.changed = False
    bob.forget({1}, "peer left")
    assert bob.cursors() == [] and bob.changed
    alice.set_cursor(3, 3, 0.0)  # a newer state (an old one stays forgotten)
    bob.apply(alice.own_update(), origin=7, now=0.0)
    assert bob.get_timer() == AWARENESS_RENEW
    bob.handle_timer(AWARENESS_RENEW)  # renews its own state; alice's is only 15 s old
    assert [name for _, name, _, _ in bob.cursors()] == ["alice"]
    bob.handle_timer(max(AWARENESS_OUTDATED, bob.get_timer()))
    assert bob.cursors() == []  # not renewed for AWARENESS_OUTDATED
