#!/usr/bin/env bash
# What the rate limiter costs per request, in instructions: the app and redis-server each run
# under valgrind's callgrind while one client sends N sequential `GET /api/v1/users/me` with a
# bearer token, once to an app with rate limiting on and once to one with it off. Instruction
# counts do not depend on what else the machine does, so this shows a change's effect where
# `scripts/bench.sh`'s throughput figures drown it in noise (on a small shared VM, rounds of the
# same scenario spread by up to 20 points). It counts user-space instructions only: the kernel's work (sockets, syscalls), the
# same with the limiter on and off, is not in it.
#
#   ./scripts/bench-instructions.sh              # 2000 requests, profile from the cache
#   N=5000 CACHE=false ./scripts/bench-instructions.sh   # profile from SQLite
#   WORKERS=2 ./scripts/bench-instructions.sh            # two event loops, two runtime workers
#   SUBJECT=idle ./scripts/bench-instructions.sh         # each request after its interval
#
# SUBJECT picks the limiter's path. `busy` (the default, and what `scripts/bench.sh`'s load does):
# every request comes within its emission interval of the previous one (a policy of 1,000,000
# per 30 days: 2.6 s), as a busy client's or an SPA's burst of calls do, so the subject is always
# in debt. `idle`: a policy of 1,000 per second and a 2 ms pause before each request, so every
# request finds its subject's debt paid off, as a client's first request after a pause does.
#
# Needs valgrind (installed with apt-get when missing), python3 and curl.
set -euo pipefail
cd "$(dirname "$0")/.."

N="${N:-2000}"
# One event loop (`server.threads`) and one runtime worker by default: with two, the count
# depends a little on how the threads meet (a few thousand instructions per request from run to
# run); with one it repeats.
WORKERS="${WORKERS:-1}"
CACHE="${CACHE:-true}"
SUBJECT="${SUBJECT:-busy}"
case "$SUBJECT" in
  busy) policy=(APP_RATE_LIMIT__POLICIES__API__LIMIT=1000000 APP_RATE_LIMIT__POLICIES__API__WINDOW=30d); pause=0 ;;
  idle) policy=(APP_RATE_LIMIT__POLICIES__API__LIMIT=1000 APP_RATE_LIMIT__POLICIES__API__WINDOW=1s); pause=0.002 ;;
  *) echo "error: SUBJECT is busy or idle, not $SUBJECT" >&2; exit 1 ;;
esac
BASE_PORT="${BASE_PORT:-3960}"

if ! command -v valgrind >/dev/null 2>&1 || ! command -v callgrind_control >/dev/null 2>&1; then
  echo "==> installing valgrind"
  sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq valgrind >/dev/null
fi

echo "==> building release binaries"
# The same set as scripts/bench.sh builds, so the two scripts share one build.
cargo build --release --locked --bin app --example bare 2>&1 | tail -1
app="$PWD/target/release/app"

# shellcheck source=scripts/bench-common.sh
. scripts/bench-common.sh

# requests PORT COUNT TOKEN: COUNT sequential requests on one keep-alive connection, each after
# a pause of `pause` seconds.
requests() {
  python3 - "$@" "$pause" <<'EOF'
import http.client, sys, time
port, n, token, pause = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
c = http.client.HTTPConnection("127.0.0.1", port)
for _ in range(n):
    if pause: time.sleep(pause)
    c.request("GET", "/api/v1/users/me", headers={"Authorization": "Bearer " + token})
    r = c.getresponse(); r.read()
    if r.status != 200: sys.exit(f"GET /api/v1/users/me answered {r.status}")
EOF
}

wait_for_redis() {
  for _ in $(seq 1 300); do
    redis-cli -p "$1" ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "error: no redis-server on port $1" >&2; exit 1
}

# total FILE -> the instructions a callgrind dump counted
total() { callgrind_annotate "$1" 2>/dev/null | awk '/PROGRAM TOTALS/ && !n++ { gsub(",", "", $1); print $1 }'; }

