#!/usr/bin/env bash
# Installs what the policy module tests need beyond Go: wabt's wat2wasm,
# with which TestHostileModules_assembled (wasm/hostile_test.go) checks
# that every committed .wasm under wasm/testdata is what its .wat makes.
# Runs apt-get update only when something has to be installed.
set -euo pipefail

if command -v wat2wasm >/dev/null 2>&1; then
	echo "wasm: wat2wasm present ($(wat2wasm --version))"
	exit 0
fi

. "$(dirname "$0")/../lib/apt.sh"
apt_install wasm wabt
