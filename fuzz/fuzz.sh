#!/usr/bin/env bash
# Runs one fuzz target of tcplife, niced, for a given time. Never run by CI.
#
#   fuzz/fuzz.sh TARGET [SECONDS] [-- LIBFUZZER_ARGS...]
#   fuzz/fuzz.sh all [SECONDS]          # each target in turn, SECONDS each
#
# TARGET: capture_reader, decode_frame or tracker. SECONDS defaults to 600.
#
# cargo-fuzz needs nightly-only rustc flags (-Z sanitizer, sanitizer coverage). Where only a
# stable toolchain can be had, RUSTC_BOOTSTRAP=1 makes stable rustc accept them; with a nightly
# toolchain installed, `FUZZ_TOOLCHAIN=nightly fuzz/fuzz.sh ...` uses it instead.
#
# The working corpus grows in fuzz/corpus/TARGET (not committed), seeded from the committed
# fuzz/seeds/TARGET; crashes land in fuzz/artifacts/TARGET.
set -euo pipefail
cd "$(dirname "$0")"

target=${1:?usage: fuzz/fuzz.sh TARGET|all [SECONDS] [-- LIBFUZZER_ARGS...]}
seconds=${2:-600}
shift $(( $# >= 2 ? 2 : 1 ))
if [[ ${1:-} == "--" ]]; then
    shift
fi

if [[ $target == all ]]; then
    for t in capture_reader decode_frame tracker; do
        "$0" "$t" "$seconds" -- "$@"
    done
    exit 0
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

toolchain=()
if [[ -n ${FUZZ_TOOLCHAIN:-} ]]; then
    toolchain=("+$FUZZ_TOOLCHAIN")
else
    export RUSTC_BOOTSTRAP=1
fi

# Largest input worth trying, and the sanitizer: AddressSanitizer for the capture reader (its
# dependencies, pcap-parser and the decompressors, use unsafe code), none for the decoder and
# the tracker (tcplife forbids unsafe code, and the fuzzer runs about twice as fast without).
case $target in
    capture_reader) max_len=16384 sanitizer=address ;;
    decode_frame) max_len=1024 sanitizer=none ;;
    tracker) max_len=4096 sanitizer=none ;;
    *) echo "unknown target $target" >&2; exit 2 ;;
esac

mkdir -p "corpus/$target"
exec nice -n 19 cargo "${toolchain[@]}" fuzz run --sanitizer "$sanitizer" "$target" \
    "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 "$@"
