#!/usr/bin/env bash
# The PostgreSQL pool benchmark: one run measures, side by side,
#
#   direct     pgbench to PostgreSQL 15 over TLS (sslmode=require)
#   PgBouncer  PgBouncer (Debian's) in transaction mode, pool 20, client TLS
#   Warren     the edge's pool (`warren db add --pool-mode transaction
#              --pool-size 20`) through the native listener: TLS with a
#              client certificate from `warren access pg-cert`
#
# with pgbench -S -C (a new connection per transaction), -S, -S -M prepared
# (8 clients, 2 threads), and 2,000 idle TLS clients held open while 50
# run pgbench -S (memory per idle client, and the TPS beside them).
#
#   bash bench/pool.sh             # T=20 s per run
#   BENCH_QUICK=1 bash bench/pool.sh
#
# Writes bench/out/pool.md and bench/out/pool.json. Everything runs on
# 127.0.0.1; every load is bounded in time; everything started here is
# stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then T=5; N_IDLE=${BENCH_IDLE:-500}; else T=20; N_IDLE=${BENCH_IDLE:-2000}; fi

need=()
command -v pgbench >/dev/null || need+=(postgresql-contrib)
command -v initdb >/dev/null || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
[ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
command -v jq >/dev/null || need+=(jq)
command -v openssl >/dev/null || need+=(openssl)
command -v python3 >/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  POLICY_RC=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; POLICY_RC=1
  fi
  echo "installing ${need[*]} ..." >&2
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } >&2
  if [ -n "$POLICY_RC" ]; then rm -f /usr/sbin/policy-rc.d; fi
fi

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build --release -q -p warren
W=$TARGET/release/warren

