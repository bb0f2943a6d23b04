#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test against real components.
#
# Tests start their own redis-server processes on free loopback ports, so redis-server must be
# installed (this script installs it with apt-get when it is missing). Repository and app tests
# also run on PostgreSQL when TEST_DATABASE_URL points at a server the tests may create
# databases on (e.g. postgres://postgres@127.0.0.1:5432/test); without it they run on SQLite only.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v redis-server >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "==> redis-server is missing: installing it with apt-get"
    sudo=""
    if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq redis-server >/dev/null
  else
    echo "error: redis-server is required and apt-get is not available." >&2
    echo "Install Redis 6.2 or newer (macOS: 'brew install redis'; Fedora: 'dnf install redis';" >&2
    echo "Alpine: 'apk add redis'), make sure 'redis-server' is on PATH, and run this script again." >&2
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
echo "==> cargo test"
cargo test --workspace --locked
