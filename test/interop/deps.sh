#!/usr/bin/env bash
# Installs the interop tier's clients from Debian's packages when missing:
# kcat (librdkafka), kafka-python and the Python codec modules it uses for
# lz4, snappy and zstd, curl for the readiness probe, and clang with lld's
# wasm-ld to build the C example policy (wasm/examples/c) for wasm32. Runs
# apt-get update at most once, and only when something has to be installed.
set -euo pipefail

# Debian's python3-kafka and codec modules import only under the system
# interpreter, whatever python3 comes first on PATH.
PY=/usr/bin/python3

missing=()
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v timeout >/dev/null 2>&1 || missing+=(coreutils)
command -v clang >/dev/null 2>&1 || missing+=(clang)
command -v wasm-ld >/dev/null 2>&1 || missing+=(lld)
have_module() { [ -x "$PY" ] && "$PY" -I -c "import $1" >/dev/null 2>&1; }
have_module kafka || missing+=(python3-kafka)
have_module lz4.frame || missing+=(python3-lz4)
have_module snappy || missing+=(python3-snappy)
have_module zstandard || missing+=(python3-zstandard)

if [ ${#missing[@]} -eq 0 ]; then
	echo "interop: clients present (kcat, python3-kafka, python3-lz4, python3-snappy, python3-zstandard, curl, clang, wasm-ld)"
	exit 0
fi

. "$(dirname "$0")/../lib/apt.sh"
apt_install interop "${missing[@]}"