TMP=$(mktemp -d /tmp/warren-poolbench.XXXXXX)
chmod 755 "$TMP"
PIDS=()
cleanup() {
  set +e
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do kill "${PIDS[i]}" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  if [ -n "${PGDATA_DIR:-}" ]; then runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m immediate stop >/dev/null 2>&1; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_for() {
  local what=$1 secs=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then echo "timed out waiting for $what" >&2; exit 1; fi
    sleep 0.05
  done
}
free_ports() {
  python3 -c 'import socket,sys
s=[socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1",0))
print(" ".join(str(x.getsockname()[1]) for x in s))' "$1"
}
kb() { awk '$1 == "VmRSS:" {print $2}' "/proc/$1/status"; }
RES=$TMP/results.tsv
: >"$RES"
rec() { printf '%s\t%s\n' "$1" "$2" >>"$RES"; echo "  $1 = $2" >&2; }
export RUST_LOG=warn

# --- PostgreSQL with TLS ---------------------------------------------------
read -r PG_PORT PGB_PORT <<<"$(free_ports 2)"
PGBIN=$(dirname "$(command -v initdb || echo /nonexistent/initdb)")
[ -x "$PGBIN/pg_ctl" ] || PGBIN=$(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V | tail -1)
PGDATA_DIR=$TMP/pg/data
mkdir -p "$TMP/pg"; chown -R postgres:postgres "$TMP/pg"
runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust --no-sync >/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost,IP:127.0.0.1 -keyout "$TMP/tls.key" -out "$TMP/tls.crt" 2>/dev/null
cp "$TMP/tls.key" "$TMP/tls.crt" "$PGDATA_DIR/"; chown postgres:postgres "$PGDATA_DIR/tls.key" "$PGDATA_DIR/tls.crt"; chmod 600 "$PGDATA_DIR/tls.key"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$TMP/pg/log" -w \
  -o "-p $PG_PORT -k $TMP/pg -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=256MB -c ssl=on -c ssl_cert_file=tls.crt -c ssl_key_file=tls.key" start >/dev/null
psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE USER app" >/dev/null
psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE app OWNER app" >/dev/null
PGSSLMODE=disable pgbench -h 127.0.0.1 -p "$PG_PORT" -U app -i -s 10 -q app >/dev/null 2>&1

# --- PgBouncer ---------------------------------------------------------------
mkdir -p "$TMP/pgb"
cp "$TMP/tls.key" "$TMP/tls.crt" "$TMP/pgb/"
echo '"app" ""' >"$TMP/pgb/users.txt"
cat >"$TMP/pgb/pgbouncer.ini" <<EOF
[databases]
app = host=127.0.0.1 port=$PG_PORT dbname=app
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGB_PORT
unix_socket_dir =
auth_type = trust
auth_file = $TMP/pgb/users.txt
pool_mode = transaction
default_pool_size = 20
max_client_conn = $((N_IDLE + 200))
client_tls_sslmode = require
client_tls_key_file = $TMP/pgb/tls.key
client_tls_cert_file = $TMP/pgb/tls.crt
server_tls_sslmode = disable
# (1.18 has no max_prepared_statements: -M prepared fails through it in
# transaction mode, and the table says so.)
logfile = $TMP/pgb/pgbouncer.log
EOF
chown -R postgres:postgres "$TMP/pgb"; chmod 600 "$TMP/pgb/tls.key"
(ulimit -n $((N_IDLE * 2 + 1000)); exec runuser -u postgres -- /usr/sbin/pgbouncer "$TMP/pgb/pgbouncer.ini") &
PGB_PID=$!; PIDS+=("$PGB_PID")
wait_for pgbouncer 20 env PGSSLMODE=require psql -h 127.0.0.1 -p "$PGB_PORT" -U app -d app -Atc "SELECT 1"
PGB_VERSION=$(/usr/sbin/pgbouncer --version | head -1)

# --- Warren ------------------------------------------------------------------
(ulimit -n $((N_IDLE * 4 + 1000)); exec "$W" edge --data-dir "$TMP/edge" --domain localhost --listen-tunnel 127.0.0.1:0 \
  --listen-https 127.0.0.1:0 --listen-http 127.0.0.1:0 --listen-admin 127.0.0.1:0 --listen-postgres 127.0.0.1:0 \
  --max-connections $((N_IDLE + 1000)) 2>"$TMP/edge.log") &
EDGE_PID=$!; PIDS+=("$EDGE_PID")
wait_for "edge.json" 20 test -s "$TMP/edge/edge.json"
HTTPS=$(jq -r .https "$TMP/edge/edge.json")
WARREN_API=http://$(jq -r .admin "$TMP/edge/edge.json"); WARREN_API_TOKEN=$(cat "$TMP/edge/admin-token")
export WARREN_API WARREN_API_TOKEN
"$W" tunnel create bench >/dev/null
"$W" tunnel route dns bench pgp.localhost >/dev/null
cat >"$TMP/config.yml" <<EOF
ingress:
  - hostname: pgp.localhost
    service: postgres://127.0.0.1:$PG_PORT
    originRequest:
      sslmode: disable   # as PgBouncer's server side (server_tls_sslmode = disable)
  - service: http_status:404
EOF
WARREN_TOKEN=$("$W" tunnel token bench) "$W" tunnel run --config "$TMP/config.yml" 2>"$TMP/connector.log" &
PIDS+=($!)
connected() { [ "$("$W" tunnel info bench --output json | jq '.connections | length')" -ge 4 ]; }
wait_for "the connector" 20 connected
"$W" db add bench --route pgp.localhost --database app --pool-mode transaction --pool-size 20 >/dev/null
printf 'unused: the bench cluster trusts app\n' >"$TMP/pw"
"$W" db credential set bench --role app --password-file "$TMP/pw" >/dev/null
"$W" access app create pgp --host pgp.localhost >/dev/null
TOKEN=$("$W" access service-token create bench --output json)
"$W" access policy add pgp bench --action service-auth --include service-token=bench --db-role app >/dev/null
WARREN_HOME=$TMP/home WARREN_SERVICE_TOKEN_ID=$(jq -r .client_id <<<"$TOKEN") WARREN_SERVICE_TOKEN_SECRET=$(jq -r .client_secret <<<"$TOKEN") \
  "$W" access pg-cert pgp.localhost --edge "$HTTPS" --ca-cert "$TMP/edge/ca.pem" >/dev/null 2>"$TMP/pgcert.log"
PGN_PORT=$(jq -r .postgres "$TMP/edge/edge.json"); PGN_PORT=${PGN_PORT##*:}
H=$TMP/home/pg

# bench PATH [pgbench flags...]: TPS of pgbench -n -j 2 -T $T over PATH.
bench() {
  local path=$1; shift
  case $path in
    direct) PGSSLMODE=require pgbench -h 127.0.0.1 -p "$PG_PORT" -U app -n -j 2 -T "$T" "$@" app ;;
    pgbouncer) PGSSLMODE=require pgbench -h 127.0.0.1 -p "$PGB_PORT" -U app -n -j 2 -T "$T" "$@" app ;;
    warren) PGHOSTADDR=127.0.0.1 PGSSLMODE=verify-full PGSSLROOTCERT=$H/pgp.localhost-ca.crt \
      PGSSLCERT=$H/pgp.localhost.crt PGSSLKEY=$H/pgp.localhost.key \
      pgbench -h pgp.localhost -p "$PGN_PORT" -U app -n -j 2 -T "$T" "$@" app ;;
  esac 2>"$TMP/pgbench.err" | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1
}
PATHS=(direct pgbouncer warren)
for path in "${PATHS[@]}"; do
  echo "== $path" >&2
  rec "c.$path" "$(bench "$path" -S -C -c 8)"
  rec "s.$path" "$(bench "$path" -S -c 8)"
  rec "p.$path" "$(bench "$path" -S -M prepared -c 8)"
