#!/usr/bin/env bash
# Memory of a big export: a library of ITEMS items (default 100,000) exported as CSV and as JSON by
# a release build on a private redis-server and an SQLite file, on loopback. Reports, per format,
# the document's size, the app's RSS growth (peak during the export and the download over the
# RSS before) and Redis's memory growth (peak `used_memory` sampled during the export over the
# value before). The export is written page by page into the database and streamed to the
# client, so both growths should stay flat as ITEMS grows (the README's bound: RSS under 64 MiB,
# Redis under 1 MiB, at 100,000 items).
#
#   ./scripts/bench-export.sh
#   ITEMS=200000 ./scripts/bench-export.sh
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bench-common.sh

ITEMS="${ITEMS:-100000}"
PORT="${PORT:-3930}"
REDIS_PORT=$((PORT + 1))

echo "==> building the release app"
cargo build --release --locked --bin app 2>&1 | tail -1

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no --daemonize no >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 1 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

db="$workdir/app.db"
APP_SERVER__PORT="$PORT" APP_SERVER__HOST=127.0.0.1 REDIS_URL="redis://127.0.0.1:$REDIS_PORT" DATABASE_URL="sqlite://$db?mode=rwc" \
  APP_LIBRARY__MAX_ITEMS_PER_USER="$ITEMS" APP_RATE_LIMIT__ENABLED=false APP_JOBS__MAX_RESULT_BYTES=4294967296 APP_LOG__LEVEL=warn ./target/release/app >"$workdir/app.log" 2>&1 &
app_pid=$!
pids+=("$app_pid")
wait_for "$PORT"
base="http://127.0.0.1:$PORT/api/v1"
token=$(login "$base")
owner=$(curl -fsS -H "Authorization: Bearer $token" "$base/users/me" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')

echo "==> seeding $ITEMS library items straight into SQLite"
python3 - "$db" "$owner" "$ITEMS" <<'EOF'
import sqlite3, sys, time, uuid
db, owner, n = sys.argv[1], sys.argv[2], int(sys.argv[3]) - 2  # the account has 2 items already
conn = sqlite3.connect(db, timeout=30)
now = int(time.time() * 1000)
rows = ((str(uuid.uuid4()), owner, "song", f"Song {i} of a long benchmark library",
         f"Artist {i % 500}", f"Album {i % 2000}", 180 + i % 300, '["bench","=formula"]',
         f"song {i} of a long benchmark library\nartist {i % 500}", now, now) for i in range(n))
conn.executemany(
    "INSERT INTO library_items (id, owner_id, kind, title, artist, album, duration_seconds, tags, search, "
    "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
conn.execute("DELETE FROM library_usage WHERE owner_id = ?", (owner,))
conn.commit()
EOF

rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$app_pid/status"; }
redis_used() { redis-cli -p "$REDIS_PORT" info memory | awk -F: '/^used_memory:/ {print $2+0}'; }

echo "==> $(nproc) cores; $(awk -F: '/model name/ {print $2; exit}' /proc/cpuinfo | sed 's/^ *//')"
printf '%-6s %10s %12s %14s %16s %10s\n' format items document "rss growth" "redis growth" seconds
for format in csv json; do
  rss0=$(rss_kib); redis0=$(redis_used); rss_peak=$rss0; redis_peak=$redis0
  started=$(date +%s.%N)
  job=$(curl -fsS -H 'content-type: application/json' -H "Authorization: Bearer $token" "$base/jobs" \
    -d "{\"type\":\"library.export\",\"params\":{\"format\":\"$format\"}}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])')
  status=pending
  for _ in $(seq 1 6000); do
    r=$(rss_kib); ((r > rss_peak)) && rss_peak=$r
    m=$(redis_used); ((m > redis_peak)) && redis_peak=$m
    status=$(curl -fsS -H "Authorization: Bearer $token" "$base/jobs/$job" |
      python3 -c 'import json, sys; print(json.load(sys.stdin)["status"])')
    [[ $status == completed || $status == failed ]] && break
    sleep 0.1
  done
  [[ $status == completed ]] || { echo "error: the $format export ended $status" >&2; exit 1; }
  curl -fsS --limit-rate 20M -H "Authorization: Bearer $token" -o "$workdir/export.$format" \
    "$base/jobs/$job/result" &
  download=$!
  while kill -0 "$download" 2>/dev/null; do
    r=$(rss_kib); ((r > rss_peak)) && rss_peak=$r
    sleep 0.05
  done
  wait "$download"
  elapsed=$(echo "$(date +%s.%N) - $started" | bc)
  size=$(stat -c %s "$workdir/export.$format")
  if [[ $format == csv ]]; then
    rows=$(($(wc -l <"$workdir/export.$format") - 1))
  else
    rows=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))))' "$workdir/export.$format")
  fi
  [[ $rows == "$ITEMS" ]] || { echo "error: the $format export has $rows items, not $ITEMS" >&2; exit 1; }
  printf '%-6s %10s %10.1f MB %11.1f MiB %13.1f KiB %10.1f\n' "$format" "$rows" \
    "$(echo "$size / 1000000" | bc -l)" "$(echo "($rss_peak - $rss0) / 1024" | bc -l)" \
    "$(echo "($redis_peak - $redis0) / 1024" | bc -l)" "$elapsed"
done
