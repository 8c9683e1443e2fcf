"""Namespace, firewall and capture-synchronisation helpers for the fixture
generator (see generate.sh).

The generator runs as a single process in the root network namespace.  Every
socket is created inside one of the two test namespaces by temporarily
switching this thread's network namespace with setns(2); a socket stays bound
to the namespace it was created in, so one sequential program can drive both
ends of a connection and the packet sequence on the wire follows the program
order.  Firewall (nft), qdisc (tc) and sysctl changes are applied with
`ip netns exec`.

Only the Python standard library is used (ctypes provides setns(2), which the
os module lacks before Python 3.12).
"""

import ctypes
import os
import socket
import struct
import subprocess
import time

CLI_NS = "tl-cli"
SRV_NS = "tl-srv"
CLI_DEV = "tl-c"
SRV_DEV = "tl-s"
CLI4, SRV4 = "10.77.0.1", "10.77.0.2"
CLI6, SRV6 = "fd77::1", "fd77::2"
PORT = 8080

IO_TIMEOUT = 10.0  # upper bound for any single blocking socket operation

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_root_ns_fd = os.open("/proc/thread-self/ns/net", os.O_RDONLY)


def _setns(fd):
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "setns: " + os.strerror(err))


class netns:
    """Context manager: run the body inside the named network namespace."""

    def __init__(self, name):
        self.name = name

    def __enter__(self):
        fd = os.open("/var/run/netns/" + self.name, os.O_RDONLY)
        try:
            _setns(fd)
        finally:
            os.close(fd)
        return self

    def __exit__(self, *exc):
        _setns(_root_ns_fd)
        return False


def run(ns, *argv):
    """Run a command inside namespace `ns`; raise if it fails."""
    cmd = ["ip", "netns", "exec", ns] + [str(a) for a in argv]
    subprocess.run(cmd, check=True, timeout=20,
                   stdout=subprocess.DEVNULL)


def nft(ns, rule):
    """Append a rule, e.g. nft(SRV_NS, "input tcp dport 8081 drop"), to a
    chain of the `inet tl` table that generate.sh creates in each namespace."""
    run(ns, "nft", "add rule inet tl " + rule)


def nft_flush(ns):
    run(ns, "nft", "flush table inet tl")


def sysctl(ns, key, value):
    run(ns, "sysctl", "-q", "-w", "%s=%s" % (key, value))


# ---------------------------------------------------------------- sockets

def _family(v6):
    return socket.AF_INET6 if v6 else socket.AF_INET


def listener(port=PORT, v6=False, backlog=16, rcvbuf=None):
    with netns(SRV_NS):
        s = socket.socket(_family(v6), socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.bind((SRV6 if v6 else SRV4, port))
    s.listen(backlog)
    s.settimeout(IO_TIMEOUT)
    return s


def client_socket(v6=False, bind_port=None, sndbuf=None):
    with netns(CLI_NS):
        s = socket.socket(_family(v6), socket.SOCK_STREAM)
    if bind_port is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((CLI6 if v6 else CLI4, bind_port))
    if sndbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    s.settimeout(IO_TIMEOUT)
    return s


def connect(sock, port=PORT, v6=False):
    sock.connect((SRV6 if v6 else SRV4, port))
    return sock


def accept(lsock):
    conn, _ = lsock.accept()
    conn.settimeout(IO_TIMEOUT)
    return conn


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError("peer closed after %d of %d bytes" % (len(buf), n))
        buf += chunk
    return buf


def recv_until_eof(sock, limit=1 << 20):
    """Read until the peer's FIN; return the bytes read."""
    buf = b""
    while len(buf) <= limit:
        chunk = sock.recv(65536)
        if not chunk:
            return buf
        buf += chunk
    raise RuntimeError("no EOF after %d bytes" % len(buf))


def expect_eof(sock):
    data = recv_until_eof(sock)
    if data:
        raise RuntimeError("unexpected %d bytes before EOF" % len(data))


def set_linger_abort(sock):
    """SO_LINGER {on, 0}: close() discards the connection with a RST."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def udp_poke(ns, dst, size):
    """Send one UDP datagram (to the discard port) from namespace `ns`.
    Used only to move tbf token buckets; the capture filter is `tcp`."""
    with netns(ns):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.sendto(b"\0" * size, (dst, 9))
    finally:
        u.close()


# --------------------------------------------------- capture synchronisation

class Capture:
    """File handshake with generate.sh, which owns tcpdump.

    start(): ask for the capture to begin and block until tcpdump is
    listening.  stop(): ask for it to end and block until tcpdump has
    exited, so that whatever the program does afterwards (closing leftover
    sockets on exit) is not recorded.  Without a sync directory (running a
    scenario by hand) both are no-ops.
    """

    def __init__(self, sync_dir):
        self.dir = sync_dir

    def _handshake(self, request, reply, timeout):
        if not self.dir:
            return
        with open(os.path.join(self.dir, request), "w"):
            pass
        deadline = time.monotonic() + timeout
        path = os.path.join(self.dir, reply)
        while not os.path.exists(path):
            if time.monotonic() > deadline:
                raise TimeoutError("no %s from generate.sh" % reply)
            time.sleep(0.02)

    def start(self):
        self._handshake("start-capture", "capturing", 30)

    def stop(self):
        self._handshake("stop-capture", "stopped", 30)
