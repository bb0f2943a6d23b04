#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test against real components.
#
# Tests start their own redis-server processes on free loopback ports, so redis-server must be
# installed; the SPA's checks (tests/client) need Node.js 20 with npm and Debian's chromium. This
# script installs what is missing with apt-get, and the pinned node packages with `npm ci`.
# Repository and app tests
# also run on PostgreSQL when TEST_DATABASE_URL points at a server the tests may create
# databases on (e.g. postgres://postgres@127.0.0.1:5432/test); without it they run on SQLite only.
set -euo pipefail
cd "$(dirname "$0")/.."

# What the tests need beyond Rust: a real redis-server, Node.js and npm (the SPA's client check),
# and Debian's chromium (Swagger UI in a real browser).
missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ -x "${CHROMIUM:-/usr/bin/chromium}" ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "==> installing with apt-get: ${missing[*]}"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "error: these are required and apt-get is not available: ${missing[*]}" >&2
    echo "Install Redis 6.2 or newer (macOS: 'brew install redis'), Node.js 20 with npm, and Chromium" >&2
    echo "(set CHROMIUM to its path if it is not /usr/bin/chromium), then run this script again." >&2
    exit 1
  fi
fi
echo "==> $(redis-server --version | cut -d' ' -f1-3)"
if [ -n "${TEST_DATABASE_URL:-}" ]; then
  echo "==> PostgreSQL tests enabled (TEST_DATABASE_URL is set)"
else
  echo "==> TEST_DATABASE_URL is not set: database tests run on SQLite only"
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy --all-targets -- -D warnings"
cargo clippy --workspace --all-targets --locked -- -D warnings
echo "==> node $(node --version), $("${CHROMIUM:-/usr/bin/chromium}" --version 2>/dev/null | head -1)"
echo "==> npm ci (tests/client: the SPA's generated client and Swagger UI check)"
(cd tests/client && npm ci --no-audit --no-fund --silent)
echo "==> cargo test"
cargo test --workspace --locked
