#!/usr/bin/env bash
# The browser test (packages/client-sdk/test/browser) drives Debian's Chromium through
# playwright-core, never a downloaded browser. Installs it from Debian's packages when missing,
# so that `npm test` works on a fresh machine.
set -euo pipefail
[ -x /usr/bin/chromium ] && exit 0
echo "installing Debian's chromium for the browser test (apt-get)..." >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
