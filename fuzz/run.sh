#!/usr/bin/env bash
# Runs every fuzz target for a fixed time each (default 60 s), one fuzzing
# process at a time, then prints and writes a summary: executions, exec/s,
# seconds, corpus size and crashes per target. Not run by CI.
#   bash fuzz/run.sh                           # every target, 60 s each
#   FUZZ_SECONDS=480 bash fuzz/run.sh pg_startup ws_framing
#   FUZZ_SECONDS=480 FUZZ_RUNS=10000000 bash fuzz/run.sh  # stop a target
#                                        # early once it has this many runs
#   FUZZ_SANITIZER=none bash fuzz/run.sh # no AddressSanitizer: several times
#                                        # the executions (see docs/fuzzing.md)
# Installs the nightly toolchain and cargo-fuzz when missing. Each target
# keeps its corpus in fuzz/corpus/<target>/ (not committed) and also reads
# the committed seeds in fuzz/seeds/<target>/; crashes go to
# fuzz/artifacts/<target>/; logs and the summary to fuzz/runs/<time>/.
# Exits non-zero if any target crashed.
set -euo pipefail
cd "$(dirname "$0")"
SECS=${FUZZ_SECONDS:-60}
# cargo-fuzz's default is AddressSanitizer. Every Warren crate forbids
# unsafe code, so for long campaigns `none` buys executions; debug
# assertions and overflow checks stay on either way.
SANITIZER=${FUZZ_SANITIZER:-address}
case "$SANITIZER" in
  address | none) ;;
  *) echo "FUZZ_SANITIZER must be address or none, not '$SANITIZER'" >&2; exit 2 ;;
esac
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)

# libFuzzer options particular to a target.
target_flags() {
  case "$1" in
    # Inputs up to the config-size bound (DEFAULT_MAX_CONFIG_BYTES, 1 MiB),
    # each of which must be parsed well within the timeout.
    ingress_config_bound) echo "-max_len=1048576 -timeout=10" ;;
    # WebSocket messages are limited to 1 MiB: no single allocation may
    # come near what a frame header can claim (up to 2^63 bytes).
    # Without a sanitizer libFuzzer cannot see single allocations, only
    # the process's size: then bound that instead.
    ws_framing)
      if [ "$SANITIZER" = none ]; then echo "-rss_limit_mb=256"; else echo "-malloc_limit_mb=64"; fi ;;
    # The store keeps caches (SQLite pages, prepared statements) from one
    # input to the next, which LeakSanitizer would check after each one.
    admin_bodies) echo "-detect_leaks=0" ;;
    *) echo "" ;;
  esac
}

# Built once up front, so the fixed times are spent fuzzing.
cargo +nightly fuzz build --sanitizer "$SANITIZER"

runs="runs/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$runs"
summary="$runs/summary.txt"
row() { printf '%-22s %12s %8s %6s %7s %7s\n' "$@"; }
{
  echo "# fuzz/run.sh, $(date -u +%Y-%m-%d), FUZZ_SECONDS=$SECS FUZZ_RUNS=${FUZZ_RUNS:-} FUZZ_SANITIZER=$SANITIZER, $(rustc +nightly -V)"
  row target executions exec/s secs corpus crashes
} >"$summary"
crashed=0
for t in "${targets[@]}"; do
  echo "== $t ($SECS s)"
  corpus="corpus/$t"
  mkdir -p "$corpus" "artifacts/$t"
  dirs=("$corpus")
  [ -d "seeds/$t" ] && dirs+=("seeds/$t")
  opts=(-max_total_time="$SECS" -print_final_stats=1)
  [ -n "${FUZZ_RUNS:-}" ] && opts+=(-runs="$FUZZ_RUNS")
  [ -f "dicts/$t.dict" ] && opts+=(-dict="dicts/$t.dict")
  read -r -a extra <<<"$(target_flags "$t")"
  opts+=("${extra[@]}")
  log="$runs/$t.log"
  start=$SECONDS
  rc=0
  # One process: no -fork/-jobs (-jobs=1 would run a child and hide its log).
  cargo +nightly fuzz run --sanitizer "$SANITIZER" "$t" "${dirs[@]}" -- "${opts[@]}" >"$log" 2>&1 || rc=$?
  secs=$((SECONDS - start))
  stat() { grep "^stat::$1:" "$log" | awk '{print $2}' | tail -n 1; }
  execs=$(stat number_of_executed_units)
  speed=$(stat average_exec_per_sec)
  size=$(find "$corpus" -type f | wc -l)
  crashes=0
  if [ "$rc" -ne 0 ]; then
    # libFuzzer stops at the first crash, leak, timeout or OOM.
    crashes=1
    crashed=1
    grep -E '^(==[0-9]+==ERROR|thread .* panicked|SUMMARY|artifact_prefix|Test unit written)' "$log" || tail -n 20 "$log"
  fi
  row "$t" "${execs:-?}" "${speed:-?}" "$secs" "$size" "$crashes" | tee -a "$summary"
done
echo
cat "$summary"
echo "(logs in fuzz/$runs/)"
exit "$crashed"
