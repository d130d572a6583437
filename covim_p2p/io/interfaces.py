"""This machine's interface addresses: where peers on a LAN can reach us.

Why not the hostname: on stock Debian/Ubuntu ``getaddrinfo(gethostname())``
gives 127.0.1.1 or 127.0.0.1 (DESIGN.md "The hostname is no address"), so a
token built from it names only loopback.  We ask the kernel for every
interface address with libc's ``getifaddrs`` (Linux and the BSDs/macOS,
through ctypes, no new package); if that is unavailable, the address the
routing table would send from (a connected UDP socket, no packet sent) is
the fallback.  Loopback and link-local addresses are left out: they lead
nowhere off this machine.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import socket
import sys

IFF_UP = 0x1


class _SockAddr(ctypes.Structure):
    _fields_ = [("family_raw", ctypes.c_uint16), ("data", ctypes.c_uint8 * 14)]


class _IfAddrs(ctypes.Structure):
    pass


_IfAddrs._fields_ = [("next", ctypes.POINTER(_IfAddrs)), ("name", ctypes.c_char_p), ("flags", ctypes.c_uint),
                     ("addr", ctypes.POINTER(_SockAddr)), ("netmask", ctypes.POINTER(_SockAddr)),
                     ("ifu", ctypes.POINTER(_SockAddr)), ("data", ctypes.c_void_p)]


def _family(sa: _SockAddr) -> int:
    if sys.platform.startswith("linux"):
        return sa.family_raw
    return sa.family_raw >> 8 if sys.byteorder == "little" else sa.family_raw & 0xFF  # BSD: sa_len, sa_family


def _getifaddrs() -> list[tuple[str, str]]:
    """(interface name, address) for every address of every interface that is up."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    head = ctypes.POINTER(_IfAddrs)()
    if libc.getifaddrs(ctypes.byref(head)) != 0:
        raise OSError(ctypes.get_errno(), "getifaddrs failed")
    found: list[tuple[str, str]] = []
    try:
        node = head
        while node:
            entry = node.contents
            if entry.addr and entry.flags & IFF_UP:
                sa = entry.addr.contents
                family = _family(sa)
                raw = ctypes.string_at(entry.addr, 28 if family == socket.AF_INET6 else 16)
                if family == socket.AF_INET:
                    found.append((entry.name.decode(errors="replace"), socket.inet_ntop(socket.AF_INET, raw[4:8])))
                elif family == socket.AF_INET6:
                    found.append((entry.name.decode(errors="replace"),
                                  socket.inet_ntop(socket.AF_INET6, raw[8:24])))
            node = entry.next
    finally:
        libc.freeifaddrs(head)
    return found


def usable(ip: str) -> bool:
    """An address another machine could send to: not loopback, link-local, unspecified or multicast."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return not (addr.is_loopback or addr.is_link_local or addr.is_unspecified or addr.is_multicast)


def _routed_source() -> list[str]:
    """The address the kernel would use towards the internet (no packet leaves)."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only the routing table is consulted
        return [probe.getsockname()[0]]
    except OSError:
        return []
    finally:
        probe.close()


def interface_addresses(family: int | None = socket.AF_INET) -> list[str]:
    """Usable addresses of this machine's interfaces (IPv4 only by default), in kernel order."""
    try:
        pairs = _getifaddrs()
    except (OSError, AttributeError, TypeError, ValueError):
        pairs = [("", ip) for ip in _routed_source()]
    ips: list[str] = []
    for _, ip in pairs:
        version = ipaddress.ip_address(ip).version
        if family == socket.AF_INET and version != 4 or family == socket.AF_INET6 and version != 6:
            continue
        if usable(ip) and ip not in ips:
            ips.append(ip)
    return ips
