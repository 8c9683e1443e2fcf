#!/usr/bin/env bash
# Regenerate the kernel-produced packet captures in testdata/kernel/.
#
# Usage:   sudo testdata/generate/generate.sh [--list] [scenario...]
#          (no scenario names: all of them, in the order of --list)
#
# Needs:   root (network namespaces, nft, tc, sysctl inside namespaces);
#          Linux with veth, nf_tables, the tbf qdisc and IPv6;
#          iproute2 (ip, tc), nftables (nft), tcpdump, python3 (stdlib only);
#          ethtool is optional (used to switch off offloads, see below).
# Time:    about 80 s for the full set (most of it fixed sleeps: keepalive
#          idles, a 6 s CLOSE-WAIT, 5 s of FIN retransmissions, ...).
#
# Every scenario runs in a fresh pair of namespaces, tl-cli and tl-srv,
# joined by a veth pair:
#
#     tl-cli: tl-c 10.77.0.1/24 fd77::1/64  <---->  tl-s 10.77.0.2/24 fd77::2/64 :tl-srv
#
# so no traffic leaves the namespaces and no state (TIME-WAIT, half-open
# entries, retransmission timers) carries over from one scenario to the next.
# Capture point: tcpdump on tl-c inside tl-cli, filter `tcp`.  On that tap,
# packets sent by the client are seen after tl-cli's netfilter output hook
# and after its qdisc, and packets from the server before tl-cli's input
# hook -- the scenarios rely on this to make packets vanish or wait.
# Offloads (TSO/GSO/GRO and checksum offload) are switched off on both veth
# ends when ethtool is available, so the capture holds wire-sized segments
# with valid checksums; without ethtool the captures are still usable but
# packets sent by the client carry unfilled TCP checksums.
#
# The scenarios themselves are in scenarios.py (one sequential Python program
# drives both endpoints); see README.md for what each capture contains.
#
# Three captures are not written by tcpdump directly but derived from a
# kernel capture made the same way (see post_process below):
# segment-not-captured and ack-of-unseen-data have one data segment removed
# (drop_packet.py, to simulate capture drops), and two-interfaces.pcapng
# joins a capture on each veth end, client side first (merge_pcapng.py).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export PYTHONDONTWRITEBYTECODE=1     # keep the source tree clean under sudo
OUT=$(cd "$HERE/.." && pwd)/kernel

CLI_NS=tl-cli
SRV_NS=tl-srv

ALL=(
    normal-client-close normal-server-close
    rst-abort-client rst-abort-server rst-unread-data
    refused unanswered-syn
    long-close-wait lost-final-ack
    time-wait-reuse time-wait-reuse-client
    simultaneous-close half-close-data syn-burst
    keepalive keepalive-timeout zero-window
    midstream many-connections ipv6-normal truncated-snaplen
    excessive-retransmission syn-in-open-connection syn-with-data
    simultaneous-open segment-not-captured ack-of-unseen-data
    two-interfaces
)

die() { echo "generate.sh: $*" >&2; exit 1; }

if [[ ${1:-} == --list ]]; then printf '%s\n' "${ALL[@]}"; exit 0; fi
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    sed -n '2,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0
fi

[[ $EUID -eq 0 ]] || die "must run as root (network namespaces, nft, tc)"
for tool in ip tc nft tcpdump python3 timeout; do
    command -v "$tool" >/dev/null || die "missing required tool: $tool"
done
HAVE_ETHTOOL=1
command -v ethtool >/dev/null || {
    HAVE_ETHTOOL=0
    echo "generate.sh: ethtool not found, leaving veth offloads on" \
         "(client-sent packets will show unfilled checksums)" >&2
}

