#!/usr/bin/env bash
# Warren benchmark harness: measures a direct connection and the same
# traffic through Warren (access tcp -> edge -> QUIC -> connector -> origin)
# in one run, and prints a markdown table with ratios.
#
#   bash bench/run.sh              # full run (~3 min)
#   BENCH_QUICK=1 bash bench/run.sh
#
# Everything runs on 127.0.0.1; every load is bounded in time or count.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then T_IPERF=3; T_PG=5; T_WRK=5; N_RTT=2000; N_CONN=300; else T_IPERF=10; T_PG=20; T_WRK=10; N_RTT=5000; N_CONN=1000; fi

need=()
command -v iperf3 >/dev/null || need+=(iperf3)
command -v wrk >/dev/null || need+=(wrk)
command -v pgbench >/dev/null || need+=(postgresql-contrib)
command -v curl >/dev/null || need+=(curl)
command -v jq >/dev/null || need+=(jq)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

# The binaries cargo builds: CARGO_TARGET_DIR when set, else target/.
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build --release -q -p warren -p warren-bench
W=$TARGET/release/warren
LG=$TARGET/release/warren-loadgen

TMP=$(mktemp -d /tmp/warren-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "${PGDATA_DIR:-}" ]; then runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m immediate stop >/dev/null 2>&1 || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

# wait_for DESCRIPTION SECONDS COMMAND...: poll until COMMAND succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then echo "timed out waiting for $what" >&2; exit 1; fi
    sleep 0.05
  done
}

# start_addr NAME CMD...: start a loadgen server in the background; its
# address is then read with `addr NAME`. (Not in a command substitution:
# the background process would hold the substitution's pipe open.)
start_addr() {
  local out=$TMP/$1.out; shift
  "$@" >"$out" 2>&1 &
  PIDS+=($!)
  wait_for "$out" 10 grep -q addr "$out"
}
addr() { jq -r .addr "$TMP/$1.out"; }

export RUST_LOG=warn

# --- origins --------------------------------------------------------------
start_addr echo "$LG" echo; ECHO=$(addr echo)
start_addr http "$LG" http-origin; HTTP_ORIGIN=$(addr http)
IPERF_PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
iperf3 -s -B 127.0.0.1 -p "$IPERF_PORT" >/dev/null 2>&1 &
PIDS+=($!)
wait_for iperf3 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$IPERF_PORT"

