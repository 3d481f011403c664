#!/usr/bin/env bash
# Interop tier: starts a one-node reeve from bin/reeve and drives its Kafka
# listener with real clients, kcat (librdkafka) and kafka-python, each from
# Debian's packages (test/interop/deps.sh installs them; `make interop` runs
# both). The policy_c cases build the C example election policy
# (wasm/examples/c) with Debian's clang and check it with `reeve policy`.
# Prints PASS/FAIL/SKIP per case and closes with "N passed, N failed".
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
# The first rebalance of a new group does not wait for more members.
group_initial_rebalance_delay = "0s"

[admin]
listen = "$ADMIN"

[log]
level = "info"
format = "logfmt"

[events]
embedded_listen = "127.0.0.1:0"
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

# A client that connects the moment a fresh node's Kafka port opens, before
# the node has joined its (one-node) cluster, gets only answers it retries
# on, so kcat's acks=all produce succeeds once the node is ready: it used to
# fail within milliseconds with "Broker: Request timed out". A second reeve,
# on its own ports and scratch dir, stopped by the case's EXIT trap.
test_kcat_at_port_open() {
	local d=$WORK/cold kport rport aport
	mkdir -p "$d"
	read -r kport rport aport < <("$PY" -I -c '
import socket
ss = [socket.socket() for _ in range(3)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in ss))
')
	cat >"$d/reeve.toml" <<EOF_TOML
[node]
id = 1
data_dir = "$d/data"

[cluster]
name = "interop-cold"

[raft]
address = "127.0.0.1:$rport"

[kafka]
listen = "127.0.0.1:$kport"

[admin]
listen = "127.0.0.1:$aport"

[events]
enabled = false
EOF_TOML
	"$REEVE" serve -c "$d/reeve.toml" >"$d/reeve.log" 2>&1 &
	# The case runs in a subshell: its EXIT trap stops this node however
	# the case ends. COLD_PID is global so the trap still sees it then.
	COLD_PID=$!
	trap 'kill -TERM "$COLD_PID" 2>/dev/null; wait "$COLD_PID" 2>/dev/null || true' EXIT
	local opened=
	for _ in $(seq 2000); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$kport") 2>/dev/null; then
			opened=1
			break
		fi
		sleep 0.005
	done
	[ -n "$opened" ] || fail "the Kafka port of the second reeve never opened"
	local start=$SECONDS
	echo cold-start | timeout 30 kcat -b "127.0.0.1:$kport" -P -t cold -X acks=all -X message.timeout.ms=20000 2>"$d/produce.err" || {
		cat "$d/produce.err"
		tail -n 20 "$d/reeve.log"
		fail "kcat -P the moment the port opened failed (above)"
	}
	echo "acknowledged $((SECONDS - start))s after the port opened"
	timeout 20 kcat -b "127.0.0.1:$kport" -C -t cold -o beginning -e -f '%s\n' >"$d/got" 2>"$d/consume.err" ||
		fail "kcat -C of the record failed: $(tail -n 3 "$d/consume.err")"
	[ "$(cat "$d/got")" = cold-start ] || fail "read back $(cat "$d/got"), want cold-start"
}

# ---- consumer groups -------------------------------------------------------

# kcat_produce_keyed TOPIC FIRST COUNT FILE: records key<i>:value-<i> for i
# in FIRST..FIRST+COUNT-1, appended to FILE as "key|value" lines.
kcat_produce_keyed() {
	local t=$1 first=$2 count=$3 out=$4 in=$4.in.$2
	seq "$first" $((first + count - 1)) | awk '{ printf "key%04d:value-%04d\n", $1, $1 }' >"$in"
	kc -P -t "$t" -K: -X message.timeout.ms=15000 -X linger.ms=5 <"$in" 2>"$in.err" || {
		rc=$?
		grep -vE '^%7\|' "$in.err" | head -n 20 || true
		fail "kcat -P exited $rc"
	}
	if grep -E '^%[0-3]\||ERROR' "$in.err"; then
		fail "kcat -P reported errors (above)"
	fi
	sed 's/:/|/' "$in" >>"$out"
}

