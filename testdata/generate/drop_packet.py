#!/usr/bin/env python3
"""Copy a pcap file leaving out one packet, to simulate a capture drop.

Usage: drop_packet.py --packet N IN OUT
       drop_packet.py --data-from PORT --nth K IN OUT

--packet N removes the N-th packet of the file (counted from 1).
--data-from PORT --nth K removes the K-th TCP segment that carries payload
and was sent from PORT (counted from 1 in file order; negative K counts from
the end, -1 is the last one).

Used by generate.sh for the segment-not-captured and ack-of-unseen-data
fixtures: the segment really crossed the wire (the peer acknowledges it),
only the copy of the capture lacks it.  Classic pcap only (either byte
order, micro- or nanosecond); Ethernet, Linux cooked (SLL) and raw-IP link
types; IPv4 and IPv6 without extension headers.  Everything else in the file
(header, every other record, timestamps) is copied byte for byte.  Standard
library only.
"""

import argparse
import os
import struct
import sys

MAGICS = {  # magic as read little-endian -> byte order of the file
    0xA1B2C3D4: "<", 0xA1B23C4D: "<",
    0xD4C3B2A1: ">", 0x4D3CB2A1: ">",
}
LINKTYPE_ETHERNET, LINKTYPE_RAW, LINKTYPE_LINUX_SLL = 1, 101, 113


def read_pcap(path):
    """Return (file header bytes, byte order, link type, [records]); a
    record is (record header bytes, packet bytes)."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError("%s: too short for a pcap header" % path)
    (magic,) = struct.unpack("<I", data[:4])
    if magic not in MAGICS:
        raise ValueError("%s: not a classic pcap file (magic %#010x)"
                         % (path, magic))
    order = MAGICS[magic]
    linktype = struct.unpack(order + "I", data[20:24])[0] & 0x0FFFFFFF
    records, off = [], 24
    while off < len(data):
        if off + 16 > len(data):
            raise ValueError("%s: truncated record header at %d" % (path, off))
        hdr = data[off:off + 16]
        caplen = struct.unpack(order + "I", hdr[8:12])[0]
        if off + 16 + caplen > len(data):
            raise ValueError("%s: truncated record at %d" % (path, off))
        records.append((hdr, data[off + 16:off + 16 + caplen]))
        off += 16 + caplen
    return data[:24], order, linktype, records


def tcp_segment(linktype, pkt):
    """(src, sport, dst, dport, seq, payload length) of a TCP packet, or
    None.  The payload length comes from the IP header, so it is right for
    packets cut by a snapshot length too."""
    if linktype == LINKTYPE_ETHERNET:
        if len(pkt) < 14:
            return None
        ethertype, off = struct.unpack("!H", pkt[12:14])[0], 14
        while ethertype in (0x8100, 0x88A8) and len(pkt) >= off + 4:
            ethertype = struct.unpack("!H", pkt[off + 2:off + 4])[0]
            off += 4
    elif linktype == LINKTYPE_LINUX_SLL:
        if len(pkt) < 16:
            return None
        ethertype, off = struct.unpack("!H", pkt[14:16])[0], 16
    elif linktype == LINKTYPE_RAW:
        if not pkt:
            return None
        ethertype, off = {4: 0x0800, 6: 0x86DD}.get(pkt[0] >> 4), 0
    else:
        raise ValueError("unsupported link type %d" % linktype)
    ip = pkt[off:]
    if ethertype == 0x0800 and len(ip) >= 20 and ip[9] == 6:
        ihl = (ip[0] & 0x0F) * 4
        total = struct.unpack("!H", ip[2:4])[0]
        src, dst = ".".join(map(str, ip[12:16])), ".".join(map(str, ip[16:20]))
        tcp, tcp_room = ip[ihl:], total - ihl
    elif ethertype == 0x86DD and len(ip) >= 40 and ip[6] == 6:
        total = struct.unpack("!H", ip[4:6])[0]
        src, dst = ip[8:24].hex(), ip[24:40].hex()
        tcp, tcp_room = ip[40:], total
    else:
        return None
    if len(tcp) < 20:
        return None
    sport, dport, seq = struct.unpack("!HHI", tcp[:8])
    doff = (tcp[12] >> 4) * 4
    return src, sport, dst, dport, seq, max(0, tcp_room - doff)


def main(argv):
    ap = argparse.ArgumentParser(
        description="Copy a pcap file without one packet.")
    which = ap.add_mutually_exclusive_group(required=True)
    which.add_argument("--packet", type=int, metavar="N",
                       help="remove the N-th packet (from 1)")
    which.add_argument("--data-from", type=int, metavar="PORT",
                       help="remove a payload-carrying TCP segment from PORT")
    ap.add_argument("--nth", type=int, metavar="K",
                    help="with --data-from: the K-th such segment "
                         "(from 1; negative: from the end)")
    ap.add_argument("input")
    ap.add_argument("output")
    args = ap.parse_args(argv[1:])
    if (args.data_from is None) != (args.nth is None) or args.nth == 0 \
            or args.packet == 0:
        ap.error("use --packet N, or --data-from PORT with --nth K (K != 0)")

    header, _, linktype, records = read_pcap(args.input)
    if args.packet is not None:
        candidates = list(range(len(records)))
        k = args.packet
    else:
        candidates = []
        for i, (_, pkt) in enumerate(records):
            seg = tcp_segment(linktype, pkt)
            if seg and seg[1] == args.data_from and seg[5] > 0:
                candidates.append(i)
        k = args.nth
    if not -len(candidates) <= (k - 1 if k > 0 else k) < len(candidates):
        raise SystemExit("drop_packet.py: %s: no packet %d to remove "
                         "(%d candidates)" % (args.input, k, len(candidates)))
    victim = candidates[k - 1 if k > 0 else k]

    seg = tcp_segment(linktype, records[victim][1])
    what = ("%s:%d > %s:%d seq %d, %d bytes of payload" % seg
            if seg else "not TCP")
    print("drop_packet.py: removed packet %d of %d (%s)"
          % (victim + 1, len(records), what), file=sys.stderr)

    tmp = args.output + ".tmp"
    with open(tmp, "wb") as f:
        f.write(header)
        for i, (hdr, pkt) in enumerate(records):
            if i != victim:
                f.write(hdr)
                f.write(pkt)
    os.replace(tmp, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
