#!/usr/bin/env bash
# tcplife's benchmark: makes two captures of real kernel traffic, builds tcplife and the parse
# floor, times them against tcptrace and tshark in one run and prints a markdown table.
#
# Usage:   bench/run.sh [--scale full|small] [options]      (as root; see bench/README.md)
#
#   --scale full|small     full (default): ~1.2 GB / ~350,000 connections + ~1 GB bulk;
#                          small: ~50 MB / 15,000 connections + 50 MB bulk, a quick check
#   --connections N        many-connection capture: connections (responses) to make
#   --file-bytes N         many-connection capture: size of the file served (default 2048)
#   --bulk-bytes SIZE      bulk capture: iperf3 -n (e.g. 1000M)
#   --runs N               timed runs of each fast command (default 5)
#   --slow-runs N          timed runs of tcptrace, tshark and tcplife on the doubled capture (default 3)
#   --regenerate           remake the captures even if bench/out has them with these settings
#   --captures-only        make the captures (and their copies) and stop
#   --no-capture           time what bench/out already holds (no root needed)
#   --no-install           do not apt-get install missing tools
#   --out DIR              captures and results in DIR instead of bench/out
#   --clean                delete bench/out and stop
#
# Captures, copies and raw results go to bench/out/ (ignored by git); the table is printed and
# kept in bench/out/results/table.md, the raw numbers beside it.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
OUT=$HERE/out

SCALE=full CONNECTIONS= FILE_BYTES=2048 BULK_BYTES= RUNS=5 SLOW_RUNS=3
REGENERATE=0 CAPTURES_ONLY=0 NO_CAPTURE=0 INSTALL=1 CLEAN=0

die() { echo "run.sh: $*" >&2; exit 1; }
say() { printf '\n== %s\n' "$*" >&2; }

while [[ $# -gt 0 ]]; do
    case $1 in
    --scale) SCALE=${2:?}; shift 2 ;;
    --connections) CONNECTIONS=${2:?}; shift 2 ;;
    --file-bytes) FILE_BYTES=${2:?}; shift 2 ;;
    --bulk-bytes) BULK_BYTES=${2:?}; shift 2 ;;
    --runs) RUNS=${2:?}; shift 2 ;;
    --slow-runs) SLOW_RUNS=${2:?}; shift 2 ;;
    --regenerate) REGENERATE=1; shift ;;
    --captures-only) CAPTURES_ONLY=1; shift ;;
    --no-capture) NO_CAPTURE=1; shift ;;
    --no-install) INSTALL=0; shift ;;
    --out) OUT=${2:?}; shift 2 ;;
    --clean) CLEAN=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option: $1 (see --help)" ;;
    esac
done
if [[ $CLEAN == 1 ]]; then rm -rf "$OUT"; echo "removed $OUT"; exit 0; fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RES=$OUT/results
case $SCALE in
full) : "${CONNECTIONS:=350000}" "${BULK_BYTES:=1000M}" ;;
small) : "${CONNECTIONS:=15000}" "${BULK_BYTES:=50M}" ;;
*) die "--scale is full or small" ;;
esac

# ---------------------------------------------------------------------------------------------
# Tools: Debian packages, installed non-interactively when missing.
need=()
want() { command -v "$1" >/dev/null 2>&1 || need+=("$2"); }
want jq jq
want python3 python3
want hyperfine hyperfine
want tcptrace tcptrace
want tshark tshark
want editcap wireshark-common
want mergecap wireshark-common
want gzip gzip
[[ -x /usr/bin/time ]] || need+=(time)
if [[ $NO_CAPTURE == 0 ]]; then
    want ip iproute2
    want ethtool ethtool
    want tcpdump tcpdump
    want nginx nginx
    want wrk wrk
    want iperf3 iperf3
