#!/usr/bin/env bash
# shellcheck disable=SC2317 # functions called through trap and wait_for
# Warren benchmark harness. One run measures the same traffic over six
# paths side by side and prints markdown tables with ratios:
#
#   direct         the client talking to the origin on loopback
#   Warren         access tcp -> edge (TLS + WebSocket) -> QUIC -> connector -> origin
#   rathole TCP    rathole 0.5 server + client, `type = "tcp"` (no encryption)
#   rathole Noise  the same with `type = "noise"` (Noise_NK_25519_ChaChaPoly_BLAKE2s)
#   ssh -L         OpenSSH: sshd on loopback + one `ssh -N -L` with three forwards
#   stunnel        stunnel4 client (plain TCP in) -> TLS -> stunnel4 server -> origin
#
# then the Warren-only rows (postgres:// rule, native PostgreSQL listener,
# HTTP, connector memory, CPU split, edge memory per idle tunnel and with
# 10,000 open streams).
#
#   bash bench/run.sh              # full run
#   BENCH_QUICK=1 bash bench/run.sh
#   bash bench/run.sh --check      # then compare with docs/benchmarks.md's reference ratios
#
# Writes bench/out/results.md and bench/out/results.json. Everything runs on
# 127.0.0.1; every load is bounded in time or count; everything started here
# is stopped on exit. docs/benchmarks.md describes the method.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

CHECK=0
for arg in "$@"; do
  case $arg in
    --check) CHECK=1 ;;
    -h | --help) sed -n '3,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
  T_IPERF=3; T_PG=5; T_WRK=5; N_RTT=2000; N_CONN=300; N_TUNNELS=${BENCH_TUNNELS:-10}
else
  T_IPERF=10; T_PG=20; T_WRK=10; N_RTT=5000; N_CONN=1000; N_TUNNELS=${BENCH_TUNNELS:-20}
fi
N_STREAMS=${BENCH_STREAMS:-10000}
HOLD_SECS=5
STARTED=$SECONDS

