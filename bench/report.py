#!/usr/bin/env python3
"""Render bench/run.sh's raw results as a markdown table.

Usage: report.py RESULTS_DIR OUT_DIR
       COMMAND | report.py --digest PREFIX     (PREFIX.sha256 and the last line in PREFIX.out)
       report.py --merge PREFIX ROUNDS         (PREFIX.roundN.json, one run each, into PREFIX.json)

RESULTS_DIR holds manifest.tsv (id, capture, tool, command), and for every id: ID.json
(hyperfine --export-json), ID.time (/usr/bin/time -v), ID.out (the command's standard output
from the /usr/bin/time run); run.txt (date, machine, load) and the captures' *.capture.txt.
Only the Python standard library is used.
"""

import csv
import hashlib
import json
import os
import re
import statistics
import sys

TOOLS = [
    ("read-only", "read records only (pcap-parser loop over the mapped file)"),
    ("floor", "parse floor: pcap-parser + etherparse + 4-tuple hash map, file mapped"),
    ("floor-stream", "parse floor, file read with `read` calls (--stream)"),
    ("tcplife", "tcplife analyze --format jsonl"),
    ("tcplife-mmap", "tcplife ... --mmap (file mapped, read in place)"),
    ("tcplife-t1", "tcplife ... --threads 1"),
    ("tcplife-t2", "tcplife ... --threads 2"),
    ("tcplife-t4", "tcplife ... --threads 4"),
    ("tcplife-pgo", "tcplife analyze --format jsonl, PGO build (bench/pgo.sh)"),
    ("tcplife-text", "tcplife analyze (the text summary, the default format)"),
    ("tcplife-text-t1", "tcplife analyze --threads 1 (text)"),
    ("tcplife-zeek", "tcplife analyze --format zeek"),
    ("tcplife-zeek-t1", "tcplife analyze --format zeek --threads 1"),
    ("tcptrace", "tcptrace -n"),
    ("tshark", "tshark -q -z conv,tcp"),
]


