"""classify() on loopback: what goes wrong must come back as a sentence, fast."""

from __future__ import annotations

import socket
import threading
import time

from covim_p2p.io.natclass import classify, source_ip_towards
from covim_p2p.proto.natclass import BLOCKED


def test_no_server_is_blocked_after_the_short_tries():
    quiet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    quiet.bind(("127.0.0.1", 0))  # nobody answers here
    t = time.monotonic()
    r = classify("127.0.0.1", quiet.getsockname(), per_try=0.05)
    quiet.close()
    assert r.kind == BLOCKED
    assert time.monotonic() - t < 2.0  # 4 tries of 0.05 s, not pystun3's 4 x 2 s


def test_a_non_stun_answer_is_a_failure_not_a_traceback():
    liar = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    liar.bind(("127.0.0.1", 0))
    liar.settimeout(2)

    def answer_garbage() -> None:
        try:
            _, addr = liar.recvfrom(2048)
            liar.sendto(b"\x77\x77" + bytes(30), addr)
        except OSError:
            pass

    thread = threading.Thread(target=answer_garbage)
    thread.start()
    r = classify("127.0.0.1", liar.getsockname(), per_try=0.5)
    thread.join()
    liar.close()
    assert r.kind == "" and r.text.startswith("NAT check failed: KeyError")


def test_the_source_address_comes_from_the_routing_table():
    assert source_ip_towards(("127.0.0.1", 3478)) == "127.0.0.1"
    r = classify(None, ("127.0.0.1", 9), per_try=0.01)  # None: ask the kernel, never 0.0.0.0
    assert r.kind == BLOCKED
