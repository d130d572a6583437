"""``covim-rendezvous``: a public introducer anyone can run (proto/public_introducer.py on a UDP socket).

    covim-rendezvous [--port 8555] [--bind 0.0.0.0]

Hosts that set ``g:covim_rendezvous = 'this-server:8555'`` register their
sessions here; joiners are introduced to every member and punch to them.
It also answers STUN Binding requests, so ``g:covim_stun`` can name it too.
It never sees an edit and cannot read one: it holds only each session's
introduction credential (proto/introduction.py), which hosts seal to
this process's X25519 key (proto/registration.py; a fresh key per start:
hosts re-register by themselves after a restart).  One log line per session
opened or closed and per member joining or leaving goes to stdout.
"""

from __future__ import annotations

import argparse
import sys
import time

import trio

from .io.udp import UdpDriver, bind_udp, local_addr
from .proto.public_introducer import PublicIntroducer


def _say(line: str) -> None:
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}", flush=True)


async def serve(bind: str, port: int, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    machine = PublicIntroducer()
    sock = bind_udp(bind, port)

    def activity() -> None:
        while machine.log:
            _say(machine.log.pop(0))

    driver = UdpDriver(machine, sock, activity)
    ip, port = local_addr(sock)
    _say(f"covim-rendezvous listening on UDP {'[' + ip + ']' if ':' in ip else ip}:{port} "
         "(introductions and STUN binding)")
    try:
        await driver.run(task_status=task_status)
    finally:
        sock.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="covim-rendezvous", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8555)
    parser.add_argument("--bind", default="0.0.0.0")
    args = parser.parse_args(argv)
    try:
        trio.run(serve, args.bind, args.port)
    except OSError as exc:
        print(f"covim-rendezvous: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
