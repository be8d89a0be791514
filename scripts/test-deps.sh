#!/usr/bin/env bash
# Installs what the end-to-end tests need besides Rust: Debian's Chromium, the
# Prometheus project's Python client from PyPI (its OpenMetrics parser reads
# /metrics), the Kubernetes API schemas (kubernetes-validate, for deploy/),
# openapi-spec-validator (for the admin API's /api/openapi.json), and the Node
# packages of tests/fixtures/oidc (OIDC provider + browser driver).
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

# pip, for the Python packages below (Debian's python3 comes without it).
if ! python3 -m pip --version >/dev/null 2>&1; then
  echo "test-deps: installing python3-pip with apt-get"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
fi
# They go into directories of their own, never the system's site-packages,
# which Debian's pip would otherwise refuse to touch (PEP 668).
export PIP_BREAK_SYSTEM_PACKAGES=1

# The parser goes into tests/fixtures/metrics/site (not committed), whatever
# python3 is on PATH (Debian's, pyenv's, a venv's); parse.py looks there.
metrics_site="$root/tests/fixtures/metrics/site"
prom_version=0.26.0
if [ -f "$metrics_site/prometheus_client-$prom_version.dist-info/METADATA" ]; then
  echo "test-deps: prometheus_client $prom_version present in tests/fixtures/metrics/site"
else
  echo "test-deps: pip install prometheus-client==$prom_version into tests/fixtures/metrics/site"
  rm -rf "$metrics_site"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps \
    --target "$metrics_site" "prometheus-client==$prom_version" 2>&1 | grep -v "Running pip as the 'root' user" || true
  [ -f "$metrics_site/prometheus_client/openmetrics/parser.py" ] || { echo "test-deps: installing prometheus-client failed" >&2; exit 1; }
fi

# The Kubernetes API schemas the deploy/kubernetes manifests are checked
# against (tests/deploy.rs), the same way.
deploy_site="$root/tests/fixtures/deploy/site"
kv_version=1.37.0
if [ -f "$deploy_site/kubernetes_validate-$kv_version.dist-info/METADATA" ]; then
  echo "test-deps: kubernetes-validate $kv_version present in tests/fixtures/deploy/site"
else
  echo "test-deps: pip install kubernetes-validate==$kv_version into tests/fixtures/deploy/site"
  rm -rf "$deploy_site"
  python3 -m pip install --quiet --disable-pip-version-check \
    --target "$deploy_site" "kubernetes-validate==$kv_version" 2>&1 | grep -v "Running pip as the 'root' user" || true
  [ -f "$deploy_site/kubernetes_validate/__init__.py" ] || { echo "test-deps: installing kubernetes-validate failed" >&2; exit 1; }
fi

# The OpenAPI validator the admin API's document is checked with
# (tests/openapi.rs, tests/fixtures/openapi/validate.py), the same way.
openapi_site="$root/tests/fixtures/openapi/site"
osv_version=0.9.0
if [ -f "$openapi_site/openapi_spec_validator-$osv_version.dist-info/METADATA" ]; then
  echo "test-deps: openapi-spec-validator $osv_version present in tests/fixtures/openapi/site"
else
  echo "test-deps: pip install openapi-spec-validator==$osv_version into tests/fixtures/openapi/site"
  rm -rf "$openapi_site"
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-conflicts \
    --target "$openapi_site" "openapi-spec-validator==$osv_version" 2>&1 | grep -v "Running pip as the 'root' user" || true
  [ -f "$openapi_site/openapi_spec_validator/__init__.py" ] || { echo "test-deps: installing openapi-spec-validator failed" >&2; exit 1; }
fi

command -v npm >/dev/null 2>&1 || { echo "test-deps: npm not found (install Node.js 20+)" >&2; exit 1; }

stamp="$fixtures/node_modules/.package-lock.json"
if [ ! -d "$fixtures/node_modules" ] || [ ! -f "$stamp" ] || [ "$fixtures/package-lock.json" -nt "$stamp" ]; then
  echo "test-deps: npm ci in tests/fixtures/oidc"
  (cd "$fixtures" && npm ci --no-audit --no-fund --loglevel=error)
else
  echo "test-deps: tests/fixtures/oidc/node_modules up to date"
fi
