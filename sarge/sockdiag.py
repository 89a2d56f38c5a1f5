"""The machine's listening TCP sockets, asked of the kernel over netlink (sock_diag), as
``ss -ltn`` asks.

The kernel answers with the listening sockets alone. ``/proc/net/tcp`` lists every
socket, each connection and each one in TIME_WAIT included, and the kernel formats
the whole table for every read: on a busy server, thousands of lines for the few that
listen. A deploy asks who listens on its ports several times a second while it waits
(:func:`sarge.ports.listeners`, the front-end's settle).

:func:`listening` raises :class:`OSError` when netlink cannot be asked (a kernel or a
sandbox without ``NETLINK_SOCK_DIAG``); :mod:`sarge.ports` then reads ``/proc``.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct

NETLINK_SOCK_DIAG = 4
SOCK_DIAG_BY_FAMILY = 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
TCP_LISTEN = 10

#: struct nlmsghdr: length, type, flags, sequence, port id.
_HEADER = struct.Struct("=IHHII")
#: struct inet_diag_req_v2: family, protocol, extensions, pad, states, then an
#: inet_diag_sockid of zeros (48 bytes: no socket in particular).
_REQUEST = struct.Struct("=BBBxI48x")
#: struct inet_diag_msg: family, state, timer, retransmits; the sockid (source port
#: and destination port, big-endian, source and destination address, interface,
#: cookie); expires, read queue, write queue, uid, inode.
_MESSAGE = struct.Struct("=BBBB2s2s16s16sI8sIIIII")


def listening(families=(socket.AF_INET, socket.AF_INET6), timeout: float = 5.0) -> list:
    """(address, port, uid, inode) of each TCP socket listening in this network
    namespace, every user's: IPv4 first, then IPv6 (an IPv4-mapped address as IPv4)."""
    found = []
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG) as nl:
        nl.settimeout(timeout)
        for seq, family in enumerate(families, 1):
            body = _REQUEST.pack(family, socket.IPPROTO_TCP, 0, 1 << TCP_LISTEN)
            nl.send(_HEADER.pack(_HEADER.size + len(body), SOCK_DIAG_BY_FAMILY,
                                 NLM_F_REQUEST | NLM_F_DUMP, seq, 0) + body)
            found += _answers(nl, seq)
    return found


def _answers(nl, seq: int) -> list:
    """The sockets of the dump ``seq``, read until its NLMSG_DONE."""
    found = []
    while True:
        data = nl.recv(1 << 16)
        offset = 0
        while offset + _HEADER.size <= len(data):
            length, kind, _, got_seq, _ = _HEADER.unpack_from(data, offset)
            if length < _HEADER.size:
                raise OSError(f"sock_diag: a message of {length} bytes")
            payload = offset + _HEADER.size
            offset += (length + 3) & ~3  # each message is padded to 4 bytes
            if got_seq != seq:
                continue
            if kind == NLMSG_DONE:
                return found
            if kind == NLMSG_ERROR:
                (error,) = struct.unpack_from("=i", data, payload)
                raise OSError(-error, f"sock_diag: {os.strerror(-error)}")
            if kind == SOCK_DIAG_BY_FAMILY and payload + _MESSAGE.size <= len(data):
                found.append(_socket(_MESSAGE.unpack_from(data, payload)))


def _socket(fields) -> tuple:
    family, _, _, _, sport, _, src, _, _, _, _, _, _, uid, inode = fields
    raw = src[:4] if family == socket.AF_INET else src
    address = ipaddress.ip_address(raw)
    mapped = getattr(address, "ipv4_mapped", None)
    return str(mapped or address), int.from_bytes(sport, "big"), uid, inode

