#!/usr/bin/env bash
# Runs every test of the project. Tests need a Postgres server: DATABASE_URL if set, else the one
# on 127.0.0.1:5432, else a throwaway server started here (installing Debian's postgresql
# package first when it is missing and this runs as root) and removed on exit.
# Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v cargo >/dev/null || { echo "test.sh: cargo is required (https://rustup.rs)" >&2; exit 1; }

# shellcheck source=scripts/lib/postgres.sh
. scripts/lib/postgres.sh

# The mail tests talk to a real SMTP server: aiosmtpd, run by Python.
ensure_smtp_sink() {
  local py
  for py in "${GUARDIANS_TEST_PYTHON:-}" python3 /usr/bin/python3; do
    if [ -n "$py" ] && command -v "$py" >/dev/null && "$py" -c 'import aiosmtpd' 2>/dev/null; then
      export GUARDIANS_TEST_PYTHON="$py"
      return 0
    fi
  done
  echo "test.sh: installing aiosmtpd for the mail tests" >&2
  if python3 -m pip install --quiet aiosmtpd >/dev/null 2>&1 && python3 -c 'import aiosmtpd' 2>/dev/null; then
    export GUARDIANS_TEST_PYTHON=python3
  elif [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-aiosmtpd >/dev/null
    export GUARDIANS_TEST_PYTHON=/usr/bin/python3
  else
    echo "test.sh: the mail tests need Python's aiosmtpd (pip install aiosmtpd)" >&2
    exit 1
  fi
}
ensure_smtp_sink

# The unsubscribe page's end-to-end test drives a real headless browser: Debian's Chromium
# through its ChromeDriver.
ensure_browser() {
  if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    return 0
  fi
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    echo "test.sh: installing Debian's chromium and chromium-driver for the browser test" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "test.sh: the browser test needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)" >&2
    exit 1
  fi
}
ensure_browser

ensure_postgres
# The read-replica test needs a real streaming standby; it fails rather than skip when this
# script started one.
start_standby_pair
export GUARDIANS_REQUIRE_STANDBY=1

cargo test --locked "$@"