# kcat_member_start GROUP TOPIC OUT: a balanced-consumer member (kcat -G) in
# the background, writing "partition|key|value" lines to OUT unbuffered and
# its log (with librdkafka's cgrp debug) to OUT.err; its pid is MEMBER_PID.
# auto.offset.reset applies only where the group has no committed offset; -o
# would override committed offsets in -G mode, so it is not used.
kcat_member_start() {
	timeout 90 kcat -b "$KAFKA" -G "$1" \
		-X socket.timeout.ms=10000 \
		-X topic.metadata.refresh.interval.ms=1000 \
		-X auto.offset.reset=earliest \
		-X heartbeat.interval.ms=500 \
		-d cgrp \
		-u -f '%p|%k|%s\n' "$2" >"$3" 2>"$3.err" &
	MEMBER_PID=$!
}

# kcat_member_stop PID OUT: SIGTERM makes kcat close its consumer, which
# commits the offsets it has stored and leaves the group. Fails if kcat
# does not exit cleanly within 30s or logged an error.
kcat_member_stop() {
	local pid=$1 out=$2 rc=0 i
	kill -TERM "$pid" 2>/dev/null || true
	for i in $(seq 300); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" || true
		fail "kcat -G still running 30s after SIGTERM (log: $out.err)"
	fi
	wait "$pid" || rc=$?
	if grep -E '^% ERROR|^%[0-3]\|' "$out.err"; then
		fail "kcat -G logged errors (above; full log in $out.err)"
	fi
	case $rc in
	0 | 143) ;;
	*) fail "kcat -G exited $rc on SIGTERM (log: $out.err)" ;;
	esac
}

# wait_lines N SECONDS FILE...: until the files hold N lines together.
wait_lines() {
	local n=$1 secs=$2 deadline
	shift 2
	deadline=$((SECONDS + secs))
	while [ "$(cat "$@" | wc -l)" -lt "$n" ]; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.1
	done
}

# kcat_member_exactly GROUP TOPIC DIR NAME WANT: one kcat -G member reads
# until it has as many records as WANT holds, goes on 2s longer to catch any
# record beyond them, and stops; what it read (DIR/NAME) must be exactly WANT.
kcat_member_exactly() {
	local g=$1 t=$2 d=$3 name=$4 want=$5 out=$3/$4 n
	n=$(wc -l <"$want")
	kcat_member_start "$g" "$t" "$out"
	local pid=$MEMBER_PID
	if ! wait_lines "$n" 30 "$out"; then
		kcat_member_stop "$pid" "$out" || true
		grep -E 'rebalanced|assigned|ERROR|FAIL|fail|rror' "$out.err" | tail -n 20 || true
		fail "kcat -G $g ($name) read $(wc -l <"$out") of $n records in 30s"
	fi
	sleep 2
	kcat_member_stop "$pid" "$out"
	cut -d'|' -f2- "$out" >"$out.kv"
	compare_sorted "$want" "$out.kv"
	if [ "$(sort "$out.kv" | uniq -d | wc -l)" -ne 0 ]; then
		fail "kcat -G $g ($name) read some records twice"
	fi
	echo "$name: read exactly $n records, assigned partitions [$(echo $(rebalances "$out.err" | grep -m1 -F ': assigned: ' | partitions_of))]"
}

# rebalances FILE.err: kcat's "% Group G rebalanced (memberid M): assigned:
# T [p], ..." and "...: revoked: ..." lines, in order. kcat prints each in
# parts from its main thread while librdkafka's debug lines ("%7|<time>|...",
# each whole) come from other threads, so those are cut out first wherever
# they landed.
rebalances() {
	perl -0pe 's/%[0-7]\|\d+\.\d+\|[^\n]*\n//g' "$1" | grep -E '^% Group .* rebalanced' || true
}

# partitions_of: the partition numbers in one rebalance line, one a line.
partitions_of() {
	sed 's/.*: \(assigned\|revoked\): //' | tr ',' '\n' | sed -n 's/.*\[\([0-9]*\)\].*/\1/p' | sort -n
}

# last_assignment FILE.err: the partitions of the member's last rebalance if
# it assigned partitions (nothing if it revoked them).
last_assignment() {
	rebalances "$1" | tail -n 1 | grep -F ': assigned: ' | partitions_of || true
}

