#!/usr/bin/env bash
# Installs what the status page's browser test (TestStatusPage_browser in
# appliance/statuspage_browser_test.go) needs: Debian's chromium at
# /usr/bin/chromium, driven headless over the DevTools protocol, and fonts
# so its screenshots show text. Runs apt-get update at most once, and only
# when something has to be installed.
set -euo pipefail

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
# Chromium renders with fontconfig; without a font the screenshots are boxes.
fc-list 2>/dev/null | grep -q . || missing+=(fonts-dejavu-core)

if [ ${#missing[@]} -eq 0 ]; then
	echo "ui: chromium present ($(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium))"
	exit 0
fi

. "$(dirname "$0")/../lib/apt.sh"
apt_install ui "${missing[@]}"
