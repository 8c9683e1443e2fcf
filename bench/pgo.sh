#!/usr/bin/env bash
# Builds tcplife with profile-guided optimisation (PGO): an instrumented build analyses every
# capture in testdata/ (the project's fixtures, never the benchmark's captures), and the
# release build is then made again with the branch and call counts it recorded, so that the
# compiler lays out and inlines the code for the paths real captures take.
#
# Usage:   bench/pgo.sh [--install]
#
#   --install   install llvm-profdata when it is missing (Debian's llvm-N package, as root)
#
# The binary is target/pgo/release/tcplife; its profile, target/pgo/tcplife.profdata. Before
# printing the binary's path, the script runs `tcplife check testdata/kernel` with it: the PGO
# build must give the committed expectations. Takes about three and a half minutes
# (two release builds).
#
# llvm-profdata must come from the LLVM that rustc was built with (the same major version:
# `rustc -vV` names it); rustup's llvm-tools component has one, and so does Debian's llvm-N.
# Exit status 3 when none is found: the plain `cargo build --release` is then the build to use.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
INSTALL=0
case ${1:-} in
--install) INSTALL=1 ;;
"") ;;
-h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
*) echo "pgo.sh: unknown option: $1 (see --help)" >&2; exit 2 ;;
esac

say() { printf '== %s\n' "$*" >&2; }

LLVM_MAJOR=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
[[ -n $LLVM_MAJOR ]] || { echo "pgo.sh: rustc -vV names no LLVM version" >&2; exit 3; }

# An llvm-profdata of LLVM $LLVM_MAJOR, or nothing.
find_profdata() {
    local sysroot host candidate
    sysroot=$(rustc --print sysroot)
    host=$(rustc -vV | sed -n 's/^host: //p')
    for candidate in \
        "$sysroot/lib/rustlib/$host/bin/llvm-profdata" \
        "$(command -v "llvm-profdata-$LLVM_MAJOR" || true)" \
        "/usr/lib/llvm-$LLVM_MAJOR/bin/llvm-profdata" \
        "$(command -v llvm-profdata || true)"; do
        [[ -n $candidate && -x $candidate ]] || continue
        if "$candidate" --version 2>/dev/null | grep -q "LLVM version $LLVM_MAJOR\."; then
            echo "$candidate"
            return
        fi
    done
}

PROFDATA=$(find_profdata)
if [[ -z $PROFDATA && $INSTALL == 1 ]] && command -v apt-get >/dev/null; then
    say "installing llvm-$LLVM_MAJOR (for llvm-profdata)"
    SUDO=""; [[ $EUID -eq 0 ]] || SUDO="sudo"
    apt_install() {
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
            "llvm-$LLVM_MAJOR" >&2
    }
    # A fresh machine's package lists may be empty or stale.
    apt_install || { $SUDO apt-get update -q >&2 && apt_install; } || true
    PROFDATA=$(find_profdata)
fi
if [[ -z $PROFDATA ]]; then
    echo "pgo.sh: no llvm-profdata of LLVM $LLVM_MAJOR (rustc's): install Debian's" \
        "llvm-$LLVM_MAJOR or rustup's llvm-tools component, or run with --install" >&2
    exit 3
fi

OUT=$ROOT/target/pgo
GEN=$ROOT/target/pgo-generate
RAW=$GEN/profiles
rm -rf "$RAW"
mkdir -p "$RAW" "$OUT"

say "instrumented build"
(cd "$ROOT" && CARGO_TARGET_DIR=$GEN RUSTFLAGS="-Cprofile-generate=$RAW" \
    cargo build --release --locked --quiet)

say "training on the captures in testdata/"
mapfile -t captures < <(find "$ROOT/testdata" -type f \( -name '*.pcap' -o -name '*.pcapng' \) | sort)
ran=0
for capture in "${captures[@]}"; do
    # JSON lines with one thread and with the default, and the text summary: the benchmark's
    # command and what people read. Damaged fixtures end in an error, as they should.
    for args in "--format jsonl --threads 1" "--format jsonl" ""; do
        # shellcheck disable=SC2086
        if "$GEN/release/tcplife" analyze --quiet $args "$capture" >/dev/null 2>&1; then
            ran=$((ran + 1))
        fi
    done
done
[[ $ran -gt 0 ]] || { echo "pgo.sh: the instrumented build analysed nothing" >&2; exit 1; }
echo "$ran analyses of ${#captures[@]} captures" >&2
"$PROFDATA" merge -o "$OUT/tcplife.profdata" "$RAW"

say "optimised build with the profile"
(cd "$ROOT" && CARGO_TARGET_DIR=$OUT RUSTFLAGS="-Cprofile-use=$OUT/tcplife.profdata" \
    cargo build --release --locked --quiet)

say "checking the PGO build against testdata/kernel's expectations"
"$OUT/release/tcplife" check "$ROOT/testdata/kernel" >&2
echo "$OUT/release/tcplife"
