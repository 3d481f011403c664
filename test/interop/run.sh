#!/usr/bin/env bash
# Interop tier: starts a one-node reeve from bin/reeve and drives its Kafka
# listener with real clients, kcat (librdkafka) and kafka-python, each from
# Debian's packages (test/interop/deps.sh installs them; `make interop` runs
# both). Prints PASS/FAIL/SKIP per case and closes with "N passed, N failed".
#
#   test/interop/run.sh               # every case
#   test/interop/run.sh kcat_gzip ... # only the named cases
#
# REEVE=path picks another binary; KEEP=1 keeps the scratch dir (data, config,
# reeve.log, each case's client output) and prints where it is.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/test/interop
REEVE=${REEVE:-$ROOT/bin/reeve}
# Debian's python3-kafka imports only under the system interpreter.
PY=/usr/bin/python3

[ -x "$REEVE" ] || { echo "interop: $REEVE missing; run make build" >&2; exit 1; }
command -v kcat >/dev/null || { echo "interop: kcat missing; run test/interop/deps.sh" >&2; exit 1; }
"$PY" -I -c 'import kafka' 2>/dev/null || { echo "interop: $PY cannot import kafka; run test/interop/deps.sh" >&2; exit 1; }

WORK=$(mktemp -d "${TMPDIR:-/tmp}/reeve-interop.XXXXXX")
REEVE_PID=

stop_reeve() {
	[ -n "$REEVE_PID" ] || return 0
	if kill -0 "$REEVE_PID" 2>/dev/null; then
		kill -TERM "$REEVE_PID" 2>/dev/null || true
		for _ in $(seq 50); do
			kill -0 "$REEVE_PID" 2>/dev/null || break
			sleep 0.1
		done
		if kill -0 "$REEVE_PID" 2>/dev/null; then
			echo "interop: reeve (pid $REEVE_PID) still running 5s after SIGTERM; sending SIGKILL" >&2
			kill -KILL "$REEVE_PID" 2>/dev/null || true
		fi
	fi
	wait "$REEVE_PID" 2>/dev/null || true
	REEVE_PID=
}

cleanup() {
	local rc=$?
	trap - EXIT
	stop_reeve
	if [ "${KEEP:-0}" = 1 ]; then
		echo "interop: scratch dir kept at $WORK"
	else
		rm -rf "$WORK"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Three distinct free loopback ports: all bound at once, then released.
read -r KPORT RPORT APORT < <("$PY" -I -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))
')
[ -n "${APORT:-}" ] || { echo "interop: could not pick free ports" >&2; exit 1; }
KAFKA=127.0.0.1:$KPORT
ADMIN=127.0.0.1:$APORT
LOG=$WORK/reeve.log

cat >"$WORK/reeve.toml" <<EOF
[node]
id = 1
data_dir = "$WORK/data"

[raft]
address = "127.0.0.1:$RPORT"
rtt = "10ms"

[kafka]
listen = "$KAFKA"
default_partitions = 3

[admin]
listen = "$ADMIN"

[log]
level = "info"
format = "logfmt"
EOF

log_tail() {
	echo "--- last 60 lines of $LOG ---"
	tail -n 60 "$LOG" 2>/dev/null || true
	echo "---"
}

ready() {
	if command -v curl >/dev/null; then
		curl -sf -o /dev/null --max-time 2 "http://$ADMIN/readyz"
	else
		"$PY" -I -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
			"http://$ADMIN/readyz" 2>/dev/null
	fi
}

echo "interop: $("$REEVE" version 2>&1 | head -n 1)"
echo "interop: $(kcat -V 2>&1 | grep -m1 '^Version')"
echo "interop: kafka-python $("$PY" -I -c 'import kafka; print(kafka.__version__)')"
echo "interop: reeve kafka=$KAFKA admin=$ADMIN raft=127.0.0.1:$RPORT scratch=$WORK"

"$REEVE" serve -c "$WORK/reeve.toml" >"$LOG" 2>&1 &
REEVE_PID=$!