def load(res):
    rows = {}
    with open(os.path.join(res, "manifest.tsv"), newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            rows[r["id"]] = r
    for rid, r in rows.items():
        base = os.path.join(res, rid)
        with open(base + ".json") as f:
            h = json.load(f)["results"][0]
        r["median"] = h["median"]
        r["min"] = min(h["times"])
        r["max"] = max(h["times"])
        r["runs"] = len(h["times"])
        r["rss_kb"] = None
        with open(base + ".time") as f:
            for line in f:
                m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", line)
                if m:
                    r["rss_kb"] = int(m.group(1))
        if not os.path.exists(base + ".out"):
            r["count"], r["extra"], r["sha256"] = None, {}, None
            continue
        r["count"], r["extra"] = count(r["tool"], base + ".out")
        if os.path.exists(base + ".sha256"):
            with open(base + ".sha256") as f:
                r["sha256"] = f.read().strip()
        else:
            with open(base + ".out", "rb") as f:
                r["sha256"] = hashlib.sha256(f.read()).hexdigest()
    return rows


def count(tool, path):
    """The connection count the tool reports, and anything else worth showing."""
    if tool.startswith(("tcplife-text", "tcplife-zeek")):
        # The summary in words, or a Zeek log: no JSON summary line to read the count from.
        return None, {}
    if tool.startswith("tcplife"):
        last = None
        with open(path) as f:
            for line in f:
                last = line
        if not last:
            return None, {}
        s = json.loads(last)["summary"]
        return s["connections"], {
            "time_wait_reuse": s.get("anomalies_by_kind", {}).get("time_wait_reuse", 0),
            "peak_concurrent": s.get("peak_concurrent_connections"),
        }
    if tool in ("floor", "floor-stream", "read-only"):
        with open(path) as f:
            words = f.read().split()
        kv = dict(zip(words[0::2], words[1::2]))
        if tool != "read-only":
            return int(kv["four_tuples"]), {"frames": int(kv["frames"])}
        return None, {"frames": int(kv["frames"]), "bytes": int(kv["bytes"])}
    if tool == "tcptrace":
        n = 0
        with open(path, errors="replace") as f:
            for line in f:
                if re.match(r"\s*\d+: \S+ - \S+ \(", line):
                    n += 1
        return n, {}
    if tool == "tshark":
        with open(path, errors="replace") as f:
            return sum(1 for line in f if "<->" in line), {}
    return None, {}


def secs(t):
    if t is None:
        return ""
    if t < 10:
        return f"{t:.3f} s" if t < 1 else f"{t:.2f} s"
    return f"{t:.1f} s"


def mb(kb):
    return "" if kb is None else f"{kb / 1024:.0f} MB"


def ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def fmt_ratio(r, digits=2, bound=None):
    """The ratio to `digits` decimals, or more while it would round onto `bound` (a target's
    limit) without being it: 19.98× never shows as a 20.0× that missed 20."""
    if r is None:
        return ""
    while bound is not None and digits < 4 and r != bound and round(r, digits) == bound:
        digits += 1
    return f"{r:.{digits}f}×"


def check(ok):
    if ok is None:
        return ""
    return "met" if ok else "**missed**"


def read_kv(path):
    kv = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if ": " in line:
                    k, v = line.rstrip("\n").split(": ", 1)
                    kv[k] = v
    return kv


def digest(prefix):
    """Standard input's SHA-256 to PREFIX.sha256 and its last line to PREFIX.out."""
    h = hashlib.sha256()
    tail = b""
    while chunk := sys.stdin.buffer.read(1 << 20):
        h.update(chunk)
        buf = tail + chunk
        i = buf.rfind(b"\n", 0, len(buf) - 1)  # the newline before the last line
        tail = buf[i + 1 :]
    with open(prefix + ".out", "wb") as f:
        f.write(tail.rstrip(b"\n") + b"\n")
    with open(prefix + ".sha256", "w") as f:
        f.write(h.hexdigest() + "\n")


def merge(prefix, rounds):
    """One hyperfine export with the times of every round's single run."""
    times = []
    for n in range(1, rounds + 1):
        name = f"{prefix}.round{n}.json"
        with open(name) as f:
            times += json.load(f)["results"][0]["times"]
        os.remove(name)
    with open(prefix + ".json", "w") as f:
        json.dump({"results": [{"median": statistics.median(times), "times": times}]}, f)


def main():
    if sys.argv[1] == "--digest":
        digest(sys.argv[2])
        return
    if sys.argv[1] == "--merge":
        merge(sys.argv[2], int(sys.argv[3]))
        return
    res, out = sys.argv[1], sys.argv[2]
    rows = load(res)
    run = read_kv(os.path.join(res, "run.txt"))
    get = lambda cap, tool: rows.get(f"{cap}.{tool}")  # noqa: E731
    med = lambda cap, tool: get(cap, tool)["median"] if get(cap, tool) else None  # noqa: E731
    p = print

    p(f"## tcplife benchmark, {run.get('date', '?')}")
    p()
    p(f"- machine: {run.get('machine', '?')}")
    p(f"- load average (1, 5, 15 min): {run.get('load_before', '?')} before, "
      f"{run.get('load_after', '?')} after")
    p(f"- tcplife {run.get('tcplife', '?')}; {run.get('tools', '')}")
    p(f"- {run.get('runs', '')}; peak RSS from `/usr/bin/time -v`; each timed run's capture read into the page cache just before it")
    try:
        load1 = float(run.get("load_before", "0").split()[0])
    except ValueError:
        load1 = 0.0
    if load1 > 1.0:
        p(f"- **the machine was busy (load {load1} on {os.cpu_count()} cores): noisy timings**")
    for cap, title in (("many", "many-connection"), ("bulk", "bulk")):
        info = read_kv(os.path.join(res, f"{cap}.capture.txt"))
        size = int(info.get("size_bytes", "0"))
        ro = get(cap, "read-only")
        frames = ro["extra"]["frames"] if ro else None
        drops = re.search(r"dropped_by_kernel=(\S*)", info.get("tcpdump packets", ""))
        p(f"- {title} capture `{cap}.pcap`: {size / 1e9:.2f} GB, "
          f"{frames:,} packets; {info.get('traffic', '')}; "
          f"tcpdump dropped {drops.group(1) if drops else '?'}")
    p()

    tools = [t for t in TOOLS if get("many", t[0]) or get("bulk", t[0])]
    p("| tool | many-connection capture | ×floor | peak RSS | connections found "
      "| bulk capture | ×floor | peak RSS | connections found |")
    p("|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    for tool, label in tools:
        cells = [label]
        for cap in ("many", "bulk"):
            r = get(cap, tool)
            if not r:
                cells += ["", "", "", ""]
                continue
            c = "" if r["count"] is None else f"{r['count']:,}"
            if tool.startswith("floor") and c:
                c += " 4-tuples"
            cells += [secs(r["median"]), fmt_ratio(ratio(r["median"], med(cap, "floor"))),
                      mb(r["rss_kb"]), c]
        p("| " + " | ".join(cells) + " |")
    p()

    # Targets of issue 7, as ratios from this one run.
    p("| check (issue 7 target) | many-connection | bulk | |")
    p("|---|--:|--:|---|")

    def line(name, vals, target_ok, note=""):
        p(f"| {name} | {vals[0]} | {vals[1]} | {note}{check(target_ok)} |")

    tf = [ratio(med(c, "tcplife"), med(c, "floor")) for c in ("many", "bulk")]
    ok = None if None in tf else tf[0] <= 1.6 and tf[1] <= 1.3
    fs = [ratio(med(c, "tcplife"), med(c, "floor-stream")) for c in ("many", "bulk")]
    line("tcplife / floor (≤ 1.6 many, ≤ 1.3 bulk)",
         [fmt_ratio(x, bound=b) for x, b in zip(tf, (1.6, 1.3))], ok,
         f"against the floor reading with `read` calls: {fmt_ratio(fs[0])} many, "
         f"{fmt_ratio(fs[1])} bulk; " if None not in fs else "")
    # What reading the file in place is worth, to each program; tcplife maps only when asked.
    mt = [ratio(med(c, "tcplife-mmap"), med(c, "tcplife")) for c in ("many", "bulk")]
    mf = [ratio(med(c, "floor"), med(c, "floor-stream")) for c in ("many", "bulk")]
    mm = [ratio(med(c, "tcplife-mmap"), med(c, "floor")) for c in ("many", "bulk")]
    if None not in mt:
        line("tcplife --mmap / floor (the same targets, with the file mapped)",
             [fmt_ratio(x, bound=b) for x, b in zip(mm, (1.6, 1.3))],
             None if None in mm else mm[0] <= 1.6 and mm[1] <= 1.3,
             f"--mmap / default: {fmt_ratio(mt[0])} many, {fmt_ratio(mt[1])} bulk; "
             f"the floor mapped / with `read` calls: {fmt_ratio(mf[0])}, {fmt_ratio(mf[1])}; ")
    if get("many", "tcplife-pgo"):
        pf = [ratio(med(c, "tcplife-pgo"), med(c, "floor")) for c in ("many", "bulk")]
        pp = [ratio(med(c, "tcplife-pgo"), med(c, "tcplife")) for c in ("many", "bulk")]
        pt = [ratio(med(c, "tcptrace"), med(c, "tcplife-pgo")) for c in ("many", "bulk")]
        ps = [ratio(med(c, "tshark"), med(c, "tcplife-pgo")) for c in ("many", "bulk")]
        line("tcplife PGO build / floor (≤ 1.6 many, ≤ 1.3 bulk)",
             [fmt_ratio(x, bound=b) for x, b in zip(pf, (1.6, 1.3))],
             None if None in pf else pf[0] <= 1.6 and pf[1] <= 1.3,
             f"PGO / plain build: {fmt_ratio(pp[0])} many, {fmt_ratio(pp[1])} bulk; "
             f"tcptrace / PGO build: {fmt_ratio(pt[0], 1, 5)}, {fmt_ratio(pt[1], 1, 5)}; "
             f"tshark / PGO build: {fmt_ratio(ps[0], 1, 20)}, {fmt_ratio(ps[1], 1, 20)}; ")
    else:
        p(f"| tcplife PGO build | | | {run.get('pgo_build', 'not made')} |")
    tt = [ratio(med(c, "tcptrace"), med(c, "tcplife")) for c in ("many", "bulk")]
    line("tcptrace / tcplife (≥ 5)", [fmt_ratio(x, 1, 5) for x in tt],
         None if None in tt else min(tt) >= 5)
    ts = [ratio(med(c, "tshark"), med(c, "tcplife")) for c in ("many", "bulk")]
    line("tshark / tcplife (≥ 20)", [fmt_ratio(x, 1, 20) for x in ts],
         None if None in ts else min(ts) >= 20)
    rss = [get(c, "tcplife")["rss_kb"] if get(c, "tcplife") else None for c in ("many", "bulk")]
    line("tcplife peak RSS (≤ 100 MB)", [mb(x) for x in rss],
         None if None in rss else max(rss) <= 100 * 1024)
    x1, x2 = get("many", "tcplife"), get("x2", "tcplife")
    if x1 and x2:
        grow = x2["rss_kb"] / x1["rss_kb"] - 1
        line("peak RSS, capture twice concatenated vs once (≤ +10 %)",
             [f"{mb(x2['rss_kb'])} vs {mb(x1['rss_kb'])}: {grow:+.1%}", ""], grow <= 0.10,
             f"x2: {x2['count']:,} connections in {secs(x2['median'])}; ")
    thr = sorted(t for t in ("tcplife-t1", "tcplife-t2", "tcplife-t4") if get("many", t))
    if len(thr) >= 2:
        sp = [ratio(med(c, thr[0]), med(c, thr[-1])) for c in ("many", "bulk")]
        # The default twice as well: the same output on every run, not only every thread count.
        same = thr + [t for t in ("tcplife", "tcplife-again", "tcplife-mmap", "tcplife-pgo")
                      if get("many", t)]
        outs = {get(c, t)["sha256"] for c in ("many",) for t in same}
        line(f"{thr[0]} / {thr[-1]} (≥ 1.6 many)", [fmt_ratio(x, bound=1.6) for x in sp],
             None if sp[0] is None else sp[0] >= 1.6,
             "outputs byte-identical; " if len(outs) == 1 else "**outputs differ**; ")
    else:
        line("--threads", ["flag absent", "flag absent"], None)
    # The --threads target is set on JSON lines; the other formats, against it too.
    for fmt, name, note in (("text", "text summary (the default format)", True),
                            ("zeek", "Zeek log", False)):
        one, default = f"tcplife-{fmt}-t1", f"tcplife-{fmt}"
        if not get("many", one):
            continue
        sp = [ratio(med(c, one), med(c, default)) for c in ("many", "bulk")]
        same = ""
        if note:
            outs = {get("many", t)["sha256"] for t in (one, default)}
            same = "outputs byte-identical; " if len(outs) == 1 else "**outputs differ**; "
        line(f"{name}: --threads 1 / default (≥ 1.6 many)",
             [fmt_ratio(x, bound=1.6) for x in sp], None if sp[0] is None else sp[0] >= 1.6,
             f"{secs(med('many', default))} vs {secs(med('many', one))} on many; "
             f"/ JSON lines: {fmt_ratio(ratio(med('many', default), med('many', 'tcplife')))}; "
             + same)
    pn = ratio(med("pcapng", "tcplife"), med("pcapng", "tcplife-pcap"))
    pf = ratio(med("pcapng", "floor"), med("pcapng", "floor-pcap"))
    line("pcapng / pcap, same packets (≤ 1.2)", [fmt_ratio(pn, bound=1.2), ""],
         None if pn is None else pn <= 1.2,
         f"timed in turns: {secs(med('pcapng', 'tcplife'))} vs "
         f"{secs(med('pcapng', 'tcplife-pcap'))}; floor: {fmt_ratio(pf)}; ")
    # The same command twice, in the same turns: not a target, the run's own noise.
    again = [ratio(med(c, "tcplife-again"), med(c, "tcplife")) for c in ("many", "bulk")]
    if None not in again:
        line("noise: the default command timed twice, second / first",
             [fmt_ratio(x) for x in again], None,
             f"{secs(med('many', 'tcplife-again'))} vs {secs(med('many', 'tcplife'))} on many; "
             "ratios closer to 1 than this are inside the noise")
    gz, gd = med("gzip", "tcplife"), med("gzip", "gzip-dc")
    line("gzip: tcplife on .pcap.gz / `gzip -dc` alone (≈ 1)",
         [fmt_ratio(ratio(gz, gd)), ""], None,
         f"{secs(gz)} vs {secs(gd)}; tcplife on the .pcap: {secs(med('many', 'tcplife'))}")
    # Not a target: the sorted document, whose records go through temporary files in TMPDIR.
    doc = get("document", "json-document")
    if doc:
        line("`--format json` document / JSON lines (no target)",
             [fmt_ratio(ratio(doc["median"], med("many", "tcplife"))), ""], None,
             f"{secs(doc['median'])} ({secs(doc['min'])}–{secs(doc['max'])}), "
             f"peak RSS {mb(doc['rss_kb'])}")
    p()

    counts = []
    for tool in ("tcplife", "tshark", "tcptrace", "floor"):
        r = get("many", tool)
        if r and r["count"] is not None:
            note = {"floor": " distinct 4-tuples"}.get(tool, "")
            counts.append(f"{tool} {r['count']:,}{note}")
    tl = get("many", "tcplife")
    p("Connections in the many-connection capture: " + ", ".join(counts) + ".")
    if tl:
        p(f"tcplife flags {tl['extra']['time_wait_reuse']:,} `time_wait_reuse` anomalies "
          f"(peak {tl['extra']['peak_concurrent']:,} connections tracked at once).")
    p()
    p("<details><summary>every timed command (median, min–max, runs)</summary>")
    p()
    p("| id | median | min–max | runs | peak RSS | command |")
    p("|---|--:|--:|--:|--:|---|")
    for rid, r in rows.items():
        cmd = r["command"].replace(out + "/", "bench/out/").replace("|", "\\|").strip()
        cmd = re.sub(r"\S*/target/release/", "", cmd)
        p(f"| {rid} | {secs(r['median'])} | {secs(r['min'])}–{secs(r['max'])} | {r['runs']} "
          f"| {mb(r['rss_kb'])} | `{cmd}` |")
    p()
    p("</details>")


if __name__ == "__main__":
    main()
