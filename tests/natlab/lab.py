"""Real NATs for tests: Linux network namespaces, veth pairs and nftables.

Why real ones: hole punching depends on what a NAT does with a packet nobody
asked for, and only the kernel's conntrack answers that faithfully.

Topology.  A namespace "inet" holds a bridge on 203.0.113.0/24 (TEST-NET-3:
nothing here can ever be a real address, and nothing leaves the namespaces).

* ``public(name, octet)``: a host with one leg on that bridge.
* ``behind_nat(name, kind, octet, lan)``: a client on its own LAN
  10.0.<lan>.0/24, behind a router namespace whose WAN leg is on the bridge;
  ``neighbour(host, name)`` puts one more client on that LAN.  The NAT does
  not hairpin (a packet from the LAN to its own public address stops at the
  router), as most home and office NATs do not.
  The router's nftables rules make the NAT kind (RFC 4787 terms, DESIGN.md
  section 3):

  - ``port-restricted``: endpoint-independent mapping, address-and-port
    dependent filtering (``masquerade``).
  - ``symmetric``: address-and-port dependent mapping (``masquerade
    fully-random``).

  Unsolicited packets die in the router's input chain.  If they got further,
  conntrack would record the peer's first packet, and the client's next send
  would get a new port: a port-restricted NAT would turn symmetric.

``stun_server(octet)`` runs coturn (STUN with CHANGE-REQUEST, and TURN) on a
public host with two addresses.

``flush_conntrack(host)`` and ``udp_timeouts(host, s)`` act on the router in front
of a NATed host (``conntrack -F``; the per-namespace UDP conntrack timeouts).

Processes are started inside a namespace with ``ip netns exec``; ``close()``
kills what is left in the lab's namespaces and deletes them.  Needs root, and
``ip``, ``nft``, ``turnserver`` and ``conntrack`` (scripts/setup.sh installs them).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass

WAN = "203.0.113"
TURN_USER, TURN_PASSWORD, TURN_REALM = "covim", "relay-secret", "covim.lab"
KINDS = ("full-cone", "restricted-cone", "port-restricted", "symmetric")

NAT_RULES = """
table ip covim_nat {{
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" masquerade{random}
  }}
  chain input {{
    type filter hook input priority filter; policy drop;
    iifname "lo" accept
    iifname "lan" accept
    ct state established,related accept
  }}
  chain forward {{
    type filter hook forward priority filter; policy drop;
    iifname "lan" oifname "wan" accept
    ct state established,related accept
  }}
}}
"""


# Cone NATs (DESIGN.md section 3): masquerade keeps one public port per inner socket (EIM); the
# map "fwd" (public port -> inner ip . port), filled after SNAT from conntrack, lets any remote in
# (full cone, EIF); the set "seen" (remote ip . public port) gates it by remote address
# (restricted cone, ADF).  With ``hairpin``, the LAN reaches its own public address through the map.
CONE_RULES = """
table ip covim_nat {{
  map pubmap {{ type inet_service : ipv4_addr . inet_service; flags dynamic,timeout; timeout 5m; }}
  set seenset {{ type ipv4_addr . inet_service; flags dynamic,timeout; timeout 5m; }}
  chain prerouting {{
    type nat hook prerouting priority dstnat; policy accept;
    iifname "wan" {gate}dnat ip to udp dport map @pubmap
    {hairpin_in}
  }}
  chain postrouting {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" masquerade
    {hairpin_out}
  }}
  chain learn {{
    type filter hook postrouting priority srcnat + 10; policy accept;
    oifname "wan" meta l4proto udp update @pubmap {{ ct reply proto-dst : ct original ip saddr . ct original proto-src }}
    oifname "wan" meta l4proto udp update @seenset {{ ip daddr . ct reply proto-dst }}
  }}
  chain input {{
    type filter hook input priority filter; policy drop;
    iifname "lo" accept
    iifname "lan" accept
    ct state established,related accept
  }}
  chain forward {{
    type filter hook forward priority filter; policy drop;
    iifname "lan" accept
    ct state established,related accept
    ct status dnat accept
  }}
}}
"""

FIREWALL_RULES = """
table ip covim_fw {
  chain input {
    type filter hook input priority filter; policy drop;
    iifname "lo" accept
    ct state established,related accept
    meta l4proto icmp accept
  }
}
"""


def nat_rules(kind: str, wan_ip: str, lan: int, hairpin: bool) -> str:
    if kind in ("port-restricted", "symmetric"):
        if hairpin:
            raise ValueError("hairpinning is built for cone NATs only")
        return NAT_RULES.format(random=" fully-random" if kind == "symmetric" else "")
    gate = "ip saddr . udp dport @seenset " if kind == "restricted-cone" else ""
    hairpin_in = (f'iifname "lan" ip daddr {wan_ip} udp dport @pubmap dnat ip to udp dport map @pubmap'
                  if hairpin else "")
    hairpin_out = (f'oifname "lan" ip saddr 10.0.{lan}.0/24 ct status dnat snat ip to {wan_ip}' if hairpin else "")
    return CONE_RULES.format(gate=gate, hairpin_in=hairpin_in, hairpin_out=hairpin_out)


def missing() -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "the NAT lab needs root (network namespaces and nftables)"
    for tool in ("ip", "nft", "turnserver", "conntrack"):
        if shutil.which(tool) is None:
            return f"the NAT lab needs `{tool}` (bash scripts/setup.sh installs it)"
    return None


def run(*argv: str) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def no_bridge_netfilter(netns: str) -> None:
    """Bridged frames must not pass the IP rules (a LAN's own traffic would meet the NAT's
    forward policy).  The knob exists only while br_netfilter is loaded."""
    subprocess.run(["ip", "netns", "exec", netns, "sysctl", "-q", "-w", "net.bridge.bridge-nf-call-iptables=0"],
                   capture_output=True, timeout=30)


@dataclass(frozen=True)
class Host:
    netns: str
    ip: str  # its own address: public, or on its LAN behind a NAT
    public_ip: str  # where the rest of the lab sees it (its router's WAN address behind a NAT)
    nat: str = ""  # "" for a public host, else one of KINDS

    def argv(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.netns, *command]


class NatLab:
    def __init__(self) -> None:
        why = missing()
        if why:
            raise RuntimeError(why)
        self.tag = f"cv{os.getpid() % 100000}"
        self.namespaces: list[str] = []
        self._links = 0
        self._lans: dict[str, tuple[int, int]] = {}  # router namespace -> (LAN number, addresses used)
        self._cleanup: list = []
        try:
            self.inet = self._namespace("inet")
            no_bridge_netfilter(self.inet)
            run("ip", "-n", self.inet, "link", "add", "br0", "type", "bridge")
            run("ip", "-n", self.inet, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise

    def _namespace(self, role: str) -> str:
        name = f"{self.tag}-{role}"
        run("ip", "netns", "add", name)
        self.namespaces.append(name)
        run("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def _veth(self, ns_a: str, name_a: str, ns_b: str, name_b: str) -> None:
        """A cable between two namespaces (temporary names: interface names hold 15 bytes)."""
        self._links += 1
        tmp_a, tmp_b = f"{self.tag}a{self._links}", f"{self.tag}b{self._links}"
        run("ip", "link", "add", tmp_a, "type", "veth", "peer", "name", tmp_b)
        run("ip", "link", "set", tmp_a, "netns", ns_a)
        run("ip", "link", "set", tmp_b, "netns", ns_b)
        run("ip", "-n", ns_a, "link", "set", tmp_a, "name", name_a)
        run("ip", "-n", ns_b, "link", "set", tmp_b, "name", name_b)

    def _wan(self, ns: str, octet: int) -> str:
        ip = f"{WAN}.{octet}"
        port = f"p{self._links + 1}"
        self._veth(self.inet, port, ns, "wan")
        run("ip", "-n", self.inet, "link", "set", port, "master", "br0", "up")
        run("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "wan")
        run("ip", "-n", ns, "link", "set", "wan", "up")
        return ip

    def public(self, name: str, octet: int, *, firewall: bool = False) -> Host:
        """A host on the public side; ``firewall``: a stateful firewall drops what it did not ask for."""
        ns = self._namespace(name)
        ip = self._wan(ns, octet)
        if firewall:
            done = subprocess.run(["ip", "netns", "exec", ns, "nft", "-f", "-"], input=FIREWALL_RULES,
                                  capture_output=True, text=True, timeout=30)
            if done.returncode != 0:
                raise RuntimeError(f"nft firewall rules failed: {done.stderr.strip()}")
        return Host(ns, ip, ip, "firewall" if firewall else "")

    def stun_server(self, octet: int) -> Host:
        """coturn on a public host with two addresses (``octet`` and ``octet + 1``), which
        RFC 3489 classification needs for CHANGE-REQUEST; it listens on port 3478 and
        relays (TURN) for TURN_USER / TURN_PASSWORD."""
        host = self.public("stun", octet)
        second = f"{WAN}.{octet + 1}"
        run("ip", "-n", host.netns, "addr", "add", f"{second}/24", "dev", "wan")
        db = tempfile.mkdtemp(prefix="covim-turndb-")
        self._cleanup.append(lambda: shutil.rmtree(db, ignore_errors=True))
        log = os.path.join(db, "turnserver.log")
        with open(log, "w") as out:
            proc = subprocess.Popen(host.argv("turnserver", "-n", f"--listening-ip={host.ip}",
                                              f"--listening-ip={second}", "--listening-port=3478", "--no-tls",
                                              "--no-dtls", "--no-cli", f"--userdb={db}/turndb",
                                              "--lt-cred-mech", f"--user={TURN_USER}:{TURN_PASSWORD}",
                                              f"--realm={TURN_REALM}",
                                              f"--pidfile={db}/turnserver.pid", "--log-file=stdout", "--simple-log"),
                                    stdout=out, stderr=subprocess.STDOUT)
        self._cleanup.append(proc.kill)
        deadline = time.monotonic() + 10
        while "Total General servers" not in open(log).read():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"coturn did not start: {open(log).read()[-500:]}")
            time.sleep(0.02)
        return host

    def behind_nat(self, name: str, kind: str, octet: int, lan: int, *, hairpin: bool = False) -> Host:
        if kind not in KINDS:
            raise ValueError(f"unknown NAT kind {kind!r}; known: {', '.join(KINDS)}")
        router = self._namespace(f"{name}-nat")
        wan_ip = self._wan(router, octet)
        run("ip", "-n", router, "link", "add", "lan", "type", "bridge")
        run("ip", "-n", router, "addr", "add", f"10.0.{lan}.1/24", "dev", "lan")
        run("ip", "-n", router, "link", "set", "lan", "up")
        run("ip", "netns", "exec", router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
        no_bridge_netfilter(router)
        rules = nat_rules(kind, wan_ip, lan, hairpin)
        done = subprocess.run(["ip", "netns", "exec", router, "nft", "-f", "-"], input=rules,
                              capture_output=True, text=True, timeout=30)
        if done.returncode != 0:
            raise RuntimeError(f"nft rules for {kind} NAT failed: {done.stderr.strip()}")
        self._lans[router] = (lan, 1)
        return self._client(name, router, wan_ip, kind)

    def neighbour(self, host: Host, name: str) -> Host:
        """Another client on ``host``'s LAN, behind the same NAT."""
        router = f"{host.netns}-nat"
        if router not in self._lans:
            raise ValueError(f"{host.netns} is not behind one of this lab's NATs")
        return self._client(name, router, host.public_ip, host.nat)

    def _client(self, name: str, router: str, wan_ip: str, kind: str) -> Host:
        lan, used = self._lans[router]
        self._lans[router] = (lan, used + 1)
        ip = f"10.0.{lan}.{used + 1}"
        client = self._namespace(name)
        port = f"c{used}"
        self._veth(router, port, client, "eth0")
        run("ip", "-n", router, "link", "set", port, "master", "lan", "up")
        run("ip", "-n", client, "addr", "add", f"{ip}/24", "dev", "eth0")
        run("ip", "-n", client, "link", "set", "eth0", "up")
        run("ip", "-n", client, "route", "add", "default", "via", f"10.0.{lan}.1")
        return Host(client, ip, wan_ip, kind)

    def router(self, host: Host) -> str:
        """The namespace of the NAT router in front of ``host``."""
        router = f"{host.netns}-nat"
        if router not in self._lans:
            raise ValueError(f"{host.netns} is not behind one of this lab's NATs")
        return router

    def flush_conntrack(self, host: Host) -> None:
        """The router in front of ``host`` forgets every mapping at once (a NAT reboot, a
        conntrack table overflow): the next packet out gets a fresh mapping, maybe a new port."""
        run("ip", "netns", "exec", self.router(host), "conntrack", "-F")

    def udp_timeouts(self, host: Host, seconds: int) -> None:
        """Short UDP mapping lifetimes in the router in front of ``host`` (per namespace)."""
        for knob in ("nf_conntrack_udp_timeout", "nf_conntrack_udp_timeout_stream"):
            run("ip", "netns", "exec", self.router(host), "sysctl", "-q", "-w", f"net.netfilter.{knob}={seconds}")

    def close(self) -> None:
        for undo in reversed(self._cleanup):
            undo()
        self._cleanup.clear()
        for ns in reversed(self.namespaces):
            try:
                pids = run("ip", "netns", "pids", ns).split()
            except RuntimeError:
                pids = []
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=30)
        self.namespaces.clear()

    def __enter__(self) -> NatLab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
