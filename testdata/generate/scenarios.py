#!/usr/bin/env python3
"""TCP lifecycle scenarios for the tcplife capture fixtures.

Usage: scenarios.py NAME [--sync DIR]
       scenarios.py --list

Normally invoked by generate.sh, which builds the tl-cli/tl-srv namespaces,
owns tcpdump and answers the capture handshake in DIR (see nsnet.Capture).
Each scenario is a straight-line program: both endpoints are driven from this
single thread, so the order of packets on the wire is fixed by the program
order.  README.md describes what each capture contains and what tcplife must
report for it.
"""

import fcntl
import select
import socket
import struct
import sys
import termios
import time

from nsnet import (CLI4, CLI_DEV, CLI_NS, IO_TIMEOUT, PORT, SRV4, SRV_DEV,
                   SRV_NS, Capture, accept, client_socket, connect,
                   expect_eof, listener, netns, nft, nft_flush, recv_exact,
                   recv_until_eof, run, set_linger_abort, sysctl, udp_poke)

REQUEST = b"GET /index.html HTTP/1.0\r\nHost: tl\r\n\r\n"
RESPONSE = b"HTTP/1.0 200 OK\r\nContent-Length: 6\r\n\r\nhello\n"

SETTLE = 0.6  # quiet time after the last expected packet (> 0.5 s)

SCENARIOS = {}


def scenario(fn):
    SCENARIOS[fn.__name__.replace("_", "-")] = fn
    return fn


def exchange(cli, srv, request=REQUEST, response=RESPONSE):
    """One request/response round trip."""
    cli.sendall(request)
    recv_exact(srv, len(request))
    srv.sendall(response)
    recv_exact(cli, len(response))


def client_closes(cli, srv):
    cli.close()           # FIN from the client
    expect_eof(srv)
    srv.close()           # FIN from the server; the client ACKs it


def server_closes(cli, srv):
    srv.close()           # FIN from the server
    expect_eof(cli)
    cli.close()           # FIN from the client


def expect_reset(sock):
    try:
        data = sock.recv(4096)
    except ConnectionResetError:
        return
    raise RuntimeError("expected a reset, got %r" % (data,))


def _normal_client_close(cap, v6=False):
    ls = listener(v6=v6)
    cap.start()
    cli = connect(client_socket(v6=v6), v6=v6)
    srv = accept(ls)
    exchange(cli, srv)
    client_closes(cli, srv)
    time.sleep(SETTLE)
    cap.stop()


# ------------------------------------------------------------ scenarios

@scenario
def normal_client_close(cap):
    _normal_client_close(cap)


@scenario
def normal_server_close(cap):
    ls = listener()
    cap.start()
    cli = connect(client_socket())
    srv = accept(ls)
    exchange(cli, srv)
    server_closes(cli, srv)
    time.sleep(SETTLE)
    cap.stop()


@scenario
def rst_abort_client(cap):
    ls = listener()
    cap.start()
    cli = connect(client_socket())
    srv = accept(ls)
    exchange(cli, srv)
    set_linger_abort(cli)
    cli.close()           # RST from the client
    expect_reset(srv)
    srv.close()           # nothing left to send
    time.sleep(SETTLE)
    cap.stop()


@scenario
def rst_abort_server(cap):
    ls = listener()
    cap.start()
    cli = connect(client_socket())
    srv = accept(ls)
    exchange(cli, srv)
    set_linger_abort(srv)
    srv.close()           # RST from the server
    expect_reset(cli)
    cli.close()
    time.sleep(SETTLE)
    cap.stop()


@scenario
def rst_unread_data(cap):
    ls = listener()
    cap.start()
    cli = connect(client_socket())
    srv = accept(ls)
    # Delayed-ACK mode, so the request is still unacknowledged on the wire
    # when the RST goes out (otherwise a fresh connection ACKs at once).
    srv.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 0)
    cli.sendall(REQUEST)
    time.sleep(0.01)      # request queued, unread, at the server (< 40 ms ATO)
    srv.close()           # close() with unread data -> RST (RFC 2525 2.17)
    expect_reset(cli)
    cli.close()
    time.sleep(SETTLE)
    cap.stop()


