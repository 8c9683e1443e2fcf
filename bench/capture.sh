#!/usr/bin/env bash
# Make the benchmark captures with real kernel traffic, inside a network namespace.
#
# Usage:   bench/capture.sh OUT_DIR many CONNECTIONS FILE_BYTES
#          bench/capture.sh OUT_DIR bulk BYTES STREAMS
# Needs:   root; ip, ethtool, tcpdump, timeout; nginx and wrk (many) or iperf3 (bulk).
#
# Writes OUT_DIR/many.pcap or OUT_DIR/bulk.pcap and, beside it, NAME.capture.txt: what was run,
# tcpdump's own counts (received, captured, dropped by kernel) and the namespace settings.
#
# The namespace (tlbench-PID) has nothing but its own loopback, set to MTU 1500 with TSO, GSO,
# GRO, scatter-gather and checksum offload off, so tcpdump on `lo` sees wire-sized segments
# with filled checksums. It is deleted on exit, with every process started in it.
#
# many: nginx (one process, access log off) serves one FILE_BYTES file on 127.0.0.1:8080; wrk
#   (1 thread, 64 connections, `Connection: close`, so one connection per request) stops after
#   CONNECTIONS responses or 300 s. Client and server share 127.0.0.1, ephemeral ports come
#   round again within seconds while the server side still holds the old 4-tuple in TIME-WAIT:
#   heavy 4-tuple reuse.
# bulk: iperf3 -P STREAMS sends BYTES in all (plus its control connection), each stream paced
#   at 1 Gbit/s so that tcpdump keeps up, 60 s at most.
set -euo pipefail

die() { echo "capture.sh: $*" >&2; exit 1; }
[[ $# -eq 4 ]] || die "usage: capture.sh OUT_DIR many|bulk N M"
OUT=$1 KIND=$2 ARG1=$3 ARG2=$4
[[ $EUID -eq 0 ]] || die "must run as root (network namespaces)"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

NS=tlbench-$$
WORK=$(mktemp -d "$OUT/.work-$KIND-XXXXXX")
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    ip netns pids "$NS" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$NS" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
nsx() { ip netns exec "$NS" "$@"; }
# In the background, exec'ed so that $! is the program itself (signals reach it).
nsx_bg() { (exec ip netns exec "$NS" "$@") & }

ip netns add "$NS"
nsx ip link set lo mtu 1500 up
# TSO, GSO and GRO can be switched off on lo; its checksum offload and scatter-gather are fixed
# on (so, as on any loopback capture, TCP checksums are not filled in: no tool here checks them).
nsx ethtool -K lo tso off gso off gro off
nsx ethtool -K lo tx off sg off >/dev/null 2>&1 || true
OFFLOADS=$(nsx ethtool -k lo | grep -E '^(tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload|tx-checksumming|scatter-gather):' | tr -s ' ' | paste -sd ',' -)

PCAP=$OUT/$KIND.pcap
INFO=$OUT/$KIND.capture.txt
rm -f "$PCAP" "$INFO"

# tcpdump on the namespace's loopback with a 512 MiB ring so it drops nothing; waits until it
# says it is listening.
start_tcpdump() {
    nsx_bg tcpdump -i lo -n -s 262144 -B 524288 -w "$PCAP" tcp 2>"$WORK/tcpdump.err"
    TCPDUMP=$!
    PIDS+=("$TCPDUMP")
    local i
    for i in $(seq 100); do
        grep -q 'listening on' "$WORK/tcpdump.err" && return 0
        sleep 0.1
    done
    cat "$WORK/tcpdump.err" >&2
    die "tcpdump did not start"
}

stop_tcpdump() {
    sleep 1   # the last FINs and ACKs
    kill -INT "$TCPDUMP"
    wait "$TCPDUMP" || true
    PIDS=("${PIDS[@]/$TCPDUMP}")
}

start=$(date +%s.%N)
case $KIND in
many)
    CONNECTIONS=$ARG1 FILE_BYTES=$ARG2
    mkdir -p "$WORK/www"
    # Text that compresses like real text, not like a repeated line (the gzip row depends on it).
    head -c "$FILE_BYTES" <(base64 -w 76 /dev/urandom) >"$WORK/www/f"
    chmod -R a+rX "$WORK"
    cat >"$WORK/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_timeout 0;
    server {
        listen 127.0.0.1:8080 backlog=4096;
        root $WORK/www;
    }
}
EOF
    nsx_bg nginx -c "$WORK/nginx.conf" -e "$WORK/nginx-error.log"
    PIDS+=($!)
    for _ in $(seq 100); do
        nsx bash -c 'exec 3<>/dev/tcp/127.0.0.1/8080' 2>/dev/null && break
        sleep 0.1
    done
    start_tcpdump
    sleep 0.5
    TCPLIFE_BENCH_REQUESTS=$CONNECTIONS nsx timeout 330 wrk -t1 -c64 -d300s --timeout 5s \
        -H 'Connection: close' -s "$HERE/wrk-stop.lua" http://127.0.0.1:8080/f \
        >"$WORK/wrk.out" 2>&1 || { cat "$WORK/wrk.out" >&2; die "wrk failed"; }
    stop_tcpdump
    WHAT="nginx $(nginx -v 2>&1 | sed 's/.*version: //') serving $FILE_BYTES bytes; wrk -t1 -c64 -H 'Connection: close', exit after $CONNECTIONS responses (or 300 s)"
    RUNLOG=$(grep -E 'wrk-stop|Socket errors|Non-2xx' "$WORK/wrk.out" | sed 's/^ *//' | paste -sd ';' -)
    ;;