if [[ $# -gt 0 ]]; then
    SELECTED=("$@")
    for s in "${SELECTED[@]}"; do
        found=0
        for a in "${ALL[@]}"; do [[ $s == "$a" ]] && found=1; done
        [[ $found == 1 ]] || die "unknown scenario '$s' (try --list)"
    done
else
    SELECTED=("${ALL[@]}")
fi

# -------------------------------------------------------------- cleanup

PY_PID=
TCPDUMP_PIDS=()
SYNC_DIR=

netns_down() {
    ip netns del "$CLI_NS" 2>/dev/null || true
    ip netns del "$SRV_NS" 2>/dev/null || true
}

# stop_tcpdump: SIGINT to every tcpdump we started (it flushes and closes
# the file), wait up to 5 s for each, then SIGKILL.
stop_tcpdump() {
    local i pid
    for pid in "${TCPDUMP_PIDS[@]}"; do
        kill -INT "$pid" 2>/dev/null || true
    done
    for pid in "${TCPDUMP_PIDS[@]}"; do
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    TCPDUMP_PIDS=()
}

cleanup() {
    local rc=$?
    stop_tcpdump
    if [[ -n $PY_PID ]]; then
        kill "$PY_PID" 2>/dev/null || true
        wait "$PY_PID" 2>/dev/null || true
    fi
    [[ -n $SYNC_DIR ]] && rm -rf "$SYNC_DIR"
    netns_down
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------- namespaces

ns() { local n=$1; shift; ip netns exec "$n" "$@"; }

netns_up() {
    netns_down
    ip netns add "$CLI_NS"
    ip netns add "$SRV_NS"
    ip -n "$CLI_NS" link add tl-c type veth peer name tl-s netns "$SRV_NS"
    local n dev a4 a6
    for spec in "$CLI_NS tl-c 10.77.0.1 fd77::1" "$SRV_NS tl-s 10.77.0.2 fd77::2"; do
        read -r n dev a4 a6 <<<"$spec"
        ip -n "$n" link set lo up
        ip -n "$n" addr add "$a4/24" dev "$dev"
        ip -n "$n" -6 addr add "$a6/64" dev "$dev" nodad
        if [[ $HAVE_ETHTOOL == 1 ]]; then
            ns "$n" ethtool -K "$dev" tso off gso off gro off tx off rx off \
                >/dev/null 2>&1 || echo "generate.sh: ethtool -K $dev failed" >&2
        fi
        ns "$n" nft add table inet tl
        ns "$n" nft add chain inet tl input \
            '{ type filter hook input priority 0; policy accept; }'
        ns "$n" nft add chain inet tl output \
            '{ type filter hook output priority 0; policy accept; }'
    done
    ip -n "$CLI_NS" link set tl-c up
    ip -n "$SRV_NS" link set tl-s up
    local i
    for ((i = 0; i < 50; i++)); do   # up to 5 s for carrier on both ends
        if ip -n "$CLI_NS" link show tl-c | grep -q LOWER_UP &&
           ip -n "$SRV_NS" link show tl-s | grep -q LOWER_UP; then
            return 0
        fi
        sleep 0.1
    done
    die "veth pair did not come up"
}

# ---------------------------------------------------------- one scenario

# wait_file FILE SECONDS: wait for FILE while the scenario process lives.
wait_file() {
    local f=$1 i
    for ((i = 0; i < $2 * 20; i++)); do
        [[ -e $f ]] && return 0
        kill -0 "$PY_PID" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# start_tcpdump NS DEV FILE LOG [tcpdump options...]: capture `tcp` on DEV
# inside NS and wait until tcpdump is listening.
start_tcpdump() {
    local ns=$1 dev=$2 file=$3 log=$4 i pid
    shift 4
    # Started as a simple command (not through the `ns` helper) so that $!
    # is the tcpdump process itself: `ip netns exec` execs it.
    ip netns exec "$ns" tcpdump -i "$dev" -Z root -U --immediate-mode \
        "$@" -w "$file" tcp 2>"$log" &
    pid=$!
    TCPDUMP_PIDS+=("$pid")
    for ((i = 0; i < 100; i++)); do
        grep -qs 'listening on' "$log" && return 0
        kill -0 "$pid" 2>/dev/null || die "tcpdump on $dev exited: $(cat "$log")"
        sleep 0.05
    done
    die "tcpdump on $dev did not start"
}

# post_process NAME RAW OUT: derive a fixture from the kernel capture RAW
# (client side) and, for two-interfaces, $SYNC_DIR/tl-s.pcap.
post_process() {
    case $1 in
    segment-not-captured)   # the 5th of the server's 10 data segments
        python3 "$HERE/drop_packet.py" --data-from 8080 --nth 5 "$2" "$3" ;;
    ack-of-unseen-data)     # the server's last data segment
        python3 "$HERE/drop_packet.py" --data-from 8080 --nth -1 "$2" "$3" ;;
    two-interfaces)
        python3 "$HERE/merge_pcapng.py" "$2" "$SYNC_DIR/tl-s.pcap" "$3" ;;
    *) die "$1: no post-processing defined" ;;
    esac
}

run_one() {
    local name=$1 rc=0
    local out="$OUT/$1.pcap" raw
    local derived=0 both_ends=0
    local -a snap=()
    case $name in
    truncated-snaplen) snap=(-s 80) ;;
    segment-not-captured | ack-of-unseen-data) derived=1 ;;
    two-interfaces) derived=1 both_ends=1 out="$OUT/$1.pcapng" ;;
    esac

    netns_up
    SYNC_DIR=$(mktemp -d /tmp/tl-gen.XXXXXX)
    rm -f "$out"
    raw=$out
    [[ $derived == 1 ]] && raw="$SYNC_DIR/tl-c.pcap"

    timeout 120 python3 "$HERE/scenarios.py" "$name" --sync "$SYNC_DIR" &
    PY_PID=$!

    wait_file "$SYNC_DIR/start-capture" 30 || die "$name: scenario failed before capture"
    start_tcpdump "$CLI_NS" tl-c "$raw" "$SYNC_DIR/tcpdump.log" "${snap[@]}"
    if [[ $both_ends == 1 ]]; then
        # The server end of the veth, with nanosecond time stamps.
        start_tcpdump "$SRV_NS" tl-s "$SYNC_DIR/tl-s.pcap" \
            "$SYNC_DIR/tcpdump-srv.log" --time-stamp-precision=nano
    fi
    sleep 0.1
    touch "$SYNC_DIR/capturing"

    wait_file "$SYNC_DIR/stop-capture" 100 || die "$name: scenario failed during capture"
    sleep 0.2                                   # last packets reach the tap
    stop_tcpdump
    touch "$SYNC_DIR/stopped"

    wait "$PY_PID" || rc=$?
    PY_PID=
    [[ $rc == 0 ]] || die "$name: scenario exited with status $rc"
    [[ $derived == 1 ]] && post_process "$name" "$raw" "$out"
    rm -rf "$SYNC_DIR"
    SYNC_DIR=
    netns_down

    printf '%-24s %6d packets %8d bytes\n' "${out##*/}" \
        "$(tcpdump -nr "$out" 2>/dev/null | wc -l)" "$(stat -c %s "$out")"
}

mkdir -p "$OUT"
for s in "${SELECTED[@]}"; do
    run_one "$s"
done