@scenario
def refused(cap):
    # Nothing listens on 10.77.0.2:8080 in this scenario.
    cap.start()
    cli = client_socket()
    err = cli.connect_ex((SRV4, PORT))
    if err != 111:  # ECONNREFUSED
        raise RuntimeError("expected ECONNREFUSED, got errno %d" % err)
    cli.close()
    time.sleep(SETTLE)
    cap.stop()


@scenario
def unanswered_syn(cap):
    # The server namespace silently drops inbound SYNs to 8081 (input hook,
    # so the SYNs are still recorded leaving the client).
    nft(SRV_NS, "input tcp dport 8081 tcp flags & (syn | ack) == syn drop")
    # Classic exponential SYN backoff (1 s, 2 s, ...); since Linux 6.5 the
    # first retransmissions are linear (1 s apart) by default.
    sysctl(CLI_NS, "net.ipv4.tcp_syn_linear_timeouts", 0)
    cap.start()
    cli = client_socket()
    cli.settimeout(4.0)   # SYN at 0 s, retransmissions at 1 s and 3 s
    try:
        cli.connect((SRV4, 8081))
        raise RuntimeError("connect to 8081 unexpectedly succeeded")
    except socket.timeout:
        pass
    cli.close()           # abandoning SYN-SENT sends nothing
    time.sleep(0.3)
    cap.stop()


@scenario
def long_close_wait(cap):
    ls = listener()
    cap.start()
    cli = connect(client_socket())
    srv = accept(ls)
    exchange(cli, srv)
    cli.close()           # FIN from the client
    expect_eof(srv)       # server is now in CLOSE-WAIT ...
    time.sleep(6.0)       # ... and stays there for 6 s
    srv.close()
    time.sleep(SETTLE)
    cap.stop()


@scenario
def lost_final_ack(cap):
    ls = listener()
    cap.start()
    cli = connect(client_socket())
    srv = accept(ls)
    exchange(cli, srv)
    cli.close()           # FIN from the client, ACKed by the server
    # From now on nothing from the client reaches the wire (output hook runs
    # before the capture tap): its ACK of the server's FIN, and its re-ACKs
    # from TIME-WAIT of every retransmitted FIN, are all lost.
    nft(CLI_NS, "output ip daddr %s tcp dport %d drop" % (SRV4, PORT))
    expect_eof(srv)
    srv.close()           # server FIN, never ACKed -> retransmitted
    time.sleep(5.0)       # retransmissions at ~0.2, 0.6, 1.4, 3.0 s
    cap.stop()


def _reconnect_loop(cap, rounds, server_first, gap):
    ls = listener()
    cap.start()
    for i in range(rounds):
        cli = None
        for attempt in range(3):
            cli = client_socket(bind_port=40000)
            try:
                connect(cli)
                break
            except OSError as e:
                cli.close()
                cli = None
                if e.errno != 99:  # EADDRNOTAVAIL: TIME-WAIT not reusable yet
                    raise
                print("reconnect %d: EADDRNOTAVAIL, retrying in 1 s" % i,
                      file=sys.stderr)
                time.sleep(1.0)
        if cli is None:
            raise RuntimeError("could not reuse 10.77.0.1:40000")
        srv = accept(ls)
        exchange(cli, srv)
        if server_first:
            server_closes(cli, srv)
        else:
            client_closes(cli, srv)
        if i + 1 < rounds:
            time.sleep(gap)
    time.sleep(SETTLE)
    cap.stop()


@scenario
def time_wait_reuse(cap):
    # Server is the active closer, so the server holds 10.77.0.1:40000 ->
    # 10.77.0.2:8080 in TIME-WAIT; the new SYN from the same port (higher
    # ISN/timestamp) is accepted on the TIME-WAIT socket.  4 connections,
    # i.e. 3 reuses, each within 0.3 s.
    _reconnect_loop(cap, rounds=4, server_first=True, gap=0.3)


@scenario
def time_wait_reuse_client(cap):
    # Client is the active closer and holds the TIME-WAIT.  An ephemeral
    # port would only be reused with tcp_tw_reuse=1 after tcp_tw_reuse_delay
    # (1 s); for an explicitly bound port Linux takes the TIME-WAIT over as
    # soon as it has seen timestamps.  The sysctl and a 1.5 s gap are used
    # anyway so the capture looks the same either way.
    sysctl(CLI_NS, "net.ipv4.tcp_tw_reuse", 1)
    _reconnect_loop(cap, rounds=4, server_first=False, gap=1.5)


