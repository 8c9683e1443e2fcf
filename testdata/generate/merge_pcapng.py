#!/usr/bin/env python3
"""Join pcap files into one pcapng file, one interface per input.

Usage: merge_pcapng.py IN.pcap... OUT.pcapng

Every input becomes an interface (an Interface Description Block with the
input's link type, snapshot length, and if_tsresol 6 or 9 for a micro- or
nanosecond pcap, named after the file: tl-c, tl-s) and each of its packets an Enhanced
Packet Block on that interface, with the timestamp and lengths unchanged.
The inputs are written one after the other, not merged by time: when they
overlap in time, timestamps go backwards where the second input begins.

Used by generate.sh for the two-interfaces fixture (the same connection
captured on both ends of the veth pair: the client end in microseconds, the
server end in nanoseconds).  Reads classic pcap in either byte order; writes
little-endian pcapng.  Standard library only.
"""

import os
import struct
import sys

# magic as read little-endian -> (byte order, timestamp resolution exponent)
MAGICS = {
    0xA1B2C3D4: ("<", 6), 0xA1B23C4D: ("<", 9),
    0xD4C3B2A1: (">", 6), 0x4D3CB2A1: (">", 9),
}

SHB, IDB, EPB = 0x0A0D0D0A, 0x00000001, 0x00000006
OPT_ENDOFOPT, OPT_COMMENT = 0, 1
SHB_USERAPPL = 4
IF_NAME, IF_TSRESOL = 2, 9


def read_pcap(path):
    """(link type, snaplen, resolution exponent, [(sec, frac, orig_len, data)])"""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError("%s: too short for a pcap header" % path)
    (magic,) = struct.unpack("<I", data[:4])
    if magic not in MAGICS:
        raise ValueError("%s: not a classic pcap file (magic %#010x)"
                         % (path, magic))
    order, resol = MAGICS[magic]
    snaplen, linktype = struct.unpack(order + "II", data[16:24])
    packets, off = [], 24
    while off < len(data):
        if off + 16 > len(data):
            raise ValueError("%s: truncated record header at %d" % (path, off))
        sec, frac, caplen, orig = struct.unpack(order + "IIII",
                                                data[off:off + 16])
        if off + 16 + caplen > len(data):
            raise ValueError("%s: truncated record at %d" % (path, off))
        packets.append((sec, frac, orig, data[off + 16:off + 16 + caplen]))
        off += 16 + caplen
    return linktype & 0x0FFFFFFF, snaplen, resol, packets


def pad4(b):
    return b + b"\0" * (-len(b) % 4)


def options(opts):
    out = b""
    for code, value in opts:
        out += struct.pack("<HH", code, len(value)) + pad4(value)
    return out + struct.pack("<HH", OPT_ENDOFOPT, 0)


def block(btype, body):
    length = 12 + len(body)
    return struct.pack("<II", btype, length) + body + struct.pack("<I", length)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    inputs, output = argv[1:-1], argv[-1]
    out = [block(SHB, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1) + options(
        [(SHB_USERAPPL, b"tcplife testdata/generate/merge_pcapng.py")]))]
    epbs = []
    for ifid, path in enumerate(inputs):
        linktype, snaplen, resol, packets = read_pcap(path)
        name = os.path.splitext(os.path.basename(path))[0].encode()
        out.append(block(IDB, struct.pack("<HHI", linktype, 0, snaplen)
                         + options([(IF_NAME, name),
                                    (IF_TSRESOL, bytes([resol]))])))
        for sec, frac, orig, data in packets:
            ts = sec * 10 ** resol + frac
            epbs.append(block(EPB, struct.pack(
                "<IIIII", ifid, ts >> 32, ts & 0xFFFFFFFF, len(data), orig)
                + pad4(data)))
    tmp = output + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b"".join(out + epbs))
    os.replace(tmp, output)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