# --- tools ----------------------------------------------------------------
# Debian packages, each only when its command is missing. A policy-rc.d
# keeps apt from starting the system's own sshd or stunnel service.
need=()
command -v iperf3 >/dev/null || need+=(iperf3)
command -v wrk >/dev/null || need+=(wrk)
command -v pgbench >/dev/null || need+=(postgresql-contrib)
command -v initdb >/dev/null || compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
command -v curl >/dev/null || need+=(curl)
command -v jq >/dev/null || need+=(jq)
command -v python3 >/dev/null || need+=(python3)
command -v openssl >/dev/null || need+=(openssl)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
{ command -v ssh && command -v ssh-keygen; } >/dev/null || need+=(openssh-client)
command -v stunnel4 >/dev/null || need+=(stunnel4)
if [ ${#need[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  POLICY_RC=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; POLICY_RC=1
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  echo "installing ${need[*]} ..." >&2
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${need[@]}"; } >&2
  if [ -n "$POLICY_RC" ]; then rm -f /usr/sbin/policy-rc.d; trap - EXIT; fi
fi

# rathole 0.5 from crates.io, into a project-local root (git-ignored),
# without TLS or WebSocket so it needs no OpenSSL headers.
TOOLS=$ROOT/bench/.tools
RATHOLE=$TOOLS/bin/rathole
if ! { [ -x "$RATHOLE" ] && "$RATHOLE" --version 2>/dev/null | grep -Eq '^Build Version: +0\.5\.'; }; then
  echo "installing rathole 0.5 into $TOOLS ..." >&2
  rh=(cargo install rathole --version '^0.5' --no-default-features --features 'server,client,noise' --root "$TOOLS" --force -q)
  # rathole 0.5.0's own lock file pins time 0.3.29, which no longer
  # compiles on Rust >= 1.80 (E0282); then take the newest compatible
  # dependencies instead.
  if ! env -u CARGO_TARGET_DIR "${rh[@]}" --locked; then
    echo "rathole --locked failed to build; retrying with the newest compatible dependencies" >&2
    env -u CARGO_TARGET_DIR "${rh[@]}"
  fi
fi

# The binaries cargo builds: CARGO_TARGET_DIR when set, else target/.
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
cargo build --release -q -p warren -p warren-bench
W=$TARGET/release/warren
LG=$TARGET/release/warren-loadgen

# --- processes and cleanup -----------------------------------------------
TMP=$(mktemp -d /tmp/warren-bench.XXXXXX)
PIDS=()
# ours PID: PID is still a child of this script (a process that has ended
# and been reaped may have left its number to someone else's).
ours() { [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f2)" = "$$" ]; }
cleanup() {
  set +e
  local p left=()
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    p=${PIDS[i]}
    ours "$p" || continue
    # sshd's per-connection processes are children of the listener.
    if [ -n "${SSHD_PID:-}" ] && [ "$p" = "$SSHD_PID" ]; then pkill -TERM -P "$p" 2>/dev/null; fi
    kill "$p" 2>/dev/null && left+=("$p")
  done
  local end=$((SECONDS + 10))
  for p in "${left[@]}"; do
    while ours "$p" && [ "$SECONDS" -lt "$end" ]; do sleep 0.05; done
    if ours "$p"; then kill -9 "$p" 2>/dev/null; fi
  done
  if [ -n "${PGDATA_DIR:-}" ]; then runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m immediate stop >/dev/null 2>&1; fi
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# wait_for DESCRIPTION SECONDS COMMAND...: poll until COMMAND succeeds.
wait_for() {
  local what=$1 secs=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ $SECONDS -ge $end ]; then echo "timed out waiting for $what" >&2; exit 1; fi
    sleep 0.05
  done
}
accepts() { (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null; }
# free_ports N: N loopback ports free right now (bound at once, so distinct).
free_ports() {
  python3 -c 'import socket,sys
s=[socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1",0))
print(" ".join(str(x.getsockname()[1]) for x in s))' "$1"
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
# Resident memory of processes in KB: kb FIELD PID... (VmRSS or VmHWM, summed).
kb() { local f=$1 s=0 v; shift; for p in "$@"; do v=$(awk -v f="$f:" '$1 == f {print $2}' "/proc/$p/status"); s=$((s + ${v:-0})); done; echo "$s"; }
nfds() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# Every figure goes to results.tsv as `key<TAB>value`; bench/report.py
# turns it into the tables and results.json.
RES=$TMP/results.tsv
: >"$RES"
rec() { printf '%s\t%s\n' "$1" "$2" >>"$RES"; }

export RUST_LOG=warn

# --- origins --------------------------------------------------------------
start_addr echo "$LG" echo; ECHO=$(addr echo)
start_addr http "$LG" http-origin; HTTP_ORIGIN=$(addr http)
read -r IPERF_PORT PG_PORT <<<"$(free_ports 2)"
iperf3 -s -B 127.0.0.1 -p "$IPERF_PORT" >/dev/null 2>&1 &
PIDS+=($!)
wait_for iperf3 10 accepts "127.0.0.1:$IPERF_PORT"

PGBIN=$(dirname "$(command -v initdb || echo /nonexistent/initdb)")
[ -x "$PGBIN/pg_ctl" ] || PGBIN=$(printf "%s\n" /usr/lib/postgresql/*/bin | sort -V | tail -1)
PGDATA_DIR=$TMP/pg/data
mkdir -p "$TMP/pg"; chown -R postgres:postgres "$TMP/pg"; chmod 755 "$TMP"
runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres --auth=trust --no-sync >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$TMP/pg/log" -w \
  -o "-p $PG_PORT -k $TMP/pg -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=256MB" start >/dev/null
psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE USER app" >/dev/null
psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -qc "CREATE DATABASE app OWNER app" >/dev/null
pgbench -h 127.0.0.1 -p "$PG_PORT" -U app -i -s 10 -q app >/dev/null 2>&1

# Each path's local addresses for the three origins the comparison uses.
PATHS=(direct warren rathole_tcp rathole_noise ssh stunnel)
declare -A P_IPERF P_ECHO P_PG P_PIDS
P_IPERF[direct]=127.0.0.1:$IPERF_PORT; P_ECHO[direct]=$ECHO; P_PG[direct]=127.0.0.1:$PG_PORT; P_PIDS[direct]=
ORIGINS=("iperf 127.0.0.1:$IPERF_PORT" "echo $ECHO" "postgres 127.0.0.1:$PG_PORT")

# --- warren ---------------------------------------------------------------
"$W" edge --data-dir "$TMP/edge" --domain localhost --listen-tunnel 127.0.0.1:0 \
  --listen-https 127.0.0.1:0 --listen-http 127.0.0.1:0 --listen-admin 127.0.0.1:0 --listen-postgres 127.0.0.1:0 2>"$TMP/edge.log" &
EDGE_PID=$!; PIDS+=("$EDGE_PID")
wait_for "edge.json" 20 test -s "$TMP/edge/edge.json"
HTTPS=$(jq -r .https "$TMP/edge/edge.json")
WARREN_API=http://$(jq -r .admin "$TMP/edge/edge.json")
WARREN_API_TOKEN=$(cat "$TMP/edge/admin-token")
export WARREN_API WARREN_API_TOKEN
"$W" tunnel create bench >/dev/null
for h in iperf rtt db pg web hold; do "$W" tunnel route dns bench "$h.localhost" --public >/dev/null; done
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
  - hostname: hold.localhost
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
CONN_PID=$!; PIDS+=("$CONN_PID")
# connected NAME N: the tunnel has at least N connections.
connected() { [ "$("$W" tunnel info "$1" --output json | jq '.connections | length')" -ge "$2" ]; }
wait_for "the connector" 20 connected bench 4
IDLE_RSS=$(kb VmRSS "$CONN_PID")

declare -A ACCESS_PID
# start_access HOST [NAME [NOFILE]]: one `access tcp` for HOST (NAME
# defaults to HOST; NOFILE: first try to raise the hard descriptor limit
# to that; ACCESS_EDGE and ACCESS_CA: another edge); then
# `access_addr NAME`, ${ACCESS_PID[NAME]}.
start_access() {
  local host=$1 name=${2:-$1} nofile=${3:-}
  (
    if [ -n "$nofile" ]; then ulimit -Hn "$nofile" 2>/dev/null || true; fi
    exec "$W" access tcp --hostname "$host" --url 127.0.0.1:0 --edge "${ACCESS_EDGE:-$HTTPS}" --ca-cert "${ACCESS_CA:-$TMP/edge/ca.pem}"
  ) >/dev/null 2>"$TMP/access-$name.log" &
  PIDS+=($!); ACCESS_PID[$name]=$!
  wait_for "access tcp $name" 10 grep -q "Listening on" "$TMP/access-$name.log"
}
access_addr() { sed -n 's/.*Listening on \([0-9.:]*\);.*/\1/p' "$TMP/access-$1.log" | head -1; }
for h in iperf rtt db pg; do start_access "$h.localhost"; done
P_IPERF[warren]=$(access_addr iperf.localhost)
P_ECHO[warren]=$(access_addr rtt.localhost)
P_PG[warren]=$(access_addr db.localhost)
P_PIDS[warren]="$EDGE_PID $CONN_PID ${ACCESS_PID[iperf.localhost]} ${ACCESS_PID[rtt.localhost]} ${ACCESS_PID[db.localhost]}"
A_PG=$(access_addr pg.localhost)
WARREN_HOME=$TMP/home WARREN_SERVICE_TOKEN_ID=$(jq -r .client_id <<<"$BENCH_TOKEN") \
  WARREN_SERVICE_TOKEN_SECRET=$(jq -r .client_secret <<<"$BENCH_TOKEN") \
  "$W" access pg-cert pgn.localhost --edge "$HTTPS" --ca-cert "$TMP/edge/ca.pem" >"$TMP/pgcert.out" 2>"$TMP/pgcert.log"
PGN_PORT=$(jq -r .postgres "$TMP/edge/edge.json"); PGN_PORT=${PGN_PORT##*:}

# --- rathole --------------------------------------------------------------
# One server and one client per transport; one service (own token, own
# bind port) per origin. The server binds a service's port once the
# client's control channel is up, so "the port accepts" means ready.
mkdir -p "$TMP/rathole"
RH_KEYS=$("$RATHOLE" --genkey)
RH_PRIV=$(awk '/Private Key:/ {getline; print}' <<<"$RH_KEYS")
RH_PUB=$(awk '/Public Key:/ {getline; print}' <<<"$RH_KEYS")
start_rathole() { # start_rathole NAME TYPE
  local name=$1 type=$2 ctl iperf echo pg o svc token
  read -r ctl iperf echo pg <<<"$(free_ports 4)"
  local -A port=([iperf]=$iperf [echo]=$echo [postgres]=$pg)
  local s=$TMP/rathole/$name-server.toml c=$TMP/rathole/$name-client.toml
  printf '[server]\nbind_addr = "127.0.0.1:%s"\n[server.transport]\ntype = "%s"\n' "$ctl" "$type" >"$s"
  printf '[client]\nremote_addr = "127.0.0.1:%s"\n[client.transport]\ntype = "%s"\n' "$ctl" "$type" >"$c"
  if [ "$type" = noise ]; then
    printf '[server.transport.noise]\npattern = "Noise_NK_25519_ChaChaPoly_BLAKE2s"\nlocal_private_key = "%s"\n' "$RH_PRIV" >>"$s"
    printf '[client.transport.noise]\npattern = "Noise_NK_25519_ChaChaPoly_BLAKE2s"\nremote_public_key = "%s"\n' "$RH_PUB" >>"$c"
  fi
  for o in "${ORIGINS[@]}"; do
    svc=${o% *}; token=$(openssl rand -hex 16)
    printf '[server.services.%s]\ntoken = "%s"\nbind_addr = "127.0.0.1:%s"\n' "$svc" "$token" "${port[$svc]}" >>"$s"
    printf '[client.services.%s]\ntoken = "%s"\nlocal_addr = "%s"\n' "$svc" "$token" "${o#* }" >>"$c"
  done
  RUST_LOG=warn "$RATHOLE" --server "$s" >"$TMP/rathole/$name-server.log" 2>&1 &
  local sp=$!; PIDS+=("$sp")
  RUST_LOG=warn "$RATHOLE" --client "$c" >"$TMP/rathole/$name-client.log" 2>&1 &
  local cp=$!; PIDS+=("$cp")
  for p in "$iperf" "$echo" "$pg"; do wait_for "rathole $name port $p" 20 accepts "127.0.0.1:$p"; done
  P_IPERF[$name]=127.0.0.1:$iperf; P_ECHO[$name]=127.0.0.1:$echo; P_PG[$name]=127.0.0.1:$pg; P_PIDS[$name]="$sp $cp"
}
start_rathole rathole_tcp tcp
start_rathole rathole_noise noise

# --- ssh -L ---------------------------------------------------------------
# Its own sshd on a free loopback port: own host key, own authorized_keys,
# no PAM; one client with the three forwards. Cipher and key exchange are
# OpenSSH's defaults (recorded from the client's -v log).
mkdir -p "$TMP/ssh" /run/sshd; chmod 700 "$TMP/ssh"
ssh-keygen -q -t ed25519 -N '' -f "$TMP/ssh/host_ed25519"
ssh-keygen -q -t ed25519 -N '' -f "$TMP/ssh/user_ed25519"
cp "$TMP/ssh/user_ed25519.pub" "$TMP/ssh/authorized_keys"; chmod 600 "$TMP/ssh/authorized_keys"
read -r SSH_PORT S_IPERF S_ECHO S_PG <<<"$(free_ports 4)"
cat >"$TMP/ssh/sshd_config" <<EOF
ListenAddress 127.0.0.1:$SSH_PORT
HostKey $TMP/ssh/host_ed25519
PidFile $TMP/ssh/sshd.pid
AuthorizedKeysFile $TMP/ssh/authorized_keys
UsePAM no
StrictModes no
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
AllowTcpForwarding local
X11Forwarding no
PrintMotd no
LogLevel ERROR
EOF
/usr/sbin/sshd -D -e -f "$TMP/ssh/sshd_config" 2>"$TMP/ssh/sshd.log" &
SSHD_PID=$!; PIDS+=("$SSHD_PID")
wait_for "sshd" 10 accepts "127.0.0.1:$SSH_PORT"
ssh -F /dev/null -v -N -p "$SSH_PORT" -i "$TMP/ssh/user_ed25519" -o IdentitiesOnly=yes -o BatchMode=yes \
  -o ExitOnForwardFailure=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
  -L "127.0.0.1:$S_IPERF:127.0.0.1:$IPERF_PORT" -L "127.0.0.1:$S_ECHO:$ECHO" -L "127.0.0.1:$S_PG:127.0.0.1:$PG_PORT" \
  "$(id -un)@127.0.0.1" 2>"$TMP/ssh/client.log" &
SSH_PID=$!; PIDS+=("$SSH_PID")
for p in "$S_IPERF" "$S_ECHO" "$S_PG"; do wait_for "ssh -L port $p" 20 accepts "127.0.0.1:$p"; done
P_IPERF[ssh]=127.0.0.1:$S_IPERF; P_ECHO[ssh]=127.0.0.1:$S_ECHO; P_PG[ssh]=127.0.0.1:$S_PG
SSH_CIPHER=$(sed -n 's/.*kex: client->server cipher: \([^ ]*\).*/\1/p' "$TMP/ssh/client.log" | head -1)
SSH_KEX=$(sed -n 's/.*kex: algorithm: \([^ ]*\).*/\1/p' "$TMP/ssh/client.log" | head -1)
rec meta.ssh_cipher "${SSH_CIPHER:-unknown}"; rec meta.ssh_kex "${SSH_KEX:-unknown}"
rec meta.ssh_version "$(ssh -V 2>&1)"
# sshd's processes: the listener and every process under it (each
# connection's monitor and its session process).
ssh_pids() { local all=("$SSHD_PID") i=0 c; while [ $i -lt ${#all[@]} ]; do for c in $(pgrep -P "${all[i]}"); do all+=("$c"); done; i=$((i + 1)); done; echo "$SSH_PID ${all[*]}"; }

# --- stunnel --------------------------------------------------------------
# A P-256 certificate for "localhost"; the client side verifies it.
mkdir -p "$TMP/stunnel"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=localhost \
  -addext subjectAltName=DNS:localhost -keyout "$TMP/stunnel/key.pem" -out "$TMP/stunnel/cert.pem" 2>/dev/null
read -r T_IPERF_S T_ECHO_S T_PG_S T_IPERF_C T_ECHO_C T_PG_C <<<"$(free_ports 6)"
declare -A T_S=([iperf]=$T_IPERF_S [echo]=$T_ECHO_S [postgres]=$T_PG_S) T_C=([iperf]=$T_IPERF_C [echo]=$T_ECHO_C [postgres]=$T_PG_C)
for side in server client; do
  conf=$TMP/stunnel/$side.conf
  printf 'foreground = yes\npid = %s\noutput = %s\ndebug = warning\n' "$TMP/stunnel/$side.pid" "$TMP/stunnel/$side.log" >"$conf"
  if [ $side = server ]; then
    printf 'cert = %s\nkey = %s\n' "$TMP/stunnel/cert.pem" "$TMP/stunnel/key.pem" >>"$conf"
  else
    printf 'client = yes\nCAfile = %s\nverifyChain = yes\ncheckHost = localhost\n' "$TMP/stunnel/cert.pem" >>"$conf"
  fi
  for o in "${ORIGINS[@]}"; do
    svc=${o% *}
    if [ $side = server ]; then
      printf '[%s]\naccept = 127.0.0.1:%s\nconnect = %s\n' "$svc" "${T_S[$svc]}" "${o#* }" >>"$conf"
    else
      printf '[%s]\naccept = 127.0.0.1:%s\nconnect = 127.0.0.1:%s\n' "$svc" "${T_C[$svc]}" "${T_S[$svc]}" >>"$conf"
    fi
  done
  stunnel4 "$conf" >/dev/null 2>&1 &
  PIDS+=($!); eval "STUNNEL_${side^^}=\$!"
done
for p in "${T_S[@]}" "${T_C[@]}"; do wait_for "stunnel port $p" 20 accepts "127.0.0.1:$p"; done
P_IPERF[stunnel]=127.0.0.1:$T_IPERF_C; P_ECHO[stunnel]=127.0.0.1:$T_ECHO_C; P_PG[stunnel]=127.0.0.1:$T_PG_C
P_PIDS[stunnel]="$STUNNEL_SERVER $STUNNEL_CLIENT"
STUNNEL_TLS=$(openssl s_client -connect "127.0.0.1:$T_ECHO_S" -servername localhost -CAfile "$TMP/stunnel/cert.pem" </dev/null 2>/dev/null |
  awk '/^New, / {print $2, $5; exit}' | tr -d ,)
rec meta.stunnel_tls "${STUNNEL_TLS:-unknown}"
rec meta.stunnel_version "$(stunnel4 -version 2>&1 | grep -m1 '^stunnel' || echo stunnel)"
rec meta.rathole_version "$("$RATHOLE" --version | sed -n 's/^Build Version: *//p')"

# --- comparison rows: every path ------------------------------------------
phase() { echo "[$((SECONDS - STARTED)) s] $*" >&2; }
phase "all paths ready; measuring iperf3 on each"
# Loads run one at a time, path after path, row by row.
# iperf ADDR STREAMS: Gbit/s received. The iperf3 server runs one test at
# a time and may still be closing the last one ("busy") when a tunnel
# closes its side late, so a failed try is retried until a deadline.
iperf() {
  local end=$((SECONDS + 30)) out v
  while :; do
    out=$(iperf3 -c "${1%:*}" -p "${1##*:}" -t "$T_IPERF" -P "$2" -J 2>&1 || true)
    v=$(jq -r '(.end.sum_received.bits_per_second // empty) / 1e9' <<<"$out" 2>/dev/null || true)
    if [ -n "$v" ]; then echo "$v"; return; fi
    echo "iperf3 to $1 failed: $(jq -r '.error // empty' <<<"$out" 2>/dev/null || head -c 200 <<<"$out")" >&2
    if [ $SECONDS -ge $end ]; then return; fi
    sleep 0.5
  done
}
# CPU time (clock ticks) a process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
ACCESS_IPERF=${ACCESS_PID[iperf.localhost]}
for path in "${PATHS[@]}"; do
  if [ "$path" = warren ]; then
    CPU0=("$(ticks "$ACCESS_IPERF")" "$(ticks "$EDGE_PID")" "$(ticks "$CONN_PID")"); T0=$SECONDS
  fi
  rec "iperf_1.$path" "$(iperf "${P_IPERF[$path]}" 1)"
  if [ "$path" = warren ]; then
    CPU1=("$(ticks "$ACCESS_IPERF")" "$(ticks "$EDGE_PID")" "$(ticks "$CONN_PID")"); T1=$SECONDS
    HZ=$(getconf CLK_TCK)
    CPU_NAMES=(access edge connector)
    for i in 0 1 2; do
      rec "cpu.${CPU_NAMES[i]}" \
        "$(python3 -c 'import sys; a,b,hz,t=map(int,sys.argv[1:]); print((b-a)/hz/max(1,t)*100)' "${CPU0[i]}" "${CPU1[i]}" "$HZ" "$((T1 - T0))")"
    done
  fi
  rec "iperf_8.$path" "$(iperf "${P_IPERF[$path]}" 8)"
done
phase "round trips"
for path in "${PATHS[@]}"; do
  r=$("$LG" rtt "${P_ECHO[$path]}" --count "$N_RTT")
  rec "rtt_p50.$path" "$(jq .p50_us <<<"$r")"; rec "rtt_p99.$path" "$(jq .p99_us <<<"$r")"
done
phase "new connections"
for path in "${PATHS[@]}"; do
  c=$("$LG" connect "${P_ECHO[$path]}" --count "$N_CONN")
  rec "connect.$path" "$(jq .mean_ms <<<"$c")"; rec "connect_failed.$path" "$(jq .failed <<<"$c")"
done
# pgtps HOST:PORT [pgbench flags...]: select-only TPS, 8 clients.
pgtps() { local a=$1; shift; PGSSLMODE=disable pgbench -h "${a%:*}" -p "${a##*:}" -U app -S -c 8 -j 2 -T "$T_PG" -n "$@" app 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1; }
phase "pgbench -S"
for path in "${PATHS[@]}"; do rec "pg_s.$path" "$(pgtps "${P_PG[$path]}")"; done
# -C: a new connection per transaction.
phase "pgbench -S -C"
for path in "${PATHS[@]}"; do rec "pg_c.$path" "$(pgtps "${P_PG[$path]}" -C)"; done
# Peak RSS of each path's processes, summed (each VmHWM is that process's
# own peak; the sum is an upper bound on the path's peak).
for path in "${PATHS[@]}"; do
  case $path in
    direct) continue ;;
    ssh) pids=$(ssh_pids) ;;
    *) pids=${P_PIDS[$path]} ;;
  esac
  # shellcheck disable=SC2086 # a list of pids
  rec "rss.$path" "$(kb VmHWM $pids)"
  # shellcheck disable=SC2086
  rec "rss_procs.$path" "$(echo $pids | wc -w)"
  # shellcheck disable=SC2086
  rec "rss_detail.$path" "$(for p in $pids; do printf '%s:%s ' "$(tr '\0' ' ' <"/proc/$p/cmdline" | awk '{n=$1; sub(".*/","",n); print n "_" $2}')" "$(kb VmHWM "$p")"; done)"
done
rec rss_edge "$(kb VmHWM "$EDGE_PID")"; rec rss_connector "$(kb VmHWM "$CONN_PID")"
rec rss_access "$(kb VmHWM "${ACCESS_PID[iperf.localhost]}" "${ACCESS_PID[rtt.localhost]}" "${ACCESS_PID[db.localhost]}")"
rec idle_connector "$IDLE_RSS"

# --- Warren-only rows -----------------------------------------------------
phase "Warren-only rows"
rec pg_rule_s "$(pgtps "$A_PG")"; rec pg_rule_c "$(pgtps "$A_PG" -C)"
# The native listener: TLS with a client certificate at the edge.
pgnative() {
  PGHOSTADDR=127.0.0.1 PGSSLMODE=verify-full PGCHANNELBINDING=disable \
    PGSSLROOTCERT=$TMP/home/pg/pgn.localhost-ca.crt PGSSLCERT=$TMP/home/pg/pgn.localhost.crt PGSSLKEY=$TMP/home/pg/pgn.localhost.key \
    pgbench -h pgn.localhost -p "$PGN_PORT" -U app -S -c 8 -j 2 -T "$T_PG" -n "$@" app 2>/dev/null | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1
}
rec native_s "$(pgnative)"; rec native_c "$(pgnative -C)"
wrk_run() { wrk -t2 -c32 -d"${T_WRK}s" --latency "$@" 2>/dev/null; }
WRK_D=$(wrk_run "http://$HTTP_ORIGIN/"); WRK_W=$(wrk_run -H "Host: web.localhost" "https://$HTTPS/")
rps() { sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p'; }
# wrk's p50 in µs.
p50us() { awk '/ 50%/ {v=$2; u=v; gsub(/[0-9.]/,"",u); gsub(/[a-z]/,"",v); m=(u=="ms")?1000:(u=="s")?1e6:1; print v*m}'; }
rec http_rps.direct "$(rps <<<"$WRK_D")"; rec http_rps.warren "$(rps <<<"$WRK_W")"
rec http_p50.direct "$(p50us <<<"$WRK_D")"; rec http_p50.warren "$(p50us <<<"$WRK_W")"

# --- edge memory -----------------------------------------------------------
# On a second, fresh edge ("mem"), so that what the rows above left in the
# first edge's allocator does not blur the figures. wm: the CLI against it.
"$W" edge --data-dir "$TMP/mem" --domain localhost --listen-tunnel 127.0.0.1:0 \
  --listen-https 127.0.0.1:0 --listen-http 127.0.0.1:0 --listen-admin 127.0.0.1:0 2>"$TMP/mem-edge.log" &
MEM_PID=$!; PIDS+=("$MEM_PID")
wait_for "the second edge" 20 test -s "$TMP/mem/edge.json"
MEM_HTTPS=$(jq -r .https "$TMP/mem/edge.json")
MEM_API=http://$(jq -r .admin "$TMP/mem/edge.json"); MEM_API_TOKEN=$(cat "$TMP/mem/admin-token")
wm() { WARREN_API=$MEM_API WARREN_API_TOKEN=$MEM_API_TOKEN "$W" "$@"; }

# First one tunnel, the one the streams below use (a connector sending
# everything to the echo origin), so that the edge's one-time allocations
# for its first connections are made before the figures.
wm tunnel create hold >/dev/null
wm tunnel route dns hold hold.localhost --public >/dev/null
WARREN_TOKEN=$(wm tunnel token hold) "$W" tunnel run --url "tcp://$ECHO" 2>"$TMP/hold-connector.log" &
HOLD_CONN=$!; PIDS+=("$HOLD_CONN")
connected_mem() { [ "$(wm tunnel info hold --output json | jq '.connections | length')" -ge 4 ]; }
wait_for "the hold connector" 20 connected_mem

# Edge memory per idle connected tunnel: N more tunnels, each with its own
# token and one connector (4 HA connections, --url hello_world), all
# connected at once.
phase "edge memory with $N_TUNNELS idle tunnels"
EXTRA=()
BEFORE=$(kb VmRSS "$MEM_PID")
for i in $(seq 1 "$N_TUNNELS"); do
  wm tunnel create "idle$i" >/dev/null
  WARREN_TOKEN=$(wm tunnel token "idle$i") "$W" tunnel run --url hello_world 2>"$TMP/idle$i.log" &
  PIDS+=($!); EXTRA+=($!)
done
all_connected() {
  [ "$(wm tunnel list --output json | jq --argjson n "$N_TUNNELS" '[.[] | select((.name | startswith("idle")) and (.connections | length) >= 4)] | length == $n')" = true ]
}
wait_for "$N_TUNNELS connectors" $((30 + N_TUNNELS)) all_connected
AFTER=$(kb VmRSS "$MEM_PID")
rec tunnels "$N_TUNNELS"; rec tunnel_rss_before "$BEFORE"; rec tunnel_rss_after "$AFTER"
for p in "${EXTRA[@]}"; do kill "$p"; done
for p in "${EXTRA[@]}"; do wait "$p" 2>/dev/null || true; done
for i in $(seq 1 "$N_TUNNELS"); do wm tunnel delete "idle$i" >/dev/null; done

# N_STREAMS concurrent streams held open through `access tcp` to the
# echo route on the same edge. Each local connection costs the access process
# one descriptor over QUIC (its local socket) and two over the WebSocket
# carrier (and its TLS connection to the edge), so one process may need
# about 2 N: ask for it, and record what it got.
hold_run() { # hold_run NAME ADDR...: run `warren-loadgen hold`, sampling RSS.
  local name=$1 out=$TMP/hold-$1.out; shift
  local before; before=$(kb VmRSS "$MEM_PID"); local fds0; fds0=$(nfds "$MEM_PID")
  "$LG" hold "$@" --count "$N_STREAMS" --hold-secs "$HOLD_SECS" --open-secs 180 >"$out" 2>&1 &
  local lp=$!; PIDS+=("$lp")
  wait_for "hold ($name) to open its connections" 200 grep -q '"phase":"holding"' "$out"
  rec "hold_$name.edge_rss_during" "$(kb VmRSS "$MEM_PID")"
  rec "hold_$name.connector_rss_during" "$(kb VmRSS "$HOLD_CONN")"
  rec "hold_$name.edge_fds_during" "$(nfds "$MEM_PID")"
  wait_for "hold ($name) to close" $((HOLD_SECS + 120)) grep -q '"phase":"closed"' "$out"
  wait "$lp" || true
  # The edge has closed them when its descriptors are back near where they were.
  edge_closed() { [ "$(nfds "$MEM_PID")" -le $((fds0 + 16)) ]; }
  wait_for "the edge to close the held streams" 60 edge_closed
  rec "hold_$name.edge_rss_before" "$before"
  rec "hold_$name.edge_rss_after" "$(kb VmRSS "$MEM_PID")"
  rec "hold_$name.result" "$(jq -c 'select(.phase == "holding")' "$out")"
  rec "hold_$name.closed" "$(jq -c 'select(.phase == "closed")' "$out")"
}
phase "holding $N_STREAMS streams through one access tcp"
WANT_FDS=$((2 * N_STREAMS + 256))
ACCESS_EDGE=$MEM_HTTPS ACCESS_CA=$TMP/mem/ca.pem start_access hold.localhost hold "$WANT_FDS"
HOLD_ACCESS=${ACCESS_PID[hold]}
HOLD_NOFILE=$(awk '/^Max open files/ {print $4}' "/proc/$HOLD_ACCESS/limits")
rec hold_access_nofile "$HOLD_NOFILE"; rec hold_want_nofile "$WANT_FDS"
rec hold_edge_nofile "$(awk '/^Max open files/ {print $4}' "/proc/$MEM_PID/limits")"
hold_run one "$(access_addr hold)"
rec hold_one.access_errors "$(grep -c ERROR "$TMP/access-hold.log" || true)"
rec hold_one.access_emfile "$(grep -c -i 'too many open files' "$TMP/access-hold.log" || true)"
kill "$HOLD_ACCESS"; wait "$HOLD_ACCESS" 2>/dev/null || true
# When one process cannot hold them all, the edge's figure still matters:
# the same N over enough access tcp processes (same hostname) to stay
# under the limit.
if [ "$HOLD_NOFILE" -lt "$WANT_FDS" ]; then
  K=$(((2 * N_STREAMS + HOLD_NOFILE - 513) / (HOLD_NOFILE - 512)))
  phase "holding $N_STREAMS streams through $K access tcp processes"
  addrs=()
  for i in $(seq 1 "$K"); do
    ACCESS_EDGE=$MEM_HTTPS ACCESS_CA=$TMP/mem/ca.pem start_access hold.localhost "hold$i"
    addrs+=("$(access_addr "hold$i")")
  done
  rec hold_split_processes "$K"
  hold_run split "${addrs[@]}"
  for i in $(seq 1 "$K"); do kill "${ACCESS_PID[hold$i]}"; done
fi

# Anything Warren logged at warn or error during the run.
for f in edge connector mem-edge hold-connector; do rec "log_lines.$f" "$(grep -c -E 'WARN|ERROR' "$TMP/$f.log" || true)"; done
rec "log_lines.access" "$(cat "$TMP"/access-*.log | grep -c -E 'WARN|ERROR' || true)"
mkdir -p bench/out
rm -rf bench/out/logs; mkdir -p bench/out/logs
cp "$TMP"/*.log "$TMP"/rathole/*.log bench/out/logs/ 2>/dev/null || true
for d in ssh stunnel pg; do for f in "$TMP/$d"/*log; do [ -f "$f" ] && cp "$f" "bench/out/logs/$d-$(basename "$f")"; done; done
cat "$TMP/edge.log" "$TMP/connector.log" "$TMP/mem-edge.log" "$TMP/hold-connector.log" "$TMP"/access-*.log | grep -E 'WARN|ERROR' | head -200 >bench/out/warren-warnings.log || true

# --- report ---------------------------------------------------------------
phase "report"
rec meta.quick "$QUICK"; rec meta.commit "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
rec meta.date "$(date -u +%Y-%m-%dT%H:%M:%SZ)"; rec meta.seconds "$((SECONDS - STARTED))"
rec meta.t_iperf "$T_IPERF"; rec meta.t_pg "$T_PG"; rec meta.t_wrk "$T_WRK"; rec meta.n_rtt "$N_RTT"; rec meta.n_conn "$N_CONN"
rec meta.n_streams "$N_STREAMS"; rec meta.hold_secs "$HOLD_SECS"
RC=0
python3 bench/report.py "$RES" bench/out/results.md bench/out/results.json || RC=$?
cat bench/out/results.md
echo "($((SECONDS - STARTED)) s; bench/out/results.md, bench/out/results.json)" >&2
if [ "$CHECK" = 1 ]; then python3 bench/check.py bench/out/results.json docs/benchmarks.md || RC=$?; fi
exit "$RC"