fi
if [[ ${#need[@]} -gt 0 ]]; then
    [[ $INSTALL == 1 ]] || die "missing: ${need[*]} (run without --no-install, as root)"
    [[ $EUID -eq 0 ]] || die "missing: ${need[*]}; run as root to install them"
    say "installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    # The Debian package starts a stock nginx in the root namespace: the capture runs its own.
    if [[ " ${need[*]} " == *" nginx "* ]] && command -v systemctl >/dev/null; then
        systemctl stop nginx 2>/dev/null || true
    fi
fi

# ---------------------------------------------------------------------------------------------
say "building tcplife and the parse floor (release)"
(cd "$ROOT" && cargo build --release --locked --quiet)
cargo build --release --locked --quiet --manifest-path "$HERE/floor/Cargo.toml"
TCPLIFE=$ROOT/target/release/tcplife
FLOOR=$HERE/floor/target/release/tcplife-floor
# The profile-guided build (bench/pgo.sh, trained on testdata/ only), timed beside the plain
# one; left out, with a note in the table, when no llvm-profdata of rustc's LLVM can be had.
say "building tcplife with profile-guided optimisation (bench/pgo.sh)"
pgo_args=()
if [[ $INSTALL == 1 && $EUID -eq 0 ]]; then pgo_args=(--install); fi
TCPLIFE_PGO=$("$HERE/pgo.sh" "${pgo_args[@]}") || TCPLIFE_PGO=

# ---------------------------------------------------------------------------------------------
# Captures. Each records the settings it was made with; a different setting remakes it.
mkdir -p "$OUT"
MANY=$OUT/many.pcap BULK=$OUT/bulk.pcap
MANY_PARAMS="many connections=$CONNECTIONS file_bytes=$FILE_BYTES payload=base64-random"
BULK_PARAMS="bulk bytes=$BULK_BYTES streams=2 paced=1G"

have_capture() { # FILE PARAMS
    [[ -s $1 && -s ${1%.pcap}.params && $(cat "${1%.pcap}.params") == "$2" ]]
}
make_capture() { # FILE PARAMS capture.sh-args...
    local file=$1 params=$2
    shift 2
    if [[ $REGENERATE == 0 ]] && have_capture "$file" "$params"; then
        echo "$(basename "$file"): kept ($params)" >&2
        return
    fi
    [[ $NO_CAPTURE == 0 ]] || die "no $(basename "$file") made with: $params (run without --no-capture)"
    [[ $EUID -eq 0 ]] || die "making captures needs root (network namespaces)"
    say "capturing: $params"
    rm -f "${file%.pcap}".*
    "$HERE/capture.sh" "$OUT" "$@"
    echo "$params" >"${file%.pcap}.params"
}
make_capture "$MANY" "$MANY_PARAMS" many "$CONNECTIONS" "$FILE_BYTES"
make_capture "$BULK" "$BULK_PARAMS" bulk "$BULK_BYTES" 2

# Copies of the many-connection capture: pcapng, gzip, and twice concatenated (the second copy
# shifted to start within a second of the first one's end: one timeline, twice as long at the
# same rate, with TIME-WAITs still running across the join, as a longer capture would have).
fresh() { [[ -s $1 && $1 -nt $MANY ]]; }
if ! fresh "$OUT/many.pcapng"; then
    say "many.pcapng"
    editcap -F pcapng "$MANY" "$OUT/many.pcapng"
fi
if ! fresh "$OUT/many.pcap.gz"; then
    say "many.pcap.gz"
    gzip -c "$MANY" >"$OUT/many.pcap.gz.tmp" && mv "$OUT/many.pcap.gz.tmp" "$OUT/many.pcap.gz"
fi
if ! fresh "$OUT/many-x2.pcap"; then
    say "many-x2.pcap"
    span=$(capinfos -a -e -S -T -r "$MANY" | awk -F'\t' '{ printf "%d", $3 - $2 + 1 }')
    editcap -F pcap -t "$span" "$MANY" "$OUT/.many-shifted.pcap"
    mergecap -F pcap -a -w "$OUT/many-x2.pcap" "$MANY" "$OUT/.many-shifted.pcap"
    rm -f "$OUT/.many-shifted.pcap"
fi
[[ $CAPTURES_ONLY == 0 ]] || { ls -l "$OUT" >&2; exit 0; }

# ---------------------------------------------------------------------------------------------
# Timing: for each command, one run under /usr/bin/time -v (peak RSS, and the output the counts
# come from; it also warms the page cache), then hyperfine's timed runs.
rm -rf "$RES"
mkdir -p "$RES"
MANIFEST=$RES/manifest.tsv
printf 'id\tcapture\ttool\tcommand\twarm\n' >"$MANIFEST"

# Read before every timed run: the command's capture (every command below ends with it), back
# into the page cache. On the benchmark's machine the cache did not keep all of a run's
# captures (about 6 GB): pages of one were gone minutes after it was read, with memory free,
# and a run that reads part of its capture from the disk times the disk. A whole read from
# memory takes 0.2-0.4 s.
warm_command() { # FILE
    printf '%q ' dd if="$1" of=/dev/null bs=1M status=none
}

# RUNS 0: only the /usr/bin/time run; the timed runs are left to `alternate`.
measure() { # CAPTURE TOOL RUNS -- COMMAND...   (results in $RES/CAPTURE.TOOL.*)
    local capture=$1 tool=$2 runs=$3
    local id=$capture.$tool
    shift 4
    local line warm
    line=$(printf '%q ' "$@")
    warm=$(warm_command "${!#}")
    printf '%s\t%s\t%s\t%s\t%s\n' "$id" "$capture" "$tool" "$line" "$warm" >>"$MANIFEST"
    echo "  $id: $line" >&2
    if [[ $tool == tcplife* ]]; then
        # Its JSON lines outweigh the capture: keep their SHA-256 and the summary line only.
        /usr/bin/time -v -o "$RES/$id.time" "$@" 2>"$RES/$id.err" |
            python3 "$HERE/report.py" --digest "$RES/$id"
        local status=${PIPESTATUS[0]}
        [[ $status == 0 ]] || die "$id failed (exit $status): see $RES/$id.err"
    else
        local keep=$RES/$id.out
        # The decompressed capture itself, or a 2.4 GB JSON document: not kept.
        [[ $tool != gzip-dc && $tool != json-document ]] || keep=/dev/null
        /usr/bin/time -v -o "$RES/$id.time" "$@" >"$keep" 2>"$RES/$id.err" ||
            die "$id failed (exit $?): see $RES/$id.err"
    fi
    [[ $runs -gt 0 ]] || return 0
    hyperfine -N --output=null --style=none --runs "$runs" --prepare "$warm" \
        --export-json "$RES/$id.json" -- "$line" >/dev/null 2>"$RES/$id.hyperfine.err" ||
        die "hyperfine failed on $id: see $RES/$id.hyperfine.err"
}

# Times commands already given to `measure` (with RUNS 0) in turns, one run of each per round,
# so that a ratio between them is not the machine's drift between two blocks of runs.
alternate() { # RUNS ID...
    local runs=$1 round id
    shift
    for ((round = 1; round <= runs; round++)); do
        for id in "$@"; do
            hyperfine -N --output=null --style=none --runs 1 \
                --prepare "$(awk -F'\t' -v id="$id" '$1 == id { print $5 }' "$MANIFEST")" \
                --export-json "$RES/$id.round$round.json" -- \
                "$(awk -F'\t' -v id="$id" '$1 == id { print $4 }' "$MANIFEST")" \
                >/dev/null 2>"$RES/$id.hyperfine.err" ||
                die "hyperfine failed on $id: see $RES/$id.hyperfine.err"
        done
    done
    for id in "$@"; do
        python3 "$HERE/report.py" --merge "$RES/$id" "$runs"
    done
}

THREADS=()
if "$TCPLIFE" analyze --help | grep -q -- '--threads'; then
    THREADS=(1 "$(nproc)")
fi

# The builds just before leave the one-minute load average above 1 for a minute or two, and
# tcplife's two threads feel a busy machine more than the single-threaded floor: wait (at most
# three minutes) for it to settle.
for ((waited = 0; waited < 180; waited += 10)); do
    awk -v l="$(cut -d' ' -f1 /proc/loadavg)" 'BEGIN { exit !(l > 0.5) }' || break
    sleep 10
done

{
    echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "machine: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores, $(free -g | awk '/^Mem:/ { print $2 }') GiB, $(uname -sr)"
    echo "load_before: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "tcplife: $(git -C "$ROOT" describe --always --dirty 2>/dev/null || echo unknown), $(rustc --version)"
    if [[ -n $TCPLIFE_PGO ]]; then
        echo "pgo_build: made by bench/pgo.sh, trained on testdata/"
    else
        echo "pgo_build: none (bench/pgo.sh found no llvm-profdata of the LLVM rustc uses)"
    fi
    echo "tools: $(tshark --version | head -1); tcptrace $(tcptrace -v 2>&1 | sed -n 's/.*version \([0-9.]*\).*/\1/p' | head -1); hyperfine $(hyperfine --version | cut -d' ' -f2)"
    echo "runs: $RUNS (tcptrace, tshark: $SLOW_RUNS); medians"
    echo "threads_flag: ${THREADS[*]:-absent}"
} >"$RES/run.txt"
cat "$RES/run.txt" >&2
load1=$(cut -d' ' -f1 /proc/loadavg)
if awk -v l="$load1" 'BEGIN { exit !(l > 1.0) }'; then
    echo "run.sh: WARNING: load average $load1 on $(nproc) cores: timings will be noisy" >&2
fi

for cap in many bulk; do
    file=$OUT/$cap.pcap
    say "timing on $cap.pcap"
    # The floor and tcplife's variants in turns: their ratios are the targets. The default
    # command goes twice, as two ids: how far apart two timings of the same thing come out is
    # the noise every other ratio of the run carries.
    # The floor maps the file; it also reads it with `read` calls, as tcplife does unless given
    # --mmap, which is timed too: what mapping is worth to each.
    turns=("$cap.read-only" "$cap.floor" "$cap.floor-stream" "$cap.tcplife" "$cap.tcplife-again"
        "$cap.tcplife-mmap")
    measure "$cap" read-only 0 -- "$FLOOR" --read-only "$file"
    measure "$cap" floor 0 -- "$FLOOR" "$file"
    measure "$cap" floor-stream 0 -- "$FLOOR" --stream "$file"
    measure "$cap" tcplife 0 -- "$TCPLIFE" analyze --quiet --format jsonl "$file"
    measure "$cap" tcplife-again 0 -- "$TCPLIFE" analyze --quiet --format jsonl "$file"
    measure "$cap" tcplife-mmap 0 -- "$TCPLIFE" analyze --quiet --format jsonl --mmap "$file"
    for n in "${THREADS[@]}"; do
        measure "$cap" "tcplife-t$n" 0 -- \
            "$TCPLIFE" analyze --quiet --format jsonl --threads "$n" "$file"
        turns+=("$cap.tcplife-t$n")
    done
    if [[ -n $TCPLIFE_PGO ]]; then
        measure "$cap" tcplife-pgo 0 -- "$TCPLIFE_PGO" analyze --quiet --format jsonl "$file"
        turns+=("$cap.tcplife-pgo")
    fi
    # The other output formats (no target of their own): the text summary, which `analyze`
    # writes when not told otherwise, and the Zeek log; each with one thread too.
    for format in text zeek; do
        measure "$cap" "tcplife-$format" 0 -- \
            "$TCPLIFE" analyze --quiet --format "$format" "$file"
        turns+=("$cap.tcplife-$format")
        if [[ ${#THREADS[@]} -gt 0 ]]; then
            measure "$cap" "tcplife-$format-t1" 0 -- \
                "$TCPLIFE" analyze --quiet --format "$format" --threads 1 "$file"
            turns+=("$cap.tcplife-$format-t1")
        fi
    done
    alternate "$RUNS" "${turns[@]}"
    measure "$cap" tcptrace "$SLOW_RUNS" -- tcptrace -n "$file"
    measure "$cap" tshark "$SLOW_RUNS" -- tshark -q -z conv,tcp -r "$file"
done

say "timing the copies of many.pcap"
# pcapng against pcap: the same packets, timed in turns.
measure pcapng tcplife 0 -- "$TCPLIFE" analyze --quiet --format jsonl "$OUT/many.pcapng"
measure pcapng tcplife-pcap 0 -- "$TCPLIFE" analyze --quiet --format jsonl "$MANY"
measure pcapng floor 0 -- "$FLOOR" "$OUT/many.pcapng"
measure pcapng floor-pcap 0 -- "$FLOOR" "$MANY"
alternate "$RUNS" pcapng.tcplife pcapng.tcplife-pcap pcapng.floor pcapng.floor-pcap
measure gzip tcplife "$RUNS" -- "$TCPLIFE" analyze --quiet --format jsonl "$OUT/many.pcap.gz"
measure gzip gzip-dc "$RUNS" -- gzip -dc "$OUT/many.pcap.gz"
measure x2 tcplife "$SLOW_RUNS" -- "$TCPLIFE" analyze --quiet --format jsonl "$OUT/many-x2.pcap"
# The sorted JSON document (not a target): its records go through temporary files in TMPDIR.
measure document json-document "$SLOW_RUNS" -- \
    "$TCPLIFE" analyze --quiet --format json "$MANY"

echo "load_after: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$RES/run.txt"
for f in "$OUT"/many.capture.txt "$OUT"/bulk.capture.txt; do cp "$f" "$RES/"; done
python3 "$HERE/report.py" "$RES" "$OUT" | tee "$RES/table.md"
