#!/bin/sh
# Coverage-guided fuzzing (make fuzz): liveroot-core's fuzz targets under libFuzzer, each for
# FUZZ_SECONDS (default 60), or only FUZZ_TARGETS=a,b. Corpora grow under target/fuzz-corpus/NAME
# (seeded from the target's own valid inputs); the regression inputs in tests/fuzz/NAME are read
# as a corpus too. A crash is saved as tests/fuzz/NAME/crash-SHA1 and fails the run: commit it
# with the fix, and `cargo test` (fuzz::tests::regressions) replays it from then on.
set -eu
cd "$(dirname "$0")/.."
SECS=${FUZZ_SECONDS:-60}
TRIPLE=x86_64-unknown-linux-gnu
# Stable Rust: SanitizerCoverage through the sancov-module pass, the counters and comparison
# hooks libFuzzer reads; no -Zsanitizer (ASan is of no use to code without unsafe).
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing"
(cd fuzz && cargo build --locked --release --target $TRIPLE)
BIN=fuzz/target/$TRIPLE/release/liveroot-fuzz
TARGETS=$(echo "${FUZZ_TARGETS:-}" | tr , ' ')
[ -n "$TARGETS" ] || TARGETS=$(FUZZ_TARGET= $BIN 2>&1 | sed -n 's/.*one of: //p')
failed=
for t in $TARGETS; do
	corpus=target/fuzz-corpus/$t
	mkdir -p "$corpus" "tests/fuzz/$t"
	set -- "$corpus"
	[ -n "$(ls -A "tests/fuzz/$t")" ] && set -- "$@" "tests/fuzz/$t"
	if FUZZ_TARGET=$t FUZZ_SEEDS_TO=$corpus $BIN "$@" -max_total_time="$SECS" \
		-artifact_prefix="tests/fuzz/$t/" -print_final_stats=1 >"target/fuzz-$t.log" 2>&1; then
		echo "fuzz: $t: $(grep -o 'cov: [0-9]*' "target/fuzz-$t.log" | tail -n 1), $(grep -o 'stat::number_of_executed_units: *[0-9]*' "target/fuzz-$t.log" | grep -o '[0-9]*$') inputs, corpus $(ls "$corpus" | wc -l)"
	else
		echo "fuzz: $t: CRASHED; see target/fuzz-$t.log and tests/fuzz/$t/"
		failed="$failed $t"
	fi
done
rmdir tests/fuzz/* 2>/dev/null || true
[ -z "$failed" ] || { echo "fuzz: crashes in:$failed"; exit 1; }
