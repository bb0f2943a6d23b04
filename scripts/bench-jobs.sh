#!/usr/bin/env bash
# The job queue's benchmark: N no-op jobs (default 10,000) on a private redis-server on loopback,
# release build. Reports the enqueue rate, the processing rate with 1 and with 4 workers, and the
# end-to-end latency (submit to completed, p50 and p99) with 4 workers at about half their rate.
#
#   ./scripts/bench-jobs.sh
#   JOBS=20000 ./scripts/bench-jobs.sh
#   LOAD=0.25 ./scripts/bench-jobs.sh      # latency at a quarter of the 4-worker rate
set -euo pipefail
cd "$(dirname "$0")/.."

REDIS_PORT="${REDIS_PORT:-3919}"
echo "==> building the release benchmark"
cargo build --release --locked --example jobs_bench 2>&1 | tail -1

# No persistence: the benchmark measures the queue, not the disk (production runs AOF everysec).
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null 2>&1 &
redis_pid=$!
trap 'kill $redis_pid 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

echo "==> $(nproc) cores; Redis $(redis-server --version | awk '{print $3}')"
REDIS_URL="redis://127.0.0.1:$REDIS_PORT" JOBS="${JOBS:-10000}" LOAD="${LOAD:-0.5}" ./target/release/examples/jobs_bench
