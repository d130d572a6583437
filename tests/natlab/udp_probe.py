"""A tiny STUN-like echo, run inside the lab's namespaces to check the NATs themselves.

    udp_probe.py server PORT     answer every datagram with the address it came from;
                                 on "poke IP PORT", send "unsolicited" there from a new socket
    udp_probe.py client S1 S2    from one socket: the mapped address S1 and S2 see, then
                                 whether an unsolicited packet (poked via S2) gets through

Prints one JSON line.  Bounded: the server exits after 60 s, the client's waits are 2 s.
"""

from __future__ import annotations

import json
import socket
import sys
import time


def server(port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    sock.settimeout(0.5)
    print(json.dumps({"listening": port}), flush=True)
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            data, addr = sock.recvfrom(2048)
        except socket.timeout:
            continue
        words = data.decode(errors="replace").split()
        if words[:1] == ["poke"] and len(words) == 3:
            other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            other.sendto(b"unsolicited", (words[1], int(words[2])))
            other.close()
        sock.sendto(f"{addr[0]}:{addr[1]}".encode(), addr)


def client(targets: list[str]) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 0))
    sock.settimeout(2.0)
    seen = []
    for target in targets:
        host, port = target.rsplit(":", 1)
        sock.sendto(b"hello", (host, int(port)))
        seen.append(sock.recvfrom(2048)[0].decode())
    mapped_ip, mapped_port = seen[0].rsplit(":", 1)
    host, port = targets[-1].rsplit(":", 1)
    sock.sendto(f"poke {mapped_ip} {mapped_port}".encode(), (host, int(port)))
    got = []
    end = time.monotonic() + 1.0
    while time.monotonic() < end:
        try:
            got.append(sock.recvfrom(2048)[0].decode())
        except socket.timeout:
            break
    print(json.dumps({"mapped": seen, "unsolicited_arrived": "unsolicited" in got}), flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        server(int(sys.argv[2]))
    else:
        client(sys.argv[2:])