# start NAME PORT REDIS_PORT [WRAPPER...]: the app in its own directory (its own SQLite file),
# limiter on for NAME=on, off for NAME=off; the default policy gets room for the load.
start() {
  local name=$1 port=$2 redis_port=$3; shift 3
  local limiter=true; [ "$name" = off ] && limiter=false
  mkdir -p "$workdir/$name-$port"
  (cd "$workdir/$name-$port" && exec env PORT="$port" APP_SERVER__HOST=127.0.0.1 APP_LOG__LEVEL=warn \
    REDIS_URL="redis://127.0.0.1:$redis_port" APP_REDIS__KEY_PREFIX="$name:" APP_CACHE__ENABLED="$CACHE" \
    APP_RATE_LIMIT__ENABLED="$limiter" "${policy[@]}" TOKIO_WORKER_THREADS="$WORKERS" APP_SERVER__THREADS="$WORKERS" "$@" "$app" >/dev/null 2>&1) &
  pids+=($!)
  last_pid=$!
}

declare -A app_instr redis_instr

# The app under callgrind (instrumented only while the measured requests run).
redis_port=$((BASE_PORT + 9))
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
pids+=($!)
wait_for_redis "$redis_port"
port=$BASE_PORT
for name in on off; do
  echo "==> the app under callgrind, rate limiting $name"
  out="$workdir/app-$name.out"
  start "$name" "$port" "$redis_port" valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$out"
  wait_for "$port"
  token=$(login "http://127.0.0.1:$port/api/v1")
  requests "$port" 200 "$token"
  callgrind_control -i on "$last_pid" >/dev/null 2>&1
  requests "$port" "$N" "$token"
  callgrind_control -i off "$last_pid" >/dev/null 2>&1
  callgrind_control -d "$last_pid" >/dev/null 2>&1
  # The dump is complete once the process has exited.
  kill "$last_pid" 2>/dev/null || true
  while kill -0 "$last_pid" 2>/dev/null; do sleep 0.2; done
  app_instr[$name]=$(( $(total "$(ls -S "$out"* | head -1)") / N ))
  port=$((port + 1))
done

# redis-server under callgrind, serving both apps (counted from zero for each).
echo "==> redis-server under callgrind"
redis_port=$((BASE_PORT + 8))
valgrind --tool=callgrind --callgrind-out-file="$workdir/redis.out" redis-server --port "$redis_port" \
  --bind 127.0.0.1 --save "" --appendonly no >/dev/null 2>&1 &
pids+=($!); redis_pid=$!
wait_for_redis "$redis_port"
for name in on off; do
  start "$name" "$port" "$redis_port"
  wait_for "$port"
  token=$(login "http://127.0.0.1:$port/api/v1")
  requests "$port" 200 "$token"
  callgrind_control -z "$redis_pid" >/dev/null 2>&1
  requests "$port" "$N" "$token"
  callgrind_control -d "$name" "$redis_pid" >/dev/null 2>&1
  # callgrind_control returns once the dump is written.
  redis_instr[$name]=$(( $(total "$(ls -t "$workdir"/redis.out.* | head -1)") / N ))
  kill "$last_pid" 2>/dev/null || true
  port=$((port + 1))
done

route="profile from the cache"; [ "$CACHE" = false ] && route="profile from SQL"
printf '\nGET /api/v1/users/me (%s), %s sequential requests, %s subject: instructions per request\n' "$route" "$N" "$SUBJECT"
printf '%-10s %12s %12s %12s\n' "" "limiter on" "limiter off" "limiter adds"
printf '%-10s %12d %12d %12d\n' app "${app_instr[on]}" "${app_instr[off]}" $((app_instr[on] - app_instr[off]))
printf '%-10s %12d %12d %12d\n' redis "${redis_instr[on]}" "${redis_instr[off]}" $((redis_instr[on] - redis_instr[off]))
on=$((app_instr[on] + redis_instr[on])); off=$((app_instr[off] + redis_instr[off]))
printf '%-10s %12d %12d %12d (%.1f%% of the unlimited request'"'"'s user-space instructions)\n' \
  "both" "$on" "$off" $((on - off)) "$(awk -v a="$on" -v b="$off" 'BEGIN { print (a / b - 1) * 100 }')"