def _tbf(ns, dev, verb, rate, burst):
    run(ns, "tc", "qdisc", verb, "dev", dev, "root", "tbf",
        "rate", rate, "burst", burst, "limit", 100000)


@scenario
def simultaneous_close(cap):
    # Both FINs must leave before either side has seen the other's, and both
    # must then be delivered.  Dropping them (nft) would not do: the
    # retransmitted FINs would already acknowledge the peer's FIN.  Instead
    # each veth egress gets a token bucket that is empty, which holds the
    # FINs in the qdisc (before the capture tap); the holds are released one
    # after the other, so each side receives the peer's FIN while its own is
    # unacknowledged and enters CLOSING.
    ls = listener()
    cap.start()
    cli = connect(client_socket())
    srv = accept(ls)
    exchange(cli, srv)
    time.sleep(0.1)       # let delayed ACKs go out
    holds = ((CLI_NS, CLI_DEV, SRV4), (SRV_NS, SRV_DEV, CLI4))
    for ns, dev, peer in holds:
        # 1 byte/s, 200-byte bucket; two 192-byte datagrams empty it.
        _tbf(ns, dev, "add", "8bit", 200)
        udp_poke(ns, peer, 150)
        udp_poke(ns, peer, 150)
    cli.shutdown(socket.SHUT_WR)  # FIN held at tl-c
    srv.shutdown(socket.SHUT_WR)  # FIN held at tl-s
    time.sleep(0.05)
    for ns, dev, peer in holds:   # client's FIN first, then the server's
        _tbf(ns, dev, "change", "1gbit", 100000)
        udp_poke(ns, peer, 10)    # kick the qdisc so the backlog drains
        time.sleep(0.02)
    expect_eof(cli)
    expect_eof(srv)
    cli.close()
    srv.close()
    time.sleep(SETTLE)
    cap.stop()


@scenario
def half_close_data(cap):
    ls = listener()
    cap.start()
    cli = connect(client_socket())
    srv = accept(ls)
    cli.sendall(REQUEST)
    cli.shutdown(socket.SHUT_WR)  # FIN right after the request
    recv_exact(srv, len(REQUEST))
    expect_eof(srv)
    sent = 0
    for i in range(5):            # the server keeps talking for ~0.5 s
        chunk = b"chunk %d of 5: some response data\n" % (i + 1)
        srv.sendall(chunk)
        sent += len(chunk)
        time.sleep(0.1)
    srv.close()
    got = recv_until_eof(cli)
    if len(got) != sent:
        raise RuntimeError("client got %d of %d bytes" % (len(got), sent))
    cli.close()
    time.sleep(SETTLE)
    cap.stop()


@scenario
def syn_burst(cap):
    # 300 handshakes in a burst; the client's completing ACKs are dropped in
    # tl-cli's output hook (so never on the wire), the server keeps 300
    # SYN-RECEIVED entries and retransmits its SYN-ACKs after 1 s.  No SYN
    # cookies; the backlog is large enough for every SYN to get a SYN-ACK.
    sysctl(SRV_NS, "net.ipv4.tcp_syncookies", 0)
    sysctl(SRV_NS, "net.ipv4.tcp_max_syn_backlog", 4096)
    nft(CLI_NS, "output ip daddr %s tcp dport %d tcp flags & ack == ack drop"
        % (SRV4, PORT))
    ls = listener(backlog=512)    # never accept()ed
    socks = []
    cap.start()
    t0 = time.monotonic()
    for _ in range(300):
        s = client_socket()
        s.setblocking(False)
        err = s.connect_ex((SRV4, PORT))
        if err not in (0, 115):   # EINPROGRESS
            raise RuntimeError("connect_ex: errno %d" % err)
        socks.append(s)
    burst = time.monotonic() - t0
    if burst >= 1.0:
        raise RuntimeError("burst took %.2f s" % burst)
    time.sleep(max(0.0, 2.5 - burst))  # one round of SYN-ACK retransmissions
    cap.stop()
    for s in socks:
        s.close()
    ls.close()


def _keepalive_client():
    cli = client_socket()
    cli.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 1)
    cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, 1)
    cli.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, 3)
    return cli


