#!/usr/bin/env bash
# Throughput and latency of the app next to a bare poem hello-world, measured in the same run:
#   - bare poem GET /health/live (the baseline),
#   - the app's GET /health/live (the default app: memory backend, embedded SQLite),
#   - the app's guarded GET /api/v1/users/me with a bearer token, on a real redis-server the script
#     starts on loopback (JWT check in process + the session check in Redis + the default
#     rate-limit policy, sent concurrently), with the Redis calls per request counted from INFO;
#   - the same guarded route on a second app with rate limiting off, to show what the limiter costs.
#
#   ./scripts/bench.sh                        # 3 rounds x 8 s per scenario, 64 connections
#   ROUNDS=5 DURATION=10s CONNECTIONS=128 ./scripts/bench.sh
#
# Uses wrk (installed with apt-get when missing) on loopback against release builds. Scenarios
# are measured in alternating rounds (bare, app, bare, app, ...) after a warm-up, so drift in the
# machine's speed hits both alike; the table shows each scenario's median round (requests/s,
# p50, p99) and the ratio of the medians. On a small machine wrk and the server share the cores,
# so absolute numbers are low and vary; the ratio is what to compare.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-8s}"
ROUNDS="${ROUNDS:-3}"
CONNECTIONS="${CONNECTIONS:-64}"
THREADS="${THREADS:-2}"
BARE_PORT="${BARE_PORT:-3901}"
APP_PORT="${APP_PORT:-3902}"
GUARDED_PORT="${GUARDED_PORT:-3903}"
UNLIMITED_PORT="${UNLIMITED_PORT:-3905}"
REDIS_PORT="${REDIS_PORT:-3904}"

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

workdir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$workdir"
}
trap cleanup EXIT

wait_for() {
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$1/health/live" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "error: nothing answers on port $1" >&2; exit 1
}