bulk)
    BYTES=$ARG1 STREAMS=$ARG2
    nsx_bg iperf3 -s -1 -B 127.0.0.1 -p 5201 >"$WORK/iperf3-server.out" 2>&1
    PIDS+=($!)
    sleep 0.5
    start_tcpdump
    sleep 0.5
    # Paced at 1 Gbit/s a stream: unpaced, the streams ran at 4.3 Gbit/s on a 2-core machine
    # and tcpdump, writing the file on the other core, dropped 44 % of the packets.
    nsx timeout 60 iperf3 -c 127.0.0.1 -p 5201 -P "$STREAMS" -n "$BYTES" -b 1G \
        >"$WORK/iperf3.out" 2>&1 || { cat "$WORK/iperf3.out" >&2; die "iperf3 failed"; }
    stop_tcpdump
    WHAT="$(iperf3 --version | head -1 | cut -d' ' -f1-2) -P $STREAMS -n $BYTES -b 1G"
    RUNLOG=$(grep -E 'SUM.*(sender|receiver)|^\[ *[0-9]+\].*sender' "$WORK/iperf3.out" | tr -s ' ' | paste -sd ';' -)
    ;;
*) die "unknown capture kind: $KIND" ;;
esac
end=$(date +%s.%N)

received=$(sed -n 's/^\([0-9]*\) packets\{0,1\} received by filter.*/\1/p' "$WORK/tcpdump.err")
captured=$(sed -n 's/^\([0-9]*\) packets\{0,1\} captured.*/\1/p' "$WORK/tcpdump.err")
dropped=$(sed -n 's/^\([0-9]*\) packets\{0,1\} dropped by kernel.*/\1/p' "$WORK/tcpdump.err")
{
    echo "capture: $PCAP"
    echo "made: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -srm), in $(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }') s"
    echo "traffic: $WHAT"
    echo "run: $RUNLOG"
    echo "namespace loopback: mtu 1500; $OFFLOADS"
    echo "tcpdump: $(tcpdump --version 2>&1 | head -1) -i lo -s 262144 -B 524288 tcp"
    echo "tcpdump packets: received_by_filter=$received captured=$captured dropped_by_kernel=$dropped"
    echo "size_bytes: $(stat -c %s "$PCAP")"
} >"$INFO"
cat "$INFO"
[[ ${dropped:-1} == 0 ]] || echo "capture.sh: WARNING: tcpdump dropped ${dropped:-?} packets" >&2