@scenario
def keepalive(cap):
    ls = listener()
    cap.start()
    cli = connect(_keepalive_client())
    srv = accept(ls)
    exchange(cli, srv)
    time.sleep(4.5)       # idle: a probe every second, each one answered
    client_closes(cli, srv)
    time.sleep(SETTLE)
    cap.stop()


@scenario
def keepalive_timeout(cap):
    ls = listener()
    cap.start()
    cli = connect(_keepalive_client())
    srv = accept(ls)
    exchange(cli, srv)
    time.sleep(0.1)
    # The server goes silent (output hook: its replies never reach the wire).
    nft(SRV_NS, "output tcp sport %d drop" % PORT)
    # Probes at ~1, 2, 3 s; after the third goes unanswered the client
    # aborts with a RST at ~4 s.
    cli.settimeout(7.0)
    try:
        data = cli.recv(4096)
        raise RuntimeError("expected keepalive timeout, got %r" % (data,))
    except TimeoutError as e:  # ETIMEDOUT from the kernel, not socket.timeout
        if e.errno != 110:
            raise
    cli.close()
    expect_reset(srv)     # the client's RST did get through
    srv.close()
    time.sleep(0.5)
    cap.stop()


@scenario
def zero_window(cap):
    # No tail-loss probe: with the receiver's delayed ACK it would resend the
    # last segment before the window closes (a spurious retransmission).
    sysctl(CLI_NS, "net.ipv4.tcp_early_retrans", 0)
    ls = listener(rcvbuf=4096)    # accepted socket inherits the small buffer
    cap.start()
    cli = connect(client_socket(sndbuf=4096))
    srv = accept(ls)
    exchange(cli, srv)
    # Server stops reading; client writes until its send buffer is full too.
    cli.setblocking(False)
    block = b"z" * 512
    sent = 0
    for _ in range(256):          # at most 128 KiB
        try:
            sent += cli.send(block)
        except BlockingIOError:
            break
    else:
        raise RuntimeError("send buffer never filled")
    time.sleep(2.5)       # zero window; probes at ~0.2, 0.6, 1.4 s
    got = 0
    deadline = time.monotonic() + 10
    while got < sent and time.monotonic() < deadline:
        got += len(srv.recv(65536))
    if got != sent:
        raise RuntimeError("server read %d of %d bytes" % (got, sent))
    cli.setblocking(True)
    cli.settimeout(10)
    client_closes(cli, srv)
    time.sleep(SETTLE)
    cap.stop()


@scenario
def midstream(cap):
    ls = listener()
    cli = connect(client_socket())
    srv = accept(ls)
    for _ in range(3):            # before the capture starts
        exchange(cli, srv)
        time.sleep(0.05)
    time.sleep(0.3)               # nothing in flight when tcpdump starts
    cap.start()
    for _ in range(3):
        exchange(cli, srv)
        time.sleep(0.05)
    client_closes(cli, srv)
    time.sleep(SETTLE)
    cap.stop()


@scenario
def many_connections(cap):
    # Kept under 200 KB: no TCP timestamps (the client does not offer them)
    # and a few bytes of payload each way.
    sysctl(CLI_NS, "net.ipv4.tcp_timestamps", 0)
    ls = listener()
    cap.start()
    for i in range(250):          # connection i: even -> client closes first
        cli = connect(client_socket())
        srv = accept(ls)
        exchange(cli, srv, b"GET %d\n" % i, b"OK\n")
        if i % 2 == 0:
            client_closes(cli, srv)
        else:
            server_closes(cli, srv)
        time.sleep(0.01)
    time.sleep(SETTLE)
    cap.stop()


@scenario
def ipv6_normal(cap):
    _normal_client_close(cap, v6=True)


@scenario
def truncated_snaplen(cap):
    # Same as normal-client-close; generate.sh captures it with -s 80.
    _normal_client_close(cap)


# ------------------------------------- anomalies beyond the lifecycle basics


def _wait_acked(sock, timeout=IO_TIMEOUT):
    """Block until everything written to `sock` has been acknowledged."""
    deadline = time.monotonic() + timeout
    while True:
        outq = struct.unpack("i", fcntl.ioctl(
            sock.fileno(), termios.TIOCOUTQ, b"\0" * 4))[0]
        if outq == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("%d bytes still unacknowledged" % outq)
        time.sleep(0.002)


