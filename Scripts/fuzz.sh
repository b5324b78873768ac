#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the two libFuzzer targets of the Fuzz/ package (release, AddressSanitizer, coverage; the
# model from the root package is instrumented with them) and runs each for about
# SECONDS seconds (default 30), starting from its committed corpus in Fuzz/corpus/<name>.
#
#   Scripts/fuzz.sh [SECONDS]
#
# Prints executions and corpus sizes per target; exits non-zero when a target crashes (a finding
# aborts: an errno Linux does not have, a broken invariant, a leak, a WARN, or a sanitizer report),
# leaving the input in .build-fuzz/crashes/. Replay one with the same decoder in a plain build:
#   swift run --package-path Fuzz VFIOFuzzOps <file>   (SWIFTVFIO_FUZZ_TRACE=1 prints each operation)
# and add it as a regression test (Tests/VFIOFuzzTests).
#
# New inputs go to .build-fuzz/corpus-new/<name>; with FUZZ_UPDATE_CORPUS=1 they are merged into
# Fuzz/corpus/<name> by libFuzzer's set-cover merge (only inputs that add coverage are kept).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-30}
export SWIFT_BACKTRACE=enable=no   # the crash handler trips ASan (Swift's backtracer installs its own signal handlers)
scratch=.build-fuzz

# `--sanitize=fuzzer --sanitize=address` alone is not enough: SwiftPM passes them to swiftc as two
# flags, the swift driver keeps only the last -sanitize=, and their order varies from run to run
# (a set), so Swift code gets either coverage or ASan. The extra -Xswiftc flag comes last and
# asks for both. (C targets get both from clang either way.)
flags=(--package-path Fuzz -c release --sanitize=fuzzer --sanitize=address -Xswiftc -sanitize=fuzzer,address
       --scratch-path "$PWD/$scratch")
for product in VFIOFuzzOps VFIOFuzzTopology; do
  echo "==> swift build ${flags[*]} --product $product"
  swift build "${flags[@]}" --product "$product" 2>&1 | grep -v "Cannot export local symbol '__asan_extra_spill_area'" | tail -n 3
done
bin=$(swift build "${flags[@]}" --show-bin-path)

status=0
run() {
  local name=$1 corpus=$2 maxlen=$3
  local new=$scratch/corpus-new/$name crashes=$scratch/crashes log=$scratch/fuzz-$name.log
  mkdir -p "$new" "$crashes"
  local before
  before=$(find "$corpus" -type f | wc -l)
  echo "==> $name: $seconds s from $corpus ($before inputs)"
  set +e
  "$bin/$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -max_len="$maxlen" \
    -print_final_stats=1 -artifact_prefix="$crashes/$name-" "$new" "$corpus" >"$log" 2>&1
  local rc=$?
  set -e
  local execs corp
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  corp=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | sed -n 's/.*corp: \([0-9]*\)\/.*/\1/p')
  echo "$name: ${execs:-?} executions, corpus ${before} -> ${corp:-?} inputs ($(find "$new" -type f | wc -l) new in $new)"
  if [ "$rc" -ne 0 ]; then
    echo "$name: CRASH (libFuzzer exit $rc); last lines of $log:"
    grep -E 'findings|Fatal error|ERROR:|SUMMARY|Test unit written|^  ' "$log" | tail -n 25
    status=1
  elif [ "${FUZZ_UPDATE_CORPUS:-0}" = 1 ]; then
    "$bin/$name" -set_cover_merge=1 -max_len="$maxlen" "$corpus" "$new" >>"$log" 2>&1
    echo "$name: corpus merged: $(find "$corpus" -type f | wc -l) inputs in $corpus"
  fi
}
run VFIOFuzzOps Fuzz/corpus/ops 600
run VFIOFuzzTopology Fuzz/corpus/topology 4096
exit $status