# kcat -G: a fresh group reads every record once from the earliest offset
# and commits on close; the same group then resumes at the committed
# offsets and reads only the records produced since. Then two members at
# once split the partitions of another topic between them.
test_kcat_group() {
	local t=interop-kcat-group g=interop-kcat-group-g d=$WORK/kcat-group
	mkdir -p "$d"
	create_topic "$t" 3
	kcat_produce_keyed "$t" 1 600 "$d/want1"
	kcat_member_exactly "$g" "$t" "$d" first "$d/want1"
	kcat_produce_keyed "$t" 601 100 "$d/want2"
	kcat_member_exactly "$g" "$t" "$d" second "$d/want2"

	# Two members of a new group on an empty topic: wait until each one's
	# last rebalance assigned it partitions, disjoint and all 3 together,
	# and only then produce, so the split does not depend on timing.
	local ts=interop-kcat-group-split gs=interop-kcat-group-split-g a=$d/member-a b=$d/member-b
	create_topic "$ts" 3
	kcat_member_start "$gs" "$ts" "$a"
	local pa=$MEMBER_PID
	kcat_member_start "$gs" "$ts" "$b"
	local pb=$MEMBER_PID
	local deadline=$((SECONDS + 45)) pa_parts pb_parts
	while :; do
		pa_parts=$(last_assignment "$a.err")
		pb_parts=$(last_assignment "$b.err")
		if [ -n "$pa_parts" ] && [ -n "$pb_parts" ] &&
			[ "$(printf '%s\n%s\n' "$pa_parts" "$pb_parts" | sort -n | tr '\n' ' ')" = "0 1 2 " ]; then
			break
		fi
		if [ "$SECONDS" -ge "$deadline" ]; then
			kcat_member_stop "$pa" "$a" || true
			kcat_member_stop "$pb" "$b" || true
			grep -hE '^% Group .* rebalanced' "$a.err" "$b.err" || true
			fail "two kcat -G members of $gs did not settle on a split of partitions 0-2 in 45s (last: a=[$(echo $pa_parts)] b=[$(echo $pb_parts)])"
		fi
		sleep 0.2
	done
	echo "split: member a has partitions [$(echo $pa_parts)], member b [$(echo $pb_parts)]"
	kcat_produce_keyed "$ts" 1 600 "$d/want3"
	if ! wait_lines 600 30 "$a" "$b"; then
		kcat_member_stop "$pa" "$a" || true
		kcat_member_stop "$pb" "$b" || true
		fail "two kcat -G members read $(cat "$a" "$b" | wc -l) of 600 records in 30s"
	fi
	sleep 2
	kcat_member_stop "$pa" "$a"
	kcat_member_stop "$pb" "$b"
	# Each read only its own partitions, and something from each.
	local m parts
	for m in a b; do
		if [ "$m" = a ]; then parts=$pa_parts; else parts=$pb_parts; fi
		[ -s "$d/member-$m" ] || fail "member $m read nothing"
		cut -d'|' -f1 "$d/member-$m" | sort -n -u >"$d/member-$m.parts"
		if ! diff -q "$d/member-$m.parts" <(echo "$parts") >/dev/null; then
			fail "member $m read partitions [$(echo $(cat "$d/member-$m.parts"))], assigned [$(echo $parts)]"
		fi
	done
	cat "$a" "$b" | cut -d'|' -f2- >"$d/got3"
	compare_sorted "$d/want3" "$d/got3"
	[ "$(sort "$d/got3" | uniq -d | wc -l)" -eq 0 ] || fail "the two members read some records twice"
	echo "split: member a read $(wc -l <"$a"), member b $(wc -l <"$b"), 600 distinct in all"
}

# kafka-python KafkaConsumer with group_id and manual commit: resumes at the
# committed offsets; KafkaAdminClient lists, describes and deletes the group.
test_python_group() {
	create_topic interop-python-group 3
	timeout 90 "$PY" -I -u "$HERE/kafka_python.py" group "$KAFKA" interop-python-group interop-python-group-g ||
		fail "kafka-python group case failed (exit $?; client output above)"
}