PGBIN=$(dirname "$(command -v initdb)")
[ -x "$PGBIN/pg_ctl" ] || PGBIN=$(ls -d /usr/lib/postgresql/*/bin | tail -1)
PG_PORT=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
PGDATA_DIR=$TMP/pg/data
mkdir -p "$TMP/pg"; chown -R postgres:postgres "$TMP/pg"; chmod 755 "$TMP"
runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust --no-sync >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$TMP/pg/log" -w \
  -o "-p $PG_PORT -k $TMP/pg -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=256MB" start >/dev/null
psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE USER app" >/dev/null
psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE app OWNER app" >/dev/null
pgbench -h 127.0.0.1 -p "$PG_PORT" -U app -i -s 10 -q app >/dev/null 2>&1

# --- warren ---------------------------------------------------------------
"$W" edge --data-dir "$TMP/edge" --domain localhost --listen-tunnel 127.0.0.1:0 \
  --listen-https 127.0.0.1:0 --listen-http 127.0.0.1:0 --listen-admin 127.0.0.1:0 --listen-postgres 127.0.0.1:0 2>"$TMP/edge.log" &
EDGE_PID=$!; PIDS+=($EDGE_PID)
wait_for "edge.json" 20 test -s "$TMP/edge/edge.json"
HTTPS=$(jq -r .https "$TMP/edge/edge.json")
export WARREN_API=http://$(jq -r .admin "$TMP/edge/edge.json") WARREN_API_TOKEN=$(cat "$TMP/edge/admin-token")
"$W" tunnel create bench >/dev/null
for h in iperf rtt db pg web; do "$W" tunnel route dns bench "$h.localhost" --public >/dev/null; done
# The native PostgreSQL listener, as a user would reach it: an access
# application, a service token, a client certificate from `access pg-cert`.
"$W" tunnel route dns bench pgn.localhost >/dev/null
"$W" access app create pgn --host pgn.localhost >/dev/null
BENCH_TOKEN=$("$W" access service-token create bench --output json)
"$W" access policy add pgn bench --action service-auth --include service-token=bench >/dev/null
cat >"$TMP/config.yml" <<EOF
ingress:
  - hostname: iperf.localhost
    service: tcp://127.0.0.1:$IPERF_PORT
  - hostname: rtt.localhost
    service: tcp://$ECHO
  - hostname: db.localhost
    service: tcp://127.0.0.1:$PG_PORT
  - hostname: pg.localhost
    service: postgres://127.0.0.1:$PG_PORT
    originRequest:
      sslmode: disable   # the bench cluster has no TLS
  - hostname: pgn.localhost
    service: postgres://127.0.0.1:$PG_PORT
    originRequest:
      sslmode: disable   # the bench cluster has no TLS
  - hostname: web.localhost
    service: http://$HTTP_ORIGIN
  - service: http_status:404
EOF
WARREN_TOKEN=$("$W" tunnel token bench) "$W" tunnel run --config "$TMP/config.yml" 2>"$TMP/connector.log" &
CONN_PID=$!; PIDS+=($CONN_PID)
connected() { [ "$("$W" tunnel info bench --output json | jq '.connections | length')" -ge 4 ]; }
wait_for "the connector" 20 connected
IDLE_RSS=$(awk '/VmRSS/ {print $2}' /proc/$CONN_PID/status)

start_access() { # start_access HOST; then `access_addr HOST`
  "$W" access tcp --hostname "$1" --url 127.0.0.1:0 --edge "$HTTPS" --ca-cert "$TMP/edge/ca.pem" \
    >/dev/null 2>"$TMP/access-$1.log" &
  PIDS+=($!)
  wait_for "access tcp $1" 10 grep -q "Listening on" "$TMP/access-$1.log"
}
access_addr() { sed -n 's/.*Listening on \([0-9.:]*\);.*/\1/p' "$TMP/access-$1.log" | head -1; }
for h in iperf rtt db pg; do start_access "$h.localhost"; done
A_IPERF=$(access_addr iperf.localhost)
A_RTT=$(access_addr rtt.localhost)
A_DB=$(access_addr db.localhost)
A_PG=$(access_addr pg.localhost)
WARREN_HOME=$TMP/home WARREN_SERVICE_TOKEN_ID=$(jq -r .client_id <<<"$BENCH_TOKEN") \
  WARREN_SERVICE_TOKEN_SECRET=$(jq -r .client_secret <<<"$BENCH_TOKEN") \
  "$W" access pg-cert pgn.localhost --edge "$HTTPS" --ca-cert "$TMP/edge/ca.pem" >"$TMP/pgcert.out" 2>"$TMP/pgcert.log"
PGN_PORT=$(jq -r .postgres "$TMP/edge/edge.json"); PGN_PORT=${PGN_PORT##*:}

# --- measurements ---------------------------------------------------------
gbps() { jq '.end.sum_received.bits_per_second / 1e9' ; }
iperf() { iperf3 -c "${1%:*}" -p "${1##*:}" -t "$T_IPERF" -P "$2" -J | gbps; }
# CPU time (clock ticks) a process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ACCESS_PID=$(pgrep -f "access tcp --hostname iperf.localhost" | head -1)
I1_D=$(iperf "127.0.0.1:$IPERF_PORT" 1)
CPU0=("$(ticks "$ACCESS_PID")" "$(ticks "$EDGE_PID")" "$(ticks "$CONN_PID")"); T0=$SECONDS
I1_W=$(iperf "$A_IPERF" 1)
CPU1=("$(ticks "$ACCESS_PID")" "$(ticks "$EDGE_PID")" "$(ticks "$CONN_PID")"); T1=$SECONDS
HZ=$(getconf CLK_TCK)
cpu_pct() { python3 -c "import sys; print(f'{(int(sys.argv[2])-int(sys.argv[1]))/int(sys.argv[3])/max(1,int(sys.argv[4]))*100:.0f}%')" "$1" "$2" "$HZ" "$((T1 - T0))"; }
I8_D=$(iperf "127.0.0.1:$IPERF_PORT" 8); I8_W=$(iperf "$A_IPERF" 8)

R_D=$("$LG" rtt "$ECHO" --count "$N_RTT"); R_W=$("$LG" rtt "$A_RTT" --count "$N_RTT")
C_D=$("$LG" connect "$ECHO" --count "$N_CONN"); C_W=$("$LG" connect "$A_RTT" --count "$N_CONN")

# pgtps PORT [pgbench flags...]: select-only TPS.
pgtps() { local port=$1; shift; PGSSLMODE=disable pgbench -h 127.0.0.1 -p "$port" -U app -S -c 8 -j 2 -T "$T_PG" -n "$@" app 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1; }
PG_D=$(pgtps "$PG_PORT"); PG_W=$(pgtps "${A_DB##*:}"); PG_P=$(pgtps "${A_PG##*:}")
# -C: a new connection per transaction.
PGC_D=$(pgtps "$PG_PORT" -C); PGC_W=$(pgtps "${A_DB##*:}" -C); PGC_P=$(pgtps "${A_PG##*:}" -C)
# The native listener: TLS with a client certificate at the edge.
pgnative() {
  PGHOSTADDR=127.0.0.1 PGSSLMODE=verify-full PGCHANNELBINDING=disable \
    PGSSLROOTCERT=$TMP/home/pg/pgn.localhost-ca.crt PGSSLCERT=$TMP/home/pg/pgn.localhost.crt PGSSLKEY=$TMP/home/pg/pgn.localhost.key \
    pgbench -h pgn.localhost -p "$PGN_PORT" -U app -S -c 8 -j 2 -T "$T_PG" -n "$@" app 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1
}
PG_N=$(pgnative); PGC_N=$(pgnative -C)

wrk_run() { wrk -t2 -c32 -d"${T_WRK}s" --latency "$@" 2>/dev/null; }
WRK_D=$(wrk_run "http://$HTTP_ORIGIN/"); WRK_W=$(wrk_run -H "Host: web.localhost" "https://$HTTPS/")
rps() { sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p'; }
p50() { awk '/ 50%/ {print $2}'; }

EDGE_HWM=$(awk '/VmHWM/ {print $2}' /proc/$EDGE_PID/status)
CONN_HWM=$(awk '/VmHWM/ {print $2}' /proc/$CONN_PID/status)

# --- report ---------------------------------------------------------------
ratio() { python3 -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); print(f'{b/a:.2f}x' if a else '-')" "$1" "$2"; }
f() { python3 -c "import sys; print(f'{float(sys.argv[1]):.${2:-2}f}')" "$1"; }
mkdir -p bench/out
{
  echo "| measurement | direct | through Warren | Warren / direct |"
  echo "|---|---|---|---|"
  echo "| TCP throughput, 1 stream (Gbit/s) | $(f "$I1_D") | $(f "$I1_W") | $(ratio "$I1_D" "$I1_W") |"
  echo "| TCP throughput, 8 streams (Gbit/s) | $(f "$I8_D") | $(f "$I8_W") | $(ratio "$I8_D" "$I8_W") |"
  for k in p50_us p99_us; do
    d=$(jq ".$k" <<<"$R_D"); w=$(jq ".$k" <<<"$R_W")
    echo "| 64 B round trip $k (µs) | $(f "$d" 1) | $(f "$w" 1) | +$(f "$(python3 -c "print($w-$d)")" 1) µs |"
  done
  d=$(jq .mean_ms <<<"$C_D"); w=$(jq .mean_ms <<<"$C_W")
  echo "| new connection, mean of $N_CONN sequential (ms) | $(f "$d" 3) | $(f "$w" 3) (failed: $(jq .failed <<<"$C_W")) | $(ratio "$d" "$w") |"
  echo "| pgbench -S -c 8 -j 2 -T $T_PG (TPS), access tcp to a tcp:// rule | $(f "$PG_D" 0) | $(f "$PG_W" 0) | $(ratio "$PG_D" "$PG_W") |"
  echo "| pgbench -S, access tcp to a postgres:// rule | $(f "$PG_D" 0) | $(f "$PG_P" 0) | $(ratio "$PG_D" "$PG_P") |"
  echo "| pgbench -S -C (new connection per transaction), tcp:// rule | $(f "$PGC_D" 0) | $(f "$PGC_W" 0) | $(ratio "$PGC_D" "$PGC_W") |"
  echo "| pgbench -S -C, postgres:// rule | $(f "$PGC_D" 0) | $(f "$PGC_P" 0) | $(ratio "$PGC_D" "$PGC_P") |"
  echo "| pgbench -S, native listener (TLS + client certificate at the edge) | $(f "$PG_D" 0) | $(f "$PG_N" 0) | $(ratio "$PG_D" "$PG_N") |"
  echo "| pgbench -S -C, native listener | $(f "$PGC_D" 0) | $(f "$PGC_N" 0) | $(ratio "$PGC_D" "$PGC_N") |"
  d=$(rps <<<"$WRK_D"); w=$(rps <<<"$WRK_W")
  echo "| HTTP req/s, wrk -t2 -c32 (direct: plain HTTP; Warren: HTTPS at the edge) | $(f "$d" 0) | $(f "$w" 0) | $(ratio "$d" "$w") |"
  echo "| HTTP latency p50 | $(p50 <<<"$WRK_D") | $(p50 <<<"$WRK_W") | |"
  echo "| peak RSS edge / connector (MB) | | $(f "$(python3 -c "print($EDGE_HWM/1024)")" 1) / $(f "$(python3 -c "print($CONN_HWM/1024)")" 1) | |"
  echo "| idle connector RSS, 4 connections (MB) | | $(f "$(python3 -c "print($IDLE_RSS/1024)")" 1) | |"
  echo "| CPU during the 1-stream run through Warren: access / edge / connector (% of one core) | | $(cpu_pct "${CPU0[0]}" "${CPU1[0]}") / $(cpu_pct "${CPU0[1]}" "${CPU1[1]}") / $(cpu_pct "${CPU0[2]}" "${CPU1[2]}") | |"
} | tee bench/out/results.md