PORT=$BARE_PORT ./target/release/examples/bare >/dev/null 2>&1 &
pids+=($!)
# The app as it runs by default (memory backend, embedded SQLite), logging warnings only so the
# terminal does not become the bottleneck.
(cd "$workdir" && PORT=$APP_PORT APP_SERVER__HOST=127.0.0.1 APP_LOG__LEVEL=warn exec "$OLDPWD/target/release/app" >/dev/null 2>&1) &
pids+=($!)
# A second app on a private redis-server (no persistence: the benchmark measures the app), for
# the guarded route.
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null 2>&1 &
pids+=($!)
mkdir -p "$workdir/guarded-app"
# The benchmark is the load, not an attack: the default policy gets room for it (and is
# still evaluated on every request).
(cd "$workdir/guarded-app" && PORT=$GUARDED_PORT APP_SERVER__HOST=127.0.0.1 APP_LOG__LEVEL=warn \
  APP_RATE_LIMIT__POLICIES__API__LIMIT=1000000 APP_RATE_LIMIT__POLICIES__API__WINDOW=1h \
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT" exec "$OLDPWD/target/release/app" >/dev/null 2>&1) &
pids+=($!)
wait_for "$BARE_PORT"
wait_for "$APP_PORT"
mkdir -p "$workdir/unlimited-app"
(cd "$workdir/unlimited-app" && PORT=$UNLIMITED_PORT APP_SERVER__HOST=127.0.0.1 APP_LOG__LEVEL=warn \
  APP_RATE_LIMIT__ENABLED=false APP_REDIS__KEY_PREFIX=unlimited: \
  REDIS_URL="redis://127.0.0.1:$REDIS_PORT" exec "$OLDPWD/target/release/app" >/dev/null 2>&1) &
pids+=($!)
wait_for "$GUARDED_PORT"
wait_for "$UNLIMITED_PORT"

# login BASE -> an access token for a fresh benchmark account
login() {
  curl -fsS -H 'content-type: application/json' -o /dev/null "$1/auth/register" \
    -d '{"email":"bench@example.com","password":"benchmark password","name":"Bench"}'
  curl -fsS -H 'content-type: application/json' "$1/auth/login" \
    -d '{"email":"bench@example.com","password":"benchmark password"}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["accessToken"])'
}
guarded_base="http://127.0.0.1:$GUARDED_PORT/api/v1"
unlimited_base="http://127.0.0.1:$UNLIMITED_PORT/api/v1"
token=$(login "$guarded_base")
unlimited_token=$(login "$unlimited_base")
# "round trips commands": EVALSHA calls (each one round trip carrying one Lua script) and every
# command executed, including those inside the scripts.
redis_counts() {
  redis-cli -p "$REDIS_PORT" INFO all | tr -d '\r' | awk -F'[:=,]' '
    /^cmdstat_evalsha:/ { trips = $3 } /^total_commands_processed:/ { total = $2 }
    END { print trips + 0, total + 0 }'
}

# measure URL [wrk args] -> prints "rps p50 p99 requests" (latencies in ms) for one run
measure() {
  local url=$1; shift
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$@" "$url" | awk '
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

bare_url="http://127.0.0.1:$BARE_PORT/health/live"
app_url="http://127.0.0.1:$APP_PORT/health/live"
guarded_url="$guarded_base/users/me"
auth=(-H "Authorization: Bearer $token")
unlimited_url="$unlimited_base/users/me"
unlimited_auth=(-H "Authorization: Bearer $unlimited_token")
status=$(curl -s -o /dev/null -w '%{http_code}' "${auth[@]}" "$guarded_url")
[ "$status" = 200 ] || { echo "error: the guarded route answered $status" >&2; exit 1; }
echo "==> warming up"
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "$bare_url" >/dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "$app_url" >/dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "${auth[@]}" "$guarded_url" >/dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "${unlimited_auth[@]}" "$unlimited_url" >/dev/null

echo "==> measuring: $ROUNDS alternating rounds of $DURATION, $CONNECTIONS connections, $THREADS wrk threads, $(nproc) cores"
for round in $(seq 1 "$ROUNDS"); do
  measure "$bare_url" | tee -a "$workdir/bare" | sed "s/^/    round $round bare: /"
  measure "$app_url" | tee -a "$workdir/app" | sed "s/^/    round $round app:  /"
  read -r trips_before total_before < <(redis_counts)
  measure "$guarded_url" "${auth[@]}" | tee -a "$workdir/guarded" | sed "s/^/    round $round guarded: /"
  read -r trips_after total_after < <(redis_counts)
  requests=$(tail -1 "$workdir/guarded" | awk '{ print $4 }')
  # The INFO call itself counts as one command.
  awk -v t=$((trips_after - trips_before)) -v c=$((total_after - total_before - 1)) -v n="$requests" \
    'BEGIN { printf "%.2f %.2f\n", t / n, c / n }' >>"$workdir/commands"
  measure "$unlimited_url" "${unlimited_auth[@]}" | tee -a "$workdir/unlimited" | sed "s/^/    round $round guarded, limiter off: /"
done
read -r bare_rps bare_p50 bare_p99 _ < <(median "$workdir/bare")
read -r app_rps app_p50 app_p99 _ < <(median "$workdir/app")
read -r guarded_rps guarded_p50 guarded_p99 _ < <(median "$workdir/guarded")
read -r unlimited_rps unlimited_p50 unlimited_p99 _ < <(median "$workdir/unlimited")
read -r trips commands < <(median "$workdir/commands")

printf '\n%-34s %12s %10s %10s %8s\n' "scenario (median round)" "req/s" "p50 ms" "p99 ms" "ratio"
printf '%-34s %12s %10s %10s %8s\n' "bare poem GET /health/live" "$bare_rps" "$bare_p50" "$bare_p99" "1.00"
printf '%-34s %12s %10s %10s %8s\n' "app GET /health/live" "$app_rps" "$app_p50" "$app_p99" \
  "$(awk -v a="$app_rps" -v b="$bare_rps" 'BEGIN { printf "%.2f", a / b }')"
printf '%-34s %12s %10s %10s %8s\n' "app GET /api/v1/users/me (bearer)" "$guarded_rps" "$guarded_p50" "$guarded_p99" \
  "$(awk -v a="$guarded_rps" -v b="$bare_rps" 'BEGIN { printf "%.2f", a / b }')"
printf '%-34s %12s %10s %10s %8s\n' "same, rate limiting off" "$unlimited_rps" "$unlimited_p50" "$unlimited_p99" \
  "$(awk -v a="$unlimited_rps" -v b="$bare_rps" 'BEGIN { printf "%.2f", a / b }')"
echo
echo "Redis scripts (EVALSHA) per guarded request (median round): $trips (the session check and the default policy, sent concurrently)"
echo "Redis commands executed per guarded request, inside the scripts included: $commands"
awk -v on="$guarded_rps" -v off="$unlimited_rps" -v p_on="$guarded_p50" -v p_off="$unlimited_p50" \
  'BEGIN { printf "limiter cost: %.1f%% of throughput (target <= 10%%), p50 %+.3f ms\n", (1 - on / off) * 100, p_on - p_off }' 
echo
awk -v a="$app_rps" -v b="$bare_rps" 'BEGIN { r = a / b; printf "app/bare = %.2f (target >= 0.80): %s\n", r, (r >= 0.8 ? "met" : "NOT met") }'
