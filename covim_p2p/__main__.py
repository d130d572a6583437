"""Headless peer: ``python -m covim_p2p host|join|start`` without Neovim.

    python -m covim_p2p host [--port 8555] [--text TEXT]        print a token, host a document
    python -m covim_p2p join TOKEN [--append TEXT]              join; append TEXT once synced
    python -m covim_p2p start                                   print a peer token, wait for :CoVim add

Common options: --name, --bind, --host-addr, --stun ('' off), --turn,
--rendezvous, --seconds (run time, default: until interrupted).  Output is
one JSON object per line: {"event": ...}; the last line is the final status
(document text, peers with their path, our candidates).  The peer is built
by covim_p2p.peer exactly as the plugin builds it; tests and the NAT lab
use this to run many peers cheaply.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Any

import trio

from . import peer as assembly
from .editor.edits import TextEdit
from .proto.token import BadToken, SessionToken


def say(**fields: Any) -> None:
    print(json.dumps(fields), flush=True)


def status(p: assembly.Peer) -> dict[str, Any]:
    node = p.node
    return {"event": "status", "role": p.role, "token": p.token_text, "candidates": p.candidate_dicts(),
            "text": str(node.document) if node else "", "state": node.state if node else "waiting",
            "peers": [{k: s[k] for k in ("name", "addr", "path")} for s in node.peers_status() if s["up"]]
            if node else []}


def build(args: argparse.Namespace) -> assembly.Peer:
    settings = assembly.Settings(bind=args.bind, host_addr=args.host_addr, stun=args.stun, turn=args.turn,
                                 rendezvous=args.rendezvous)
    if args.command == "host":
        return assembly.host(settings, args.port, args.name, args.text)
    if args.command == "start":
        return assembly.wait_for_invite(settings, args.port, args.name)
    return assembly.join(settings, SessionToken.decode(args.token), args.name)


async def serve(args: argparse.Namespace) -> None:
    p = build(args)
    for problem in p.problems + ([p.note] if p.note else []):
        say(event="problem", text=problem)
    appended = False
    shown = False

    def activity() -> None:
        nonlocal appended, shown, p
        if (p.poll() or p.token_ready) and not shown and p.role != "peer":
            shown = True
            say(event="token", token=p.token_text, candidates=p.candidate_dicts())
        if p.waiter is not None and p.waiter.invited is not None and p.node is None:
            invited = p.waiter.invited
            p = assembly.join(p_settings, invited, args.name, waiting=p)
            say(event="invited", session=f"{invited.session:016x}")
        node = p.node
        if node is None:
            return
        while (event := node.next_event()) is not None:
            say(event=type(event).__name__, **{k: v for k, v in dataclasses.asdict(event).items() if isinstance(v, (str, int))})
        if args.append and node.synced and not appended:
            appended = True
            node.local_edits([TextEdit(len(str(node.document).encode()), 0, args.append)], time.monotonic())
        if node.document.take_remote_edits() and args.commands:
            say(event="text", text=str(node.document), at=time.time())

    async def commands(scope: trio.CancelScope) -> None:
        """--commands: a line "status" on stdin prints the status, "append TEXT" appends TEXT to the
        document; end of input leaves.  Remote edits are then reported as {"event": "text"} lines."""
        while True:
            line = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
            if not line:
                scope.cancel()
                return
            if line.strip() == "status":
                say(**status(p))
            elif line.startswith("append ") and p.node is not None:
                doc_end = len(str(p.node.document).encode())
                p.node.local_edits([TextEdit(doc_end, 0, line[len("append "):].rstrip("\n"))], time.monotonic())
                p.driver.poke()

    p_settings = assembly.Settings(bind=args.bind, host_addr=args.host_addr, stun=args.stun, turn=args.turn,
                                   rendezvous=args.rendezvous)
    p.make_driver(activity)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(p.run)
        run_for = args.seconds if args.seconds > 0 else float("inf")
        if args.until:
            run_for = max(0.0, args.until - time.time())
        with trio.move_on_after(run_for) as scope:
            if args.commands:
                nursery.start_soon(commands, scope)
            while True:
                await trio.sleep(0.05)
                activity()
                p.driver.poke()
        if not args.commands:
            say(**status(p))
        if args.until:  # everyone reports at one instant; then goodbyes, so no report sees another's
            await trio.sleep(args.linger)
        if p.node is not None:  # goodbyes go out before the socket closes
            p.node.leave(time.monotonic())
            p.driver.flush()
        nursery.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m covim_p2p", description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["host", "join", "start"])
    parser.add_argument("token", nargs="?", default="")
    parser.add_argument("--name", default="headless")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--host-addr", default=None)
    parser.add_argument("--stun", default="", help="STUN servers, comma separated ('' off, the default here)")
    parser.add_argument("--turn", default=None, help="user:password@host[:port]")
    parser.add_argument("--rendezvous", default=None, help="host[:port] of a public covim-rendezvous (host only)")
    parser.add_argument("--text", default="", help="the hosted document's first text")
    parser.add_argument("--append", default="", help="text to append once the document arrived")
    parser.add_argument("--seconds", type=float, default=0.0)
    parser.add_argument("--until", type=float, default=0.0,
                        help="wall-clock time (time.time()) to print the final status, then linger and leave")
    parser.add_argument("--linger", type=float, default=1.0)
    parser.add_argument("--commands", action="store_true",
                        help='read stdin: "status" prints the status, end of input leaves the session')
    args = parser.parse_args(argv)
    if args.command == "join" and not args.token:
        parser.error("join needs a token")
    try:
        trio.run(serve, args)
    except (BadToken, OSError) as exc:
        print(f"covim: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
