#!/usr/bin/env bash
# Installs what the end-to-end tests need besides Rust: Debian's Chromium and the
# Node packages of tests/fixtures/oidc (OIDC provider + browser driver).
# Idempotent: a second run does nothing.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fixtures="$root/tests/fixtures/oidc"

# Run as root directly, or through sudo when there is one.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else echo "test-deps: need root to run: $*" >&2; exit 1
  fi
}

if [ -x /usr/bin/chromium ]; then
  echo "test-deps: chromium present ($(/usr/bin/chromium --version 2>/dev/null || echo '?'))"
else
  echo "test-deps: installing chromium with apt-get"
  export DEBIAN_FRONTEND=noninteractive
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi

command -v npm >/dev/null 2>&1 || { echo "test-deps: npm not found (install Node.js 20+)" >&2; exit 1; }

stamp="$fixtures/node_modules/.package-lock.json"
if [ ! -d "$fixtures/node_modules" ] || [ ! -f "$stamp" ] || [ "$fixtures/package-lock.json" -nt "$stamp" ]; then
  echo "test-deps: npm ci in tests/fixtures/oidc"
  (cd "$fixtures" && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "test-deps: tests/fixtures/oidc/node_modules up to date"
fi
