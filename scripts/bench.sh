#!/usr/bin/env bash
# Throughput, latency, Redis round trips and memory of the app next to a bare poem hello-world,
# all measured in the same run, in alternating rounds:
#   bare      bare poem GET /health/live (examples/bare.rs), the baseline;
#   health    the app's GET /health/live (default configuration: memory backend, embedded SQLite);
#   guarded   GET /api/v1/users/me with a bearer token on a real redis-server, profile cache off:
#             JWT check in process, the session check and the default rate-limit policy in Redis
#             (one combined script), then the profile read from SQLite;
#   no-limit  the same on an app with rate limiting off (what the limiter costs);
#   me-cached GET /api/v1/users/me, profile from the cache (a cache hit);
#   lib-cached GET /api/v1/library?page=1, the page from the cache (a cache hit);
#   nl-cached GET /api/v1/users/me from the cache on the app with rate limiting off;
#   many-cached, many-nl  me-cached and nl-cached with the requests spread over USERS accounts
#             (200 by default; wrk sends each request with the next account's token): each
#             account's requests come further apart than the policy's emission interval, as a
#             client's do while it stays under its limit, so the limiter counts subjects out of
#             debt, where one busy account keeps its subject in debt.
#
#   ./scripts/bench.sh                        # 3 rounds x 8 s per scenario, 64 connections
#                                             # (the limiter cost also from paired rounds)
#   ROUNDS=5 DURATION=10s CONNECTIONS=128 ./scripts/bench.sh
#   SCENARIOS="guarded no-limit" ./scripts/bench.sh
#
# Uses wrk (installed with apt-get when missing) on loopback against release builds. The table
# shows each scenario's median round (requests/s, p50, p99), its ratio to bare, the Redis round
# trips (EVALSHA calls: a request's every Redis operation is a script) and commands (including
# those inside scripts) per request, counted from Redis's INFO, and the server's peak RSS while loaded. On a small machine
# wrk and the servers share the cores, so absolute numbers are low and vary; compare within a run.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-8s}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
SCENARIOS="${SCENARIOS:-bare health guarded no-limit me-cached lib-cached nl-cached many-cached many-nl}"
USERS="${USERS:-200}"
BASE_PORT="${BASE_PORT:-3900}"
REDIS_PORT=$((BASE_PORT + 9))

if ! command -v wrk >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "==> installing wrk"
    sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq wrk >/dev/null
  else
    echo "error: wrk is required (https://github.com/wg/wrk)" >&2; exit 1
  fi
fi

echo "==> building release binaries"
cargo build --release --locked --bin app --example bare 2>&1 | tail -1

# shellcheck source=scripts/bench-common.sh
. scripts/bench-common.sh
results="$workdir/results"
mkdir -p "$results"

# start NAME PORT [VAR=value ...]: the app in its own directory (its own SQLite file), logging
# warnings only so the terminal is never the bottleneck. The benchmark is the load, not an
# attack: the default policy gets room for it (and is still evaluated on every request).
start() {
  local name=$1 port=$2; shift 2
  mkdir -p "$workdir/$name"
  (cd "$workdir/$name" && exec env PORT="$port" APP_SERVER__HOST=127.0.0.1 APP_LOG__LEVEL=warn \
    APP_RATE_LIMIT__POLICIES__API__LIMIT=1000000 APP_RATE_LIMIT__POLICIES__API__WINDOW=1h \
    APP_RATE_LIMIT__POLICIES__AUTH_IP__LIMIT=1000000 APP_RATE_LIMIT__POLICIES__AUTH_IP__WINDOW=1h \
    APP_REDIS__KEY_PREFIX="$name:" "$@" "$OLDPWD/target/release/app" >/dev/null 2>&1) &
  pids+=($!)
  eval "pid_$name=$!"
}

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null 2>&1 &
pids+=($!)
PORT=$BASE_PORT ./target/release/examples/bare >/dev/null 2>&1 &
pids+=($!); pid_bare=$!
redis="REDIS_URL=redis://127.0.0.1:$REDIS_PORT"
start health $((BASE_PORT + 1))
start guarded $((BASE_PORT + 2)) "$redis" APP_CACHE__ENABLED=false
start nolimit $((BASE_PORT + 3)) "$redis" APP_CACHE__ENABLED=false APP_RATE_LIMIT__ENABLED=false
start cached $((BASE_PORT + 4)) "$redis"
start nlcached $((BASE_PORT + 5)) "$redis" APP_RATE_LIMIT__ENABLED=false
for port in $(seq "$BASE_PORT" $((BASE_PORT + 5))); do wait_for "$port"; done