deadline=$((SECONDS + 30))
until ready; do
	if ! kill -0 "$REEVE_PID" 2>/dev/null; then
		echo "interop: reeve exited before it was ready" >&2
		log_tail >&2
		exit 1
	fi
	if [ "$SECONDS" -ge "$deadline" ]; then
		echo "interop: reeve not ready after 30s (GET http://$ADMIN/readyz)" >&2
		log_tail >&2
		exit 1
	fi
	sleep 0.1
done
echo "interop: reeve ready (pid $REEVE_PID)"

# ---- helpers for the cases -------------------------------------------------
# A case runs in a subshell with errexit; it stops at the first failing
# command (the ERR trap records which) or at `fail REASON`, and `skip REASON`
# marks it skipped. Its output goes to $WORK/out.NAME, shown on failure.

fail() {
	echo "$*" >"$WORK/reason"
	exit 1
}

skip() {
	echo "$*" >"$WORK/reason"
	exit 77
}

# kcat with short timeouts, so a broker that does not answer fails the case
# instead of hanging; `timeout` is the backstop.
kc() {
	timeout 30 kcat -b "$KAFKA" \
		-X socket.timeout.ms=10000 \
		-X topic.metadata.refresh.interval.ms=1000 \
		"$@"
}

create_topic() {
	timeout 15 "$REEVE" topic create "$1" -p "$2" --admin "$ADMIN" >/dev/null
	CREATED+=("$1:$2")
	echo "${CREATED[*]}" >"$WORK/created"
}

# compare_sorted WANT GOT: exact comparison of two files after sorting.
compare_sorted() {
	sort "$1" >"$1.sorted"
	sort "$2" >"$2.sorted"
	if ! diff -u "$1.sorted" "$2.sorted" >"$WORK/diff"; then
		head -n 40 "$WORK/diff"
		fail "consumed records differ from produced: $(wc -l <"$2") lines, want $(wc -l <"$1") (diff above)"
	fi
}

# kcat_consume TOPIC FORMAT DIR: every record of TOPIC from the beginning
# into DIR/got, exiting at the end of every partition (-e). kcat's own errors
# (e.g. PROTOERR lines from librdkafka) are kept in DIR/consume.err.
kcat_consume() {
	local rc=0
	timeout 20 kcat -b "$KAFKA" -X socket.timeout.ms=10000 \
		-C -t "$1" -o beginning -e -f "$2" >"$3/got" 2>"$3/consume.err" || rc=$?
	[ "$rc" -eq 0 ] && return 0
	grep -E '^%[0-4]\||ERROR' "$3/consume.err" | sort -t'|' -k3,5 -u | head -n 10 || true
	if [ "$rc" -eq 124 ]; then
		fail "kcat -C -e never reached the end of every partition in 20s ($(wc -l <"$3/got") of $(wc -l <"$3/want") records read)"
	fi
	fail "kcat -C -e exited $rc ($(wc -l <"$3/got") of $(wc -l <"$3/want") records read)"
}

# kcat_roundtrip TOPIC CODEC: 1000 keyed records with two headers through
# kcat -P (-z CODEC unless none), read back with kcat -C from the beginning.
kcat_roundtrip() {
	local t=$1 codec=$2 d=$WORK/$1 z=()
	mkdir -p "$d"
	[ "$codec" = none ] || z=(-z "$codec")
	create_topic "$t" 3
	# Values repeat enough to compress, and vary so batches differ.
	awk '{ printf "key%04d:value-%04d-%s\n", $1, $1, substr("abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz", 1, $1 % 60) }' \
		< <(seq 1 1000) >"$d/in"
	# With -d msg librdkafka logs each produced batch with its codec, and
	# says so when it falls back to sending it uncompressed.
	[ "$codec" = none ] || z+=(-d msg)
	kc -P -t "$t" -K: -H h1=v1 -H h2=v2 "${z[@]}" \
		-X message.timeout.ms=15000 -X linger.ms=5 <"$d/in" 2>"$d/produce.err" || {
		rc=$?
		grep -vE '^%7\|' "$d/produce.err" | head -n 20 || true
		fail "kcat -P (compression $codec) exited $rc"
	}
	if grep -E '^%[0-3]\||ERROR' "$d/produce.err"; then
		fail "kcat -P (compression $codec) reported errors (above)"
	fi
	if [ "$codec" != none ]; then
		if grep -m1 -E "not compressing batch" "$d/produce.err"; then
			fail "librdkafka sent $codec batches uncompressed: it found no $codec support in reeve's ApiVersions (line above)"
		fi
		grep -qE "Produce MessageSet with .*, $codec\)\$" "$d/produce.err" ||
			fail "kcat -d msg shows no Produce MessageSet compressed with $codec"
		grep -m1 -E "Produce MessageSet with .*, $codec\)\$" "$d/produce.err" | sed 's/^.*: Produce/Produce/' || true
	fi
	sed -e 's/:/|/' -e 's/$/|h1=v1,h2=v2/' "$d/in" >"$d/want"
	kcat_consume "$t" '%k|%s|%h\n' "$d"
	compare_sorted "$d/want" "$d/got"
	echo "$(wc -l <"$d/got") records round-tripped"
}