# ---- an election policy written in C ---------------------------------------
# wasm/examples/c/first_isr.c is first-ISR in freestanding C with no SDK:
# built with clang for wasm32, `reeve policy check` must accept it, and on
# test/interop/policy-scenario.toml `reeve policy test` must give the same
# decision (kind and leader) for every partition as the built-in first-ISR.

POLICY_DIR=$WORK/policy-c

# reeve_policy_cmd: fails the case, saying so, when bin/reeve has no
# `policy` command.
reeve_policy_cmd() {
	local out rc=0
	out=$("$REEVE" policy --help 2>&1) || rc=$?
	if grep -qiE 'unknown command "?policy' <<<"$out"; then
		fail "$REEVE has no 'policy' command (reeve policy check/test); build a reeve that has it"
	fi
	return 0
}

# build_c_policy: $POLICY_DIR/first_isr.wasm from the C source, once.
build_c_policy() {
	[ -s "$POLICY_DIR/first_isr.wasm" ] && return 0
	command -v clang >/dev/null || fail "clang missing; run test/interop/deps.sh"
	command -v wasm-ld >/dev/null || fail "wasm-ld missing (Debian package lld); run test/interop/deps.sh"
	mkdir -p "$POLICY_DIR"
	clang --target=wasm32 -O2 -ffreestanding -nostdlib -Wall -Wextra -Werror \
		-Wl,--no-entry -o "$POLICY_DIR/first_isr.wasm" "$ROOT/wasm/examples/c/first_isr.c" \
		>"$POLICY_DIR/clang.out" 2>&1 || {
		cat "$POLICY_DIR/clang.out"
		rm -f "$POLICY_DIR/first_isr.wasm"
		fail "clang could not build wasm/examples/c/first_isr.c for wasm32 (output above)"
	}
	echo "built first_isr.wasm ($(wc -c <"$POLICY_DIR/first_isr.wasm") bytes) with $(clang --version | head -n 1)"
}

# policy check accepts the C module; it refuses one importing a WASI call
# outside the allowlist (path_open) with exit 2 and a reason.
test_policy_c_check() {
	local d=$POLICY_DIR rc=0
	build_c_policy
	reeve_policy_cmd
	timeout 30 "$REEVE" policy check "$d/first_isr.wasm" >"$d/check.out" 2>&1 || rc=$?
	cat "$d/check.out"
	[ "$rc" -eq 0 ] || fail "reeve policy check first_isr.wasm exited $rc, want 0 (output above)"
	grep -q '^ok' "$d/check.out" || fail "reeve policy check first_isr.wasm printed no line starting with \"ok\""

	cat >"$d/bad_import.c" <<'EOF_C'
__attribute__((import_module("wasi_snapshot_preview1"), import_name("path_open"))) int
path_open(int, int, const char *, int, int, long long, long long, int, int *);
__attribute__((export_name("reeve_abi_version"))) int reeve_abi_version(void) { return 1; }
__attribute__((export_name("reeve_alloc"))) int reeve_alloc(int n) { return path_open(3, 0, "x", 1, 0, 0, 0, 0, 0) + n; }
__attribute__((export_name("reeve_decide"))) long long reeve_decide(int p, int n) { return -1; }
EOF_C
	clang --target=wasm32 -O2 -nostdlib -Wl,--no-entry -o "$d/bad_import.wasm" "$d/bad_import.c" ||
		fail "clang could not build the module that imports path_open"
	rc=0
	timeout 30 "$REEVE" policy check "$d/bad_import.wasm" >"$d/check-bad.out" 2>&1 || rc=$?
	cat "$d/check-bad.out"
	[ "$rc" -eq 2 ] || fail "reeve policy check on a module importing wasi path_open exited $rc, want 2"
	grep -q 'path_open' "$d/check-bad.out" || fail "reeve policy check's refusal does not name the import path_open"
}