# Every round gets fresh accounts (see `login` in bench-common.sh): one account's allowance under
# the default policy (1,000,000 an hour, the most a policy allows) is less than a fast machine
# serves it in all the rounds.

# Scenario -> "port path server-pid token-base" (token-base empty: no bearer).
declare -A url pid base
url[bare]="$BASE_PORT/health/live"; pid[bare]=$pid_bare; base[bare]=""
url[health]="$((BASE_PORT + 1))/health/live"; pid[health]=$pid_health; base[health]=""
url[guarded]="$((BASE_PORT + 2))/api/v1/users/me"; pid[guarded]=$pid_guarded; base[guarded]=guarded
url[no-limit]="$((BASE_PORT + 3))/api/v1/users/me"; pid[no-limit]=$pid_nolimit; base[no-limit]=nolimit
url[me-cached]="$((BASE_PORT + 4))/api/v1/users/me"; pid[me-cached]=$pid_cached; base[me-cached]=cached
url[lib-cached]="$((BASE_PORT + 4))/api/v1/library?page=1"; pid[lib-cached]=$pid_cached; base[lib-cached]=cached
url[nl-cached]="$((BASE_PORT + 5))/api/v1/users/me"; pid[nl-cached]=$pid_nlcached; base[nl-cached]=nlcached
url[many-cached]=${url[me-cached]}; pid[many-cached]=$pid_cached; base[many-cached]=cached
url[many-nl]=${url[nl-cached]}; pid[many-nl]=$pid_nlcached; base[many-nl]=nlcached
declare -A port_of=([guarded]=$((BASE_PORT + 2)) [nolimit]=$((BASE_PORT + 3)) [cached]=$((BASE_PORT + 4)) [nlcached]=$((BASE_PORT + 5)))
declare -A token_of
for b in guarded nolimit cached nlcached; do
  token_of[$b]=$(login "http://127.0.0.1:${port_of[$b]}/api/v1")
done

# The many-* scenarios: USERS accounts per app (made once: each account's share of the load
# stays far below the policy's 1,000,000 an hour), and a wrk script that sends each request
# with the next account's token, each wrk thread starting half the list apart.
declare -A script
for s in many-cached many-nl; do
  case " $SCENARIOS " in *" $s "*) ;; *) continue ;; esac
  b=${base[$s]}
  echo "==> $USERS accounts for $s"
  for _ in $(seq 1 "$USERS"); do login "http://127.0.0.1:${port_of[$b]}/api/v1"; done >"$workdir/tokens-$s"
  cat >"$workdir/tokens-$s.lua" <<LUA