# KCAT_FEATURES is librdkafka's builtin.features, e.g. gzip,snappy,...,zstd.
KCAT_FEATURES=$(kcat -X list 2>/dev/null | awk -F'|' '$1 ~ /^builtin.features/ { gsub(/ /, "", $4); print $4 }')

# ---- the cases -------------------------------------------------------------

test_kcat_plain() { kcat_roundtrip interop-kcat-plain none; }

kcat_codec() {
	case ",$KCAT_FEATURES," in
	*",$1,"*) ;;
	*) skip "this librdkafka has no $1 (builtin.features=$KCAT_FEATURES)" ;;
	esac
	kcat_roundtrip "interop-kcat-$1" "$1"
}
test_kcat_gzip() { kcat_codec gzip; }
test_kcat_snappy() { kcat_codec snappy; }
test_kcat_lz4() { kcat_codec lz4; }
test_kcat_zstd() { kcat_codec zstd; }

# kcat -L lists this broker and every topic the earlier cases created, with
# its partition count and leader 1 for each partition.
test_kcat_metadata() {
	local d=$WORK/metadata
	mkdir -p "$d"
	kc -L >"$d/out" 2>"$d/err" || {
		rc=$?
		cat "$d/out" "$d/err"
		fail "kcat -L exited $rc"
	}
	cat "$d/out"
	grep -qE "^ +1 brokers:" "$d/out" || fail "kcat -L does not list exactly 1 broker"
	grep -qE "^ +broker 1 at 127\.0\.0\.1:$KPORT( \(controller\))?$" "$d/out" ||
		fail "kcat -L does not list 'broker 1 at $KAFKA'"
	local created=()
	read -r -a created <"$WORK/created" || true
	[ ${#created[@]} -gt 0 ] || fail "no topics were created by earlier cases to look for"
	local tp t p
	for tp in "${created[@]}"; do
		t=${tp%:*} p=${tp##*:}
		grep -qF "  topic \"$t\" with $p partitions:" "$d/out" ||
			fail "kcat -L does not list topic \"$t\" with $p partitions"
	done
	# Every partition line names leader 1 and no error.
	if grep -E '^ +partition ' "$d/out" | grep -vE 'leader 1, replicas: 1, isrs: 1$'; then
		fail "kcat -L lists partitions without leader 1 / replicas 1 / isrs 1 (above)"
	fi
	if grep -E 'Broker:|err' "$d/out"; then
		fail "kcat -L shows errors (above)"
	fi
	echo "${#created[@]} topics listed"
}

python_roundtrip() {
	local t=$1 codec=$2 count=$3
	create_topic "$t" 3
	timeout 60 "$PY" -I "$HERE/kafka_python.py" roundtrip "$KAFKA" "$t" "$count" "$codec" ||
		fail "kafka-python $codec round trip failed (exit $?; client output above)"
}

test_python_plain() { python_roundtrip interop-python-plain none 500; }
test_python_gzip() { python_roundtrip interop-python-gzip gzip 500; }

python_codec() {
	"$PY" -I -c "import $2" 2>/dev/null || skip "$PY cannot import $2 (Debian package python3-$3)"
	python_roundtrip "interop-python-$1" "$1" 500
}
test_python_lz4() { python_codec lz4 lz4.frame lz4; }
test_python_snappy() { python_codec snappy snappy snappy; }
test_python_zstd() { python_codec zstd zstandard zstandard; }

test_python_admin() {
	timeout 60 "$PY" -I "$HERE/kafka_python.py" admin "$KAFKA" interop-python-admin ||
		fail "kafka-python admin case failed (exit $?; client output above)"
}

# Producing to a topic nobody created creates it with kafka.default_partitions
# (3 here); kcat -L then lists it and kcat -C reads the records back.
test_kcat_autocreate() {
	local t=interop-kcat-autocreate d=$WORK/autocreate
	mkdir -p "$d"
	if timeout 15 "$REEVE" topic describe "$t" --admin "$ADMIN" >/dev/null 2>&1; then
		fail "topic $t exists before the case produced to it"
	fi
	seq 1 10 | sed 's/.*/auto-&/' >"$d/want"
	kc -P -t "$t" -X message.timeout.ms=15000 <"$d/want" 2>"$d/produce.err" || {
		rc=$?
		cat "$d/produce.err"
		fail "kcat -P to unknown topic exited $rc"
	}
	if grep -E '^%[0-3]\||ERROR' "$d/produce.err"; then
		fail "kcat -P to unknown topic reported errors (above)"
	fi
	kc -L -t "$t" >"$d/meta" 2>&1 || {
		rc=$?
		cat "$d/meta"
		fail "kcat -L -t $t exited $rc"
	}
	cat "$d/meta"
	grep -qF "  topic \"$t\" with 3 partitions:" "$d/meta" ||
		fail "auto-created topic is not listed with 3 partitions (kafka.default_partitions)"
	kcat_consume "$t" '%s\n' "$d"
	compare_sorted "$d/want" "$d/got"
	echo "10 records round-tripped through the auto-created topic"
}

ALL=(kcat_plain kcat_gzip kcat_snappy kcat_lz4 kcat_zstd kcat_metadata
	python_plain python_gzip python_lz4 python_snappy python_zstd python_admin
	kcat_autocreate)
CASES=("$@")
[ ${#CASES[@]} -gt 0 ] || CASES=("${ALL[@]}")

CREATED=()
: >"$WORK/created"
passed=0 failed=0 skipped=0

run_case() {
	local name=$1 out=$WORK/out.$1 rc start=$SECONDS
	declare -F "test_$name" >/dev/null || { echo "FAIL $name: no such case"; failed=$((failed + 1)); return; }
	rm -f "$WORK/reason"
	set +e
	(
		set -eE
		trap 'rc=$?; [ -s "$WORK/reason" ] || { if [ $rc -eq 124 ]; then echo "timed out: $BASH_COMMAND"; else echo "exit $rc from: $BASH_COMMAND"; fi >"$WORK/reason"; }' ERR
		"test_$name"
	) >"$out" 2>&1
	rc=$?
	set -e
	# created topics are recorded by the subshell; read them back.
	read -r -a CREATED <"$WORK/created" || true
	local reason
	reason=$(cat "$WORK/reason" 2>/dev/null || true)
	if [ $rc -eq 0 ] && ! kill -0 "$REEVE_PID" 2>/dev/null; then
		rc=1 reason="reeve exited during the case"
	fi
	case $rc in
	0)
		echo "PASS $name ($((SECONDS - start))s)"
		passed=$((passed + 1))
		;;
	77)
		echo "SKIP $name: $reason"
		skipped=$((skipped + 1))
		;;
	*)
		echo "FAIL $name: ${reason:-exit $rc}"
		sed -e 's/^/    /' "$out" | tail -n 40
		failed=$((failed + 1))
		;;
	esac
}

for c in "${CASES[@]}"; do
	run_case "$c"
done

if [ "$failed" -gt 0 ]; then
	log_tail
fi
if ! kill -0 "$REEVE_PID" 2>/dev/null; then
	echo "interop: reeve is no longer running"
	[ "$failed" -gt 0 ] || log_tail
	failed=$((failed + 1))
fi
if [ "$skipped" -gt 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" -eq 0 ]
