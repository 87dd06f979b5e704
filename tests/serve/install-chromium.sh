#!/usr/bin/env bash
# Installs Debian's chromium and chromium-driver for the browser test of edgechat serve
# (tests/serve/test_browser.py), unless both are there already. Quiet and idempotent.
# As root it runs apt-get; otherwise sudo, if sudo needs no password; otherwise it says what to run
# and leaves it (the browser test then skips, saying why). A failed apt-get is an error: CI, which
# runs as root, must have the browser.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: no apt-get here; install Chromium and chromedriver to run the browser test" >&2
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "install-chromium: not root; for the browser test run: sudo apt-get install chromium chromium-driver" >&2
  exit 0
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "install-chromium: installing chromium and chromium-driver with apt-get (once)" >&2
if ! { "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
       "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; } \
     >"$log" 2>&1; then
  echo "install-chromium: apt-get failed:" >&2
  tail -n 20 "$log" >&2
  exit 1
fi
