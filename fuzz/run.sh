#!/usr/bin/env bash
# Runs every fuzz target for a bounded time (default 60 s each):
#   bash fuzz/run.sh            # all targets
#   FUZZ_SECONDS=300 bash fuzz/run.sh pg_startup
# Installs the nightly toolchain and cargo-fuzz when missing.
set -euo pipefail
cd "$(dirname "$0")"
SECS=${FUZZ_SECONDS:-60}
rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
targets=("$@")
[ ${#targets[@]} -gt 0 ] || mapfile -t targets < <(cargo +nightly fuzz list)
for t in "${targets[@]}"; do
  echo "== $t ($SECS s)"
  cargo +nightly fuzz run "$t" -- -max_total_time="$SECS"
done
