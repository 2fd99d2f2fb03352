#!/usr/bin/env bash
# Builds the FrameDecoder fuzz target with clang 14 (libFuzzer, AddressSanitizer,
# UBSan) and runs it over the committed seed corpus for a bounded time.
#
#   proto/fuzz/run_fuzz.sh [seconds]      (default: $EI_FUZZ_SECONDS, else 20)
#
# nlohmann/json comes from /usr/include (nlohmann-json3-dev), a default path.
# Under `bazel test` (//proto:frame_decoder_fuzz_test) the sources come from
# the runfiles; run by hand, from this checkout. Exits non-zero on a crash or
# a leak; the crashing input is written to $EI_FUZZ_ARTIFACTS (default: a
# temporary directory, or $TEST_UNDECLARED_OUTPUTS_DIR under Bazel).
set -euo pipefail

seconds="${1:-${EI_FUZZ_SECONDS:-20}}"
if [ -n "${TEST_SRCDIR:-}" ]; then
  root="$TEST_SRCDIR/extrainterpreters"
else
  root="$(cd "$(dirname "$0")/../.." && pwd)"
fi
clang="${CLANGXX:-clang++-14}"
if ! command -v "$clang" >/dev/null; then
  echo "run_fuzz.sh: $clang not found (Debian: apt-get install clang-14 libclang-rt-14-dev)" >&2
  exit 1
fi

work="$(mktemp -d "${TEST_TMPDIR:-/tmp}/ei-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT
artifacts="${EI_FUZZ_ARTIFACTS:-${TEST_UNDECLARED_OUTPUTS_DIR:-$work}}"
mkdir -p "$artifacts" "$work/corpus"

"$clang" -std=c++20 -O1 -g -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
  -I "$root" \
  "$root/proto/frame_codec.cc" "$root/proto/fuzz/frame_decoder_fuzzer.cc" \
  -o "$work/frame_decoder_fuzzer"

# New inputs go to a scratch copy: the committed corpus is only read.
cp "$root"/proto/fuzz/corpus/* "$work/corpus/"
echo "fuzzing proto::FrameDecoder for ${seconds} s"
UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  "$work/frame_decoder_fuzzer" -max_total_time="$seconds" -timeout=10 \
  -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
  -artifact_prefix="$artifacts/" "$work/corpus"
