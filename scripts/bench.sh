#!/usr/bin/env bash
# Throughput and latency of the app next to a bare poem hello-world, measured in the same run.
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
(cd "$workdir" && PORT=$APP_PORT APP_SERVER__HOST=127.0.0.1 APP_LOG__LEVEL=warn "$OLDPWD/target/release/app" >/dev/null 2>&1) &
pids+=($!)
wait_for "$BARE_PORT"
wait_for "$APP_PORT"

# measure URL -> prints "rps p50 p99" (latencies in ms) for one run
measure() {
  wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "$1" | awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    /Requests\/sec/ { rps = $2 }
    /^ +50%/ { p50 = ms($2) }
    /^ +99%/ { p99 = ms($2) }
    END { printf "%.0f %.3f %.3f\n", rps, p50, p99 }'
}

# median FILE -> the line whose first field is the median
median() { sort -n "$1" | awk '{ a[NR] = $0 } END { print a[int((NR + 1) / 2)] }'; }

bare_url="http://127.0.0.1:$BARE_PORT/health/live"
app_url="http://127.0.0.1:$APP_PORT/health/live"
echo "==> warming up"
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "$bare_url" >/dev/null
wrk -t"$THREADS" -c"$CONNECTIONS" -d2s "$app_url" >/dev/null

echo "==> measuring: $ROUNDS alternating rounds of $DURATION, $CONNECTIONS connections, $THREADS wrk threads, $(nproc) cores"
for round in $(seq 1 "$ROUNDS"); do
  measure "$bare_url" | tee -a "$workdir/bare" | sed "s/^/    round $round bare: /"
  measure "$app_url" | tee -a "$workdir/app" | sed "s/^/    round $round app:  /"
done
read -r bare_rps bare_p50 bare_p99 < <(median "$workdir/bare")
read -r app_rps app_p50 app_p99 < <(median "$workdir/app")

printf '\n%-34s %12s %10s %10s %8s\n' "scenario (median round)" "req/s" "p50 ms" "p99 ms" "ratio"
printf '%-34s %12s %10s %10s %8s\n' "bare poem GET /health/live" "$bare_rps" "$bare_p50" "$bare_p99" "1.00"
printf '%-34s %12s %10s %10s %8s\n' "app GET /health/live" "$app_rps" "$app_p50" "$app_p99" \
  "$(awk -v a="$app_rps" -v b="$bare_rps" 'BEGIN { printf "%.2f", a / b }')"
echo
awk -v a="$app_rps" -v b="$bare_rps" 'BEGIN { r = a / b; printf "app/bare = %.2f (target >= 0.80): %s\n", r, (r >= 0.8 ? "met" : "NOT met") }'
