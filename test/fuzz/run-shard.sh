#!/usr/bin/env bash
# One shard of a long helsim_fuzz run, spread over machines with the seed sharding of the seed
# loop (docs/testing.md, "Sweeping millions of seeds across machines"): HELSIM_SHARD=i/n.
#
#   HELSIM_SHARD=3/100 test/fuzz/run-shard.sh FUZZER SECONDS OUT_DIR
#
# Shard i fuzzes with libFuzzer's -seed=i+1 (so no two shards mutate alike) into its own
# corpus OUT_DIR/corpus-i, starting from the committed corpus, and keeps findings in
# OUT_DIR/artifacts-i/. Once every shard has ended, merge their corpora into one
# (libFuzzer keeps the inputs that add coverage):
#
#   FUZZER -merge=1 OUT_DIR/merged OUT_DIR/corpus-*
#
# The exit status is the fuzzer's: nonzero when the shard found something.
set -euo pipefail

if (($# != 3)); then
	echo "usage: HELSIM_SHARD=i/n $0 FUZZER SECONDS OUT_DIR" >&2
	exit 2
fi
fuzzer="$1"
seconds="$2"
out="$3"
if [[ ! "${HELSIM_SHARD:-}" =~ ^([0-9]+)/([0-9]+)$ ]] ||
	((BASH_REMATCH[2] == 0 || BASH_REMATCH[1] >= BASH_REMATCH[2])); then
	echo "$0: HELSIM_SHARD must be i/n with 0 <= i < n (got '${HELSIM_SHARD:-}')" >&2
	exit 2
fi
index="${BASH_REMATCH[1]}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

mkdir -p "$out/corpus-$index" "$out/artifacts-$index"
exec "$fuzzer" -seed=$((index + 1)) -max_total_time="$seconds" -max_len=2048 -timeout=60 \
	-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
	-dict="$here/hel.dict" -artifact_prefix="$out/artifacts-$index/" \
	"$out/corpus-$index" "$here/corpus"
