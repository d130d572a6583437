"""Host candidates come from the interfaces, never from the hostname (DESIGN.md)."""

from __future__ import annotations

import socket

from covim_p2p.io.interfaces import _getifaddrs, interface_addresses, usable


def test_the_kernel_lists_loopback_and_we_leave_it_out():
    pairs = _getifaddrs()
    assert ("lo", "127.0.0.1") in pairs  # getifaddrs through ctypes really reads the kernel's list
    ips = interface_addresses()
    assert "127.0.0.1" not in ips and all(usable(ip) for ip in ips)
    assert all(":" not in ip for ip in ips)  # IPv4 by default: the session socket is IPv4


def test_every_non_loopback_ipv4_interface_address_is_a_candidate():
    listed = {ip for _, ip in _getifaddrs() if "." in ip and not ip.startswith(("127.", "169.254."))}
    assert set(interface_addresses()) == listed


def test_what_no_peer_can_reach_is_not_usable():
    for ip in ("127.0.1.1", "::1", "fe80::1", "0.0.0.0", "169.254.3.4", "224.0.0.1", "not an ip"):
        assert not usable(ip), ip
    for ip in ("10.0.0.2", "192.168.1.20", "203.0.113.9", "2001:db8::1", "fd00::2"):
        assert usable(ip), ip


def test_ipv6_addresses_are_listed_when_asked():
    six = interface_addresses(socket.AF_INET6)
    assert all(":" in ip and not ip.startswith("fe80") for ip in six)
