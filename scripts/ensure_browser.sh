#!/usr/bin/env bash
# Install Debian's Chromium for tests/test_browser.py when it is missing (needs root and apt-get).
# Never fails: without Chromium the browser test is skipped and says why.
[ -x /usr/bin/chromium ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "Installing Debian's chromium for the browser test..."
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/tmp/kd-apt-chromium.log 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/tmp/kd-apt-chromium.log 2>&1; } \
    || echo "Could not install chromium (see /tmp/kd-apt-chromium.log): the browser test will be skipped."
else
  echo "No /usr/bin/chromium and no root apt-get: the browser test will be skipped (sudo apt-get install chromium)."
fi
exit 0