done

# idle PATH: N_IDLE idle TLS clients held while 50 run pgbench -S.
idle() {
  local path=$1 pid port args
  case $path in
    pgbouncer) pid=$PGB_PID; port=$PGB_PORT; args=() ;;
    warren) pid=$EDGE_PID; port=$PGN_PORT
      args=(--sni pgp.localhost --ca "$H/pgp.localhost-ca.crt" --cert "$H/pgp.localhost.crt" --key "$H/pgp.localhost.key") ;;
  esac
  # PgBouncer's pid is the runuser wrapper's child.
  [ "$path" = pgbouncer ] && pid=$(pgrep -P "$PGB_PID" pgbouncer || echo "$PGB_PID")
  local before; before=$(kb "$pid")
  python3 "$ROOT/bench/pg_idle.py" --port "$port" --count "$N_IDLE" --hold-secs $((T + 15)) "${args[@]}" >"$TMP/idle-$path.out" &
  local lp=$!; PIDS+=("$lp")
  wait_for "idle clients ($path)" 120 grep -q holding "$TMP/idle-$path.out"
  local opened; opened=$(jq -r 'select(.phase=="holding") | .open' "$TMP/idle-$path.out")
  rec "idle_open.$path" "$opened"
  # Per client that is open (a pooler may refuse or time some out).
  rec "idle_kb.$path" "$(( ($(kb "$pid") - before) * 1024 / (opened > 0 ? opened : 1) ))"
  rec "busy.$path" "$(bench "$path" -S -c 50)"
  wait "$lp" || true
}
echo "== $N_IDLE idle clients" >&2
for path in pgbouncer warren; do idle "$path"; done

# --- report ------------------------------------------------------------------
mkdir -p "$ROOT/bench/out"
python3 - "$RES" "$ROOT/bench/out/pool.md" "$ROOT/bench/out/pool.json" "$T" "$N_IDLE" "$PGB_VERSION" <<'PY'
import json, sys
tsv, md_path, json_path, t, n_idle, pgb = sys.argv[1:7]
raw = dict(l.rstrip("\n").split("\t", 1) for l in open(tsv) if "\t" in l)
def num(k):
    try: return float(raw.get(k, ""))
    except ValueError: return None
def f(x, d=0): return "missing" if x is None else f"{x:.{d}f}"
def ratio(a, b): return "missing" if a is None or not b else f"{a / b:.2f}x"
rows = [("c", f"pgbench -S -C -c 8 -j 2 -T {t} (TPS)"), ("s", "pgbench -S -c 8 (TPS)"), ("p", "pgbench -S -M prepared -c 8 (TPS)")]
md = [f"PgBouncer: {pgb}. Every client leg is TLS.", "",
      "| measurement | direct (TLS) | PgBouncer | Warren pool | Warren / PgBouncer |", "|---|---:|---:|---:|---:|"]
for k, label in rows:
    d, b, w = num(f"{k}.direct"), num(f"{k}.pgbouncer"), num(f"{k}.warren")
    md.append(f"| {label} | {f(d)} | {f(b)} | {f(w)} | {ratio(w, b)} |")
b, w = num("busy.pgbouncer"), num("busy.warren")
md.append(f"| pgbench -S -c 50 beside {n_idle} idle TLS clients (TPS) | n/a (max_connections 200) | {f(b)} | {f(w)} | {ratio(w, b)} |")
b, w = num("idle_kb.pgbouncer"), num("idle_kb.warren")
md.append(f"| RSS per idle client (bytes; {f(num('idle_open.pgbouncer'))} / {f(num('idle_open.warren'))} open) | | {f(b)} | {f(w)} | {ratio(w, b)} |")
open(md_path, "w").write("\n".join(md) + "\n")
json.dump({k: num(k) for k in raw}, open(json_path, "w"), indent=1)
print("\n".join(md))
PY
