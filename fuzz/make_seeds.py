#!/usr/bin/env python3
"""Writes the fuzz seed corpus (seeds/<target>/) from the fixture captures in testdata/.

Run from anywhere: `python3 fuzz/make_seeds.py`. Deterministic: the same testdata gives the
same seeds. Each seed is small (at most a few KiB) so the committed corpus stays small; the
fuzzers grow their own working corpus in fuzz/corpus/ (not committed).
"""

import gzip
import hashlib
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SEEDS = os.path.join(HERE, "seeds")

# The decode_frame target's link-type table, in its order.
LINK_TYPES = [0, 1, 9, 10, 12, 14, 50, 51, 101, 104, 108, 113, 228, 229, 276]


def td(path):
    return os.path.join(ROOT, "testdata", path)


def write(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def pcap_records(data):
    """(header, [(record header, frame)], link type) of a little-endian microsecond pcap."""
    assert data[:4] == b"\xd4\xc3\xb2\xa1", "little-endian pcap expected"
    link = struct.unpack("<I", data[20:24])[0]
    records, at = [], 24
    while at + 16 <= len(data):
        caplen = struct.unpack("<I", data[at + 8 : at + 12])[0]
        records.append((data[at : at + 16], data[at + 16 : at + 16 + caplen]))
        at += 16 + caplen
    return data[:24], records, link


def first_records(path, count, limit=4096):
    header, records, _ = pcap_records(open(td(path), "rb").read())
    out = bytearray(header)
    for rh, frame in records[:count]:
        if len(out) + len(rh) + len(frame) > limit:
            break
        out += rh + frame
    return bytes(out)


def big_endian(pcap, nanosecond=False):
    """The same little-endian microsecond pcap in big-endian byte order (and nanoseconds)."""
    header, records, _ = pcap_records(pcap)
    magic = b"\xa1\xb2\x3c\x4d" if nanosecond else b"\xa1\xb2\xc3\xd4"
    fields = struct.unpack("<HHiIII", header[4:24])
    out = bytearray(magic + struct.pack(">HHiIII", *fields))
    for rh, frame in records:
        sec, usec, caplen, length = struct.unpack("<IIII", rh)
        frac = usec * 1000 if nanosecond else usec
        out += struct.pack(">IIII", sec, frac, caplen, length) + frame
    return bytes(out)


def capture_reader_seeds():
    whole = [
        "kernel/refused.pcap",
        "kernel/unanswered-syn.pcap",
        "kernel/rst-unread-data.pcap",
        "kernel/truncated-snaplen.pcap",
        "kernel/ipv6-normal.pcap",
        "kernel/two-interfaces.pcapng",
        "zeek/retransmit-timeout/retransmit-timeout.pcapng",
        "zeek/syn-bad-checksum/syn-bad.pcap",
    ]
    for path in whole:
        write("capture_reader", os.path.basename(path), open(td(path), "rb").read())
    for path, count in [
        ("zeek/irc-starttls/irc-starttls.pcap", 6),  # Linux cooked (SLL)
        ("zeek/llc-rst-only/llc.pcap", 6),  # FDDI
        ("zeek/mpls-in-vlan/mpls-in-vlan.pcap", 6),
        ("zeek/cisco-fabric-path/cisco-fabric-path.pcap", 6),
        ("zeek/teredo/Teredo.pcap", 6),
    ]:
        write("capture_reader", os.path.basename(path), first_records(path, count))
    refused = open(td("kernel/refused.pcap"), "rb").read()
    write("capture_reader", "refused-be.pcap", big_endian(refused))
    write("capture_reader", "refused-be-ns.pcap", big_endian(refused, nanosecond=True))
    write("capture_reader", "refused.pcap.gz", gzip.compress(refused, mtime=0))
    shutil.copy(
        os.path.join(ROOT, "src/capture/testdata/sample.pcap.zst"),
        os.path.join(SEEDS, "capture_reader", "sample.pcap.zst"),
    )
    pcapng = open(td("zeek/flip-without-syn/http-on-irc-port-missing-syn.pcapng"), "rb").read()
    write("capture_reader", "missing-syn-head.pcapng", pcapng[:2048])


def decode_seed(link, frame, orig_len=None):
    pick = LINK_TYPES.index(link)
    word = len(frame) if orig_len is None else orig_len
    if orig_len is not None:
        pick |= 0x80
    return bytes([pick]) + struct.pack("<I", word) + frame


def decode_frame_seeds():
    seen = set()
    sources = [
        ("kernel/normal-client-close.pcap", 4),
        ("kernel/ipv6-normal.pcap", 3),
        ("kernel/truncated-snaplen.pcap", 4),
        ("zeek/irc-starttls/irc-starttls.pcap", 3),
        ("zeek/llc-rst-only/llc.pcap", 3),
        ("zeek/mpls-in-vlan/mpls-in-vlan.pcap", 3),
        ("zeek/vlan-mpls/mixed-vlan-mpls.pcap", 6),
        ("zeek/cisco-fabric-path/cisco-fabric-path.pcap", 3),
        ("zeek/teredo/Teredo.pcap", 4),
        ("zeek/tcp-padding/tcp-http-with-padding.pcap", 3),
        ("zeek/ftp-ipv6/ipv6.pcap", 3),
    ]
    ip_packets = []
    for path, count in sources:
        _, records, link = pcap_records(open(td(path), "rb").read())
        for rh, frame in records[:count]:
            orig_len = struct.unpack("<I", rh[12:16])[0]
            seed = decode_seed(link, frame[:512], orig_len if orig_len != len(frame) else None)
            if seed in seen:
                continue
            seen.add(seed)
            name = "%s-%d" % (os.path.basename(path), len(seen))
            write("decode_frame", name, seed)
            if link == 1 and frame[12:14] in (b"\x08\x00", b"\x86\xdd"):
                ip_packets.append((frame[12:14], frame[14:]))
    # The same IP packets behind the other link layers the decoder knows.
    for i, (ethertype, packet) in enumerate(ip_packets[:4]):
        v6 = ethertype == b"\x86\xdd"
        family_le = struct.pack("<I", 30 if v6 else 2)
        family_be = struct.pack(">I", 30 if v6 else 2)
        ppp_proto = b"\x00\x57" if v6 else b"\x00\x21"
        sll2 = ethertype + b"\x00\x00" + struct.pack(">I", 2) + b"\x00\x01\x00\x06" + bytes(8)
        frames = {
            101: packet,
            12: packet,
            228 if not v6 else 229: packet,
            0: family_le + packet,
            108: family_be + packet,
            9: b"\xff\x03" + ppp_proto + packet,
            50: b"\xff\x03" + ppp_proto + packet,
            104: b"\x0f\x00" + ethertype + packet,
            51: b"\x11\x00\x00\x01" + struct.pack(">H", len(packet) + 2) + ppp_proto + packet,
            276: sll2,
        }
        frames[276] = sll2 + packet
        for link, frame in sorted(frames.items()):
            write("decode_frame", "link%d-%d" % (link, i), decode_seed(link, frame))


# The tracker target's encoding (see fuzz_targets/tracker.rs).
CLIENT_TO_SERVER = 0 | (1 << 3)
SERVER_TO_CLIENT = 1 | (0 << 3)
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def tracker_header(size=3, knobs=0, start_ns=1_700_000_000 * 10**9, base=0xFFFF_FF00):
    return bytes([size, knobs]) + struct.pack("<qIH", start_ns, base, 0)


def segment(who, flags, seq, ack, payload=0, step_ms=1, window=65535, options=None):
    """seq and ack are offsets from the sender's and receiver's bases (mode 0)."""
    modes = (3 if payload > 255 else 2 if payload > 1 else payload) << 4 | 1 << 6
    extras = 0
    opts = b""
    if options:
        extras |= 2 | 4 | 8 | 16
        opts = struct.pack("<HBII", 1460, 7, 1000, 0)
    out = bytes([who, flags, modes, extras])
    out += struct.pack("<hh", seq, ack) + struct.pack("<H", window)
    if payload > 255:
        out += struct.pack("<H", payload)
    elif payload > 1:
        out += bytes([payload])
    out += struct.pack("<h", step_ms) + opts
    return out


def tracker_seeds():
    c, s = CLIENT_TO_SERVER, SERVER_TO_CLIENT
    handshake = [
        segment(c, SYN, 0, 0, options=True),
        segment(s, SYN | ACK, 0, 1, options=True),
        segment(c, ACK, 1, 1),
    ]
    close = [
        segment(c, ACK | PSH, 1, 1, payload=100),
        segment(s, ACK, 1, 101),
        segment(c, FIN | ACK, 101, 1),
        segment(s, FIN | ACK, 1, 102),
        segment(c, ACK, 102, 2),
    ]
    write("tracker", "normal-close", tracker_header() + b"".join(handshake + close))
    write("tracker", "refused", tracker_header() + segment(c, SYN, 0, 0) + segment(s, RST | ACK, 0, 1))
    write(
        "tracker",
        "rst-abort",
        tracker_header() + b"".join(handshake) + segment(c, RST | ACK, 1, 1) + segment(s, RST, 1, 0),
    )
    write(
        "tracker",
        "simultaneous-close",
        tracker_header()
        + b"".join(handshake)
        + segment(c, FIN | ACK, 1, 1)
        + segment(s, FIN | ACK, 1, 1)
        + segment(c, ACK, 2, 2)
        + segment(s, ACK, 2, 2),
    )
    out_of_order = [
        segment(c, ACK, 1 + 1460 * k, 1, payload=1460) for k in (3, 1, 2, 0, 2, 4, 1)
    ]
    write("tracker", "out-of-order", tracker_header() + b"".join(handshake + out_of_order))
    # A second client (endpoint 2) to the same server, and a midstream flow.
    write(
        "tracker",
        "two-flows",
        tracker_header(size=1)
        + b"".join(handshake)
        + segment(2 | 1 << 3, SYN, 0, 0)
        + segment(1 | 2 << 3, SYN | ACK, 0, 1)
        + segment(4 | 3 << 3, ACK, 5, 7, payload=10),
    )


def main():
    if os.path.isdir(SEEDS):
        shutil.rmtree(SEEDS)
    capture_reader_seeds()
    decode_frame_seeds()
    tracker_seeds()
    total = 0
    for target in sorted(os.listdir(SEEDS)):
        files = os.listdir(os.path.join(SEEDS, target))
        size = sum(os.path.getsize(os.path.join(SEEDS, target, f)) for f in files)
        total += size
        print("%s: %d seeds, %d bytes" % (target, len(files), size))
    print("total %d bytes" % total)


if __name__ == "__main__":
    main()