# policy_test WHAT NAME: `reeve policy test WHAT --scenario ... --json` into
# $POLICY_DIR/NAME.json (stderr in NAME.err).
policy_test() {
	local rc=0
	timeout 30 "$REEVE" policy test "$1" --scenario "$HERE/policy-scenario.toml" --json \
		>"$POLICY_DIR/$2.json" 2>"$POLICY_DIR/$2.err" || rc=$?
	if [ "$rc" -ne 0 ]; then
		cat "$POLICY_DIR/$2.err"
		fail "reeve policy test $1 --scenario policy-scenario.toml --json exited $rc (stderr above)"
	fi
}

test_policy_c_decide() {
	build_c_policy
	reeve_policy_cmd
	policy_test "$POLICY_DIR/first_isr.wasm" c
	policy_test first-isr builtin
	# The comparison prints a line per partition; its verdict on failure
	# goes to compare.err and becomes the case's reason.
	"$PY" -I - "$HERE/policy-scenario.toml" "$POLICY_DIR/c.json" "$POLICY_DIR/builtin.json" \
		2>"$POLICY_DIR/compare.err" <<'EOF_PY' || {
import json, re, sys

try:
    import tomllib
except ImportError:
    sys.exit(f"{sys.executable} has no tomllib (Python 3.11+ needed to read the scenario)")

scenario_path, c_path, builtin_path = sys.argv[1:]
with open(scenario_path, "rb") as f:
    parts = tomllib.load(f).get("partition", [])
expects = [p.get("expect", "") for p in parts]
if not all(expects):
    sys.exit(f"scenario: {expects.count('')} of {len(parts)} partitions have no expect")

def load(path, what):
    try:
        with open(path) as f:
            got = json.load(f)
    except ValueError as e:
        sys.exit(f"{what}: output is not JSON ({e}): {open(path).read()[:300]!r}")
    if not isinstance(got, list) or len(got) != len(parts):
        sys.exit(f"{what}: want a JSON array of {len(parts)} decisions, got {type(got).__name__} of {len(got) if isinstance(got, list) else '?'}")
    return got

c, builtin = load(c_path, "C module"), load(builtin_path, "built-in first-isr")

def show(d):
    return f"{d.get('kind')} {d.get('leader')}" if d.get("kind") == "leader" else str(d.get("kind"))

problems = 0
for i, (p, want, dc, db) in enumerate(zip(parts, expects, c, builtin)):
    tp = f"{p['topic']}-{p['partition']}"
    bad = []
    for what, d in (("C", dc), ("built-in", db)):
        if (d.get("topic"), d.get("partition")) != (p["topic"], p["partition"]):
            bad.append(f"{what} answered for {d.get('topic')}-{d.get('partition')}, out of scenario order")
        if d.get("valid") is not True:
            bad.append(f"{what} decision not valid")
        if d.get("error"):
            bad.append(f"{what} error: {d['error']}")
    if (dc.get("kind"), dc.get("leader")) != (db.get("kind"), db.get("leader")):
        bad.append(f"C {show(dc)} != built-in {show(db)}")
    if show(db) != want:
        bad.append(f"built-in {show(db)}, scenario expects {want}")
    note = "" if dc.get("reason") == db.get("reason") else f"  (reasons differ: C {dc.get('reason')!r}, built-in {db.get('reason')!r})"
    print(f"{'ok  ' if not bad else 'FAIL'} {tp:12} {p.get('reason', 'leader_timeout'):19} C: {show(dc):9} built-in: {show(db):9} {dc.get('reason', '')!r}{note}")
    for b in bad:
        print(f"       {b}")
    problems += bool(bad)
if problems:
    sys.exit(f"{problems} of {len(parts)} partitions: the C module and the built-in first-ISR disagree or are wrong (above)")
print(f"{len(parts)} partitions: the C module decided every one like the built-in first-ISR")
EOF_PY
		local why
		cat "$POLICY_DIR/compare.err"
		why=$(tail -n 1 "$POLICY_DIR/compare.err")
		fail "${why:-comparing the decisions failed (output above)}"
	}
}

ALL=(kcat_plain kcat_gzip kcat_snappy kcat_lz4 kcat_zstd kcat_metadata
	python_plain python_gzip python_lz4 python_snappy python_zstd python_admin
	kcat_autocreate kcat_at_port_open kcat_group python_group policy_c_check policy_c_decide)
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