def _hold(ns, dev, peer):
    """Hold everything `ns` sends on `dev` in a drained token bucket (before
    the capture tap), as simultaneous_close does."""
    _tbf(ns, dev, "add", "8bit", 200)
    udp_poke(ns, peer, 150)
    udp_poke(ns, peer, 150)


def _release(ns, dev, peer):
    _tbf(ns, dev, "change", "1gbit", 100000)
    udp_poke(ns, peer, 10)    # kick the qdisc so the backlog drains


@scenario
def excessive_retransmission(cap):
    # 60 response segments of 100 bytes, sent one at a time (each written
    # once the previous one is acknowledged, so the packet order is fixed).
    # Segments 2, 5, 8, 12, 15, 18, ... (i % 10 in {2, 5, 8}: 18 of 60) are
    # marked with a leading "D"; tl-cli's input hook drops each of them the
    # first time it arrives (after the capture tap: the capture shows it) and
    # remembers its sequence number, so the retransmission gets through.
    run(CLI_NS, "nft", "add set inet tl seen "
        "{ typeof tcp sequence; flags dynamic; size 1024; }")
    nft(CLI_NS, "input ip saddr %s tcp sport %d @ih,0,8 0x44 "
        "tcp sequence != @seen add @seen { tcp sequence } drop" % (SRV4, PORT))
    ls = listener()
    cap.start()
    cli = connect(client_socket())
    srv = accept(ls)
    srv.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    cli.sendall(REQUEST)
    recv_exact(srv, len(REQUEST))
    for i in range(60):
        mark = b"D" if i % 10 in (2, 5, 8) else b"d"
        chunk = (mark + b"%02d " % i).ljust(99, b".") + b"\n"
        srv.sendall(chunk)
        recv_exact(cli, len(chunk))   # a dropped one arrives once resent
        _wait_acked(srv)
    server_closes(cli, srv)
    time.sleep(SETTLE)
    cap.stop()


@scenario
def syn_in_open_connection(cap):
    # The client's socket vanishes without the server hearing: it is closed
    # with SO_LINGER {1,0} while tl-cli's output hook drops its RST (before
    # the capture tap, so the capture does not show it).  The client then
    # connects again from the same port; the server, still ESTABLISHED,
    # answers the SYN with a challenge ACK (RFC 5961 4.2), which the client
    # in SYN-SENT answers with a RST (seq = the ACK's ack = the server's
    # rcv_nxt, so it is accepted and ends the old connection) without leaving
    # SYN-SENT.  Linux then re-arms the SYN timer at its minimum, so the SYN
    # is retransmitted ~10 ms later, and the new connection is set up.
    ls = listener()
    cap.start()
    cli = connect(client_socket(bind_port=41000))
    old = accept(ls)
    exchange(cli, old)
    time.sleep(0.1)       # let delayed ACKs go out
    nft(CLI_NS, "output tcp sport 41000 tcp flags & rst == rst drop")
    set_linger_abort(cli)
    cli.close()           # RST, dropped before the wire
    nft_flush(CLI_NS)
    time.sleep(0.2)
    cli = connect(client_socket(bind_port=41000))  # SYN sent twice
    srv = accept(ls)
    expect_reset(old)     # the client's answer to the challenge ACK
    old.close()
    exchange(cli, srv)
    client_closes(cli, srv)
    time.sleep(SETTLE)
    cap.stop()


@scenario
def syn_with_data(cap):
    # TCP Fast Open without cookies: the client (0x1 enable | 0x4 no cookie)
    # puts the request into its SYN, the server (0x2 enable | 0x200 no
    # cookie required) accepts it at once and its SYN-ACK acknowledges it.
    sysctl(CLI_NS, "net.ipv4.tcp_fastopen", 0x5)
    sysctl(SRV_NS, "net.ipv4.tcp_fastopen", 0x202)
    ls = listener()
    ls.setsockopt(socket.IPPROTO_TCP, socket.TCP_FASTOPEN, 16)
    cap.start()
    cli = client_socket()
    cli.sendto(REQUEST, socket.MSG_FASTOPEN, (SRV4, PORT))  # SYN + request
    srv = accept(ls)
    recv_exact(srv, len(REQUEST))
    srv.sendall(RESPONSE)
    recv_exact(cli, len(RESPONSE))
    client_closes(cli, srv)
    time.sleep(SETTLE)
    cap.stop()


