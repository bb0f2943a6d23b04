# Helpers shared by the benchmark scripts (sourced, not run): a work directory and the processes
# started into `pids`, both cleaned up on exit; waiting for a server; a fresh account's token.

workdir=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$workdir"
}
trap cleanup EXIT

# wait_for PORT: until the app on PORT answers `GET /health/live` (up to a minute: an app
# under valgrind starts slowly).
wait_for() {
  for _ in $(seq 1 600); do
    curl -fsS "http://127.0.0.1:$1/health/live" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "error: nothing answers on port $1" >&2; exit 1
}

# login BASE -> an access token for a fresh benchmark account (with two library items); BASE is
# the app's `http://127.0.0.1:<port>/api/v1`.
login() {
  local email="bench-$RANDOM$RANDOM@example.com"
  curl -fsS -H 'content-type: application/json' -o /dev/null "$1/auth/register" \
    -d "{\"email\":\"$email\",\"password\":\"benchmark password\",\"name\":\"Bench\"}"
  local token
  token=$(curl -fsS -H 'content-type: application/json' "$1/auth/login" \
    -d "{\"email\":\"$email\",\"password\":\"benchmark password\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["accessToken"])')
  for title in "Blue in Green" "So What"; do
    curl -fsS -o /dev/null -H 'content-type: application/json' -H "Authorization: Bearer $token" \
      "$1/library" -d "{\"type\":\"song\",\"title\":\"$title\"}"
  done
  echo "$token"
}