local tokens = {}
for line in io.lines("$workdir/tokens-$s") do tokens[#tokens + 1] = "Bearer " .. line end
local threads, i = 0, 0
function setup(thread) thread:set("first", threads * math.floor(#tokens / 2)); threads = threads + 1 end
function init() i = first or 0 end
function request()
  i = i % #tokens + 1
  return wrk.format("GET", nil, { Authorization = tokens[i] })
end
LUA
  script[$s]="$workdir/tokens-$s.lua"
done

# "trips commands": top-level commands (each one round trip; EVALSHA carries a whole script) and
# every command executed, those inside scripts included (Redis counts both in commandstats).
redis_counts() {
  redis-cli -p "$REDIS_PORT" INFO all | tr -d '\r' | awk -F'[:=,]' '
    /^cmdstat_evalsha:/ { evalsha = $3 } /^cmdstat_info:/ { info = $3 }
    /^total_commands_processed:/ { total = $2 }
    /^used_cpu_user:/ { cpu += $2 } /^used_cpu_sys:/ { cpu += $2 }
    END { printf "%d %d %.6f\n", evalsha + 0, total + 0, cpu }'
}

# cpu_seconds PID -> user + system CPU time the process has used
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15) / hz }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# measure SCENARIO -> "rps p50 p99 requests" (latencies in ms) for one run
measure() {
  local s=$1 args=()
  if [ -n "${script[$s]:-}" ]; then
    args=(-s "${script[$s]}")
  elif [ -n "${base[$s]}" ]; then
    args=(-H "Authorization: Bearer ${token_of[${base[$s]}]}")
  fi
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${args[@]}" "http://127.0.0.1:${url[$s]}" | awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ { rps = $2 }
    /requests in/ { total = $1 }
    /^ +50%/ { p50 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    /Non-2xx/ { bad = $5 }
    END {
      if (bad > 0) printf "warning: %d responses were not 2xx\n", bad > "/dev/stderr"
      printf "%.0f %.3f %.3f %d\n", rps, p50, p99, total
    }'
}

# median FILE -> the line whose first field is the median
median() { sort -n "$1" | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }'; }

for s in $SCENARIOS; do
  if [ -n "${base[$s]}" ]; then
    status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer ${token_of[${base[$s]}]}" "http://127.0.0.1:${url[$s]}")
    [ "$status" = 200 ] || { echo "error: $s answered $status" >&2; exit 1; }
  fi
done
echo "==> warming up"
for s in $SCENARIOS; do DURATION=2s measure "$s" >/dev/null; done

echo "==> measuring: $ROUNDS alternating rounds of $DURATION, $CONNECTIONS connections, $THREADS wrk threads, $(nproc) cores"
for round in $(seq 1 "$ROUNDS"); do
  for b in guarded nolimit cached nlcached; do
    token_of[$b]=$(login "http://127.0.0.1:${port_of[$b]}/api/v1")
  done
  # Every other round runs the scenarios in reverse (ABBA): a machine that speeds up or slows
  # down during the run then favours neither side of a pair.
  order=$SCENARIOS
  [ $((round % 2)) -eq 0 ] && order=$(echo "$SCENARIOS" | tr ' ' '\n' | tac | tr '\n' ' ')
  for s in $order; do
    read -r evalsha_before total_before rcpu_before < <(redis_counts)
    app_cpu_before=$(cpu_seconds "${pid[$s]}")
    # Peak RSS of the server while loaded: sampled every 200 ms during the run.
    (peak=0; while kill -0 "${pid[$s]}" 2>/dev/null; do
       r=$(ps -o rss= -p "${pid[$s]}" 2>/dev/null | tr -d ' '); [ -n "$r" ] && [ "$r" -gt "$peak" ] && peak=$r
       echo "$peak" >"$results/rss-$s.now"; sleep 0.2; done) &
    sampler=$!
    line=$(measure "$s")
    kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
    read -r evalsha_after total_after rcpu_after < <(redis_counts)
    app_cpu_after=$(cpu_seconds "${pid[$s]}")
    requests=$(echo "$line" | awk '{ print $4 }')
    rss=$(cat "$results/rss-$s.now" 2>/dev/null || echo 0)
    # The two INFO calls count as commands too. CPU: microseconds per request, server and Redis.
    awk -v l="$line" -v t=$((evalsha_after - evalsha_before)) -v c=$((total_after - total_before - 1)) -v n="$requests" -v r="$rss" \
      -v ac="$(awk -v a="$app_cpu_after" -v b="$app_cpu_before" 'BEGIN { print a - b }')" \
      -v rc="$(awk -v a="$rcpu_after" -v b="$rcpu_before" 'BEGIN { print a - b }')" \
      'BEGIN { printf "%s %.2f %.2f %d %.1f %.1f\n", l, t / n, c / n, r, ac * 1e6 / n, rc * 1e6 / n }' | tee -a "$results/$s" | sed "s/^/    round $round $s: /"
  done
done

printf '\n%-58s %9s %8s %8s %6s %6s %6s %8s %7s %7s\n' "scenario (median round)" "req/s" "p50 ms" "p99 ms" "ratio" "trips" "cmds" "RSS MiB" "app us" "redis us"
read -r bare_rps _ < <(median "$results/bare" 2>/dev/null || echo 0)
declare -A label=(
  [bare]="bare poem GET /health/live"
  [health]="app GET /health/live"
  [guarded]="GET /api/v1/users/me (bearer, limiter, profile from SQL)"
  [no-limit]="the same, rate limiting off"
  [me-cached]="GET /api/v1/users/me (bearer, limiter, cache hit)"
  [lib-cached]="GET /api/v1/library?page=1 (bearer, limiter, cache hit)"
  [nl-cached]="GET /api/v1/users/me (cache hit), rate limiting off"
  [many-cached]="GET /api/v1/users/me (cache hit), $USERS accounts, limiter"
  [many-nl]="the same, $USERS accounts, rate limiting off"
)
declare -A rps_of
for s in $SCENARIOS; do
  read -r rps p50 p99 _ trips cmds rss acpu rcpu < <(median "$results/$s")
  rps_of[$s]=$rps
  awk -v n="${label[$s]}" -v rps="$rps" -v p50="$p50" -v p99="$p99" -v b="${bare_rps:-0}" -v t="$trips" -v c="$cmds" -v r="$rss" \
    -v ac="$acpu" -v rc="$rcpu" \
    'BEGIN { printf "%-58s %9d %8.3f %8.3f %6.2f %6.2f %6.2f %8.1f %7.1f %7.1f\n", n, rps, p50, p99, (b > 0 ? rps / b : 0), t, c, r / 1024, ac, rc }'
done
echo
if [ -n "${rps_of[bare]:-}" ] && [ -n "${rps_of[health]:-}" ]; then
  awk -v a="${rps_of[health]}" -v b="${rps_of[bare]}" 'BEGIN { r = a / b; printf "app/bare = %.2f (target >= 0.80): %s\n", r, (r >= 0.8 ? "met" : "NOT met") }'
fi
# limiter_cost ON OFF LABEL: the cost from the median rounds, and the median and range of the
# rounds' paired costs (each round runs ON and OFF back to back, in alternating order, so
# pairing cancels the drift of a noisy machine between and within rounds).
limiter_cost() {
  [ -f "$results/$1" ] && [ -f "$results/$2" ] || return 0
  paste -d' ' <(awk '{ print $1 }' "$results/$1") <(awk '{ print $1 }' "$results/$2") |
    awk '{ printf "%.4f\n", (1 - $1 / $2) * 100 }' | sort -n |
    awk -v on="${rps_of[$1]}" -v off="${rps_of[$2]}" -v label="$3" '
      { c[NR] = $1; sum += $1 }
      END {
        printf "limiter cost, %s: %.1f%% of throughput from the median rounds; paired rounds: median %.1f%%, mean %.1f%%, %.1f%% to %.1f%% (target <= 10%%)\n",
          label, (1 - on / off) * 100, c[int((NR + 1) / 2)], sum / NR, c[1], c[NR]
      }'
}
limiter_cost guarded no-limit "profile from SQL"
limiter_cost me-cached nl-cached "profile from the cache"
limiter_cost many-cached many-nl "cache hit, $USERS accounts"
echo "trips: Redis round trips per request (the guard's session check and default policy travel as one)."
echo "app us / redis us: CPU time per request spent in the server process and in redis-server."