@scenario
def simultaneous_open(cap):
    # Two sockets bound to 10.77.0.1:41001 and 10.77.0.2:41002 connect() to
    # each other.  Each SYN is held in its namespace's drained token bucket
    # (before the capture tap) until both have been sent; the client's is
    # released first.  The capture shows client SYN, server SYN, the
    # client's SYN-ACK, the server's SYN-ACK (it was queued behind the
    # server's SYN), and an ACK from each: both sides pass SYN-RECEIVED.
    cport, sport = 41001, 41002
    with netns(SRV_NS):
        peer = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    peer.bind((SRV4, sport))
    cli = client_socket(bind_port=cport)
    # Resolve ARP both ways first, so the token buckets hold only the SYNs.
    udp_poke(CLI_NS, SRV4, 10)
    udp_poke(SRV_NS, CLI4, 10)
    time.sleep(0.1)
    cap.start()
    holds = ((CLI_NS, CLI_DEV, SRV4), (SRV_NS, SRV_DEV, CLI4))
    for ns, dev, dst in holds:
        _hold(ns, dev, dst)
    for sock, dst in ((cli, (SRV4, sport)), (peer, (CLI4, cport))):
        sock.setblocking(False)
        err = sock.connect_ex(dst)
        if err != 115:    # EINPROGRESS
            raise RuntimeError("connect_ex: errno %d" % err)
    time.sleep(0.05)
    for ns, dev, dst in holds:    # the client's SYN first
        _release(ns, dev, dst)
        time.sleep(0.02)
    for sock in (cli, peer):
        _, writable, _ = select.select([], [sock], [], IO_TIMEOUT)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if not writable or err:
            raise RuntimeError("simultaneous open failed: errno %d" % err)
        sock.setblocking(True)
        sock.settimeout(IO_TIMEOUT)
    exchange(cli, peer)
    client_closes(cli, peer)
    time.sleep(SETTLE)
    cap.stop()


def _burst_transfer(cap):
    """Request, then a 1000-byte response in one burst of ten 100-byte
    segments (TCP_MAXSEG 112 on the listener: 100 bytes of payload next to
    the timestamp option); server closes first.  The client's ACKs are held
    in tl-cli's token bucket while the burst arrives, so the capture shows
    all ten segments before the first ACK of any of them."""
    sysctl(SRV_NS, "net.ipv4.tcp_early_retrans", 0)  # no TLP while held
    ls = listener()
    ls.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, 112)
    cap.start()
    cli = connect(client_socket())
    srv = accept(ls)
    cli.sendall(REQUEST)
    recv_exact(srv, len(REQUEST))
    time.sleep(0.1)       # the request's (delayed) ACK is out
    _hold(CLI_NS, CLI_DEV, SRV4)
    body = b"".join((b"segment %d of 10 " % (i + 1)).ljust(99, b".") + b"\n"
                    for i in range(10))
    srv.sendall(body)
    recv_exact(cli, len(body))
    time.sleep(0.03)
    _release(CLI_NS, CLI_DEV, SRV4)
    _wait_acked(srv)
    server_closes(cli, srv)
    time.sleep(SETTLE)
    cap.stop()


@scenario
def segment_not_captured(cap):
    # generate.sh removes the 5th data segment from the capture.
    _burst_transfer(cap)


@scenario
def ack_of_unseen_data(cap):
    # generate.sh removes the 10th (last) data segment from the capture.
    _burst_transfer(cap)


@scenario
def two_interfaces(cap):
    # normal-client-close; generate.sh captures on both veth ends and joins
    # the two captures into one pcapng file.
    _normal_client_close(cap)


def main(argv):
    if argv[1:] == ["--list"]:
        print("\n".join(SCENARIOS))
        return 0
    if len(argv) not in (2, 4) or (len(argv) == 4 and argv[2] != "--sync"):
        print(__doc__, file=sys.stderr)
        return 2
    name = argv[1]
    if name not in SCENARIOS:
        print("unknown scenario %r" % name, file=sys.stderr)
        return 2
    SCENARIOS[name](Capture(argv[3] if len(argv) == 4 else None))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
