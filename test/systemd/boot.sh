#!/usr/bin/env bash
# Runs reeve.service under a real systemd: boots this machine's systemd as
# PID 1 of new mount, PID, network, UTS, IPC and cgroup namespaces, with
# overlays on /etc, /var and /usr/local so nothing reaches the machine's own
# files or accounts, installs reeve there with `make install`, and checks
# what an operator relies on:
#   - sysusers.d and tmpfiles.d at boot: the reeve user, /etc/reeve root:reeve
#   - start returns at READY=1, with the daemon's STATUS=, under the full
#     sandbox, and the election policy is compiled (wazero's compiler)
#   - journald gets each line's priority (<6> info, <4> warn, <7> debug) and
#     no second timestamp
#   - Kafka produce and fetch through the sandbox (kcat, when installed)
#   - reload: log.level changes at once; a bad file fails the reload and the
#     node keeps running
#   - the watchdog: a stopped (hung) daemon is aborted and restarted
#   - MemoryDenyWriteExecute=yes (as a drop-in) leaves wazero no compiler
#   - stop is clean; a bad configuration fails the start and stops retrying
# Needs root, unshare(1) and overlayfs; says why and exits 0 when it cannot
# run here. About 90 s. Ends with "systemd-boot: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."

skip() { echo "systemd-boot: skipped: $*"; exit 0; }
[ "$(id -u)" -eq 0 ] || skip "needs root"
for tool in unshare nsenter systemd-analyze ip; do
	command -v "$tool" >/dev/null 2>&1 || skip "no $tool"
done
[ -x /lib/systemd/systemd ] || skip "no /lib/systemd/systemd"
grep -qw overlay /proc/filesystems || modprobe overlay 2>/dev/null || skip "no overlayfs"

work=$(mktemp -d /tmp/reeve-boot.XXXXXX)
cgroups_before=$(mktemp)
find /sys/fs/cgroup -maxdepth 2 -type d 2>/dev/null | sort >"$cgroups_before"
unshare_pid=
init=
cleanup() {
	if [ -n "$init" ] && kill -0 "$init" 2>/dev/null; then
		nsenter -t "$init" -a systemctl poweroff >/dev/null 2>&1 || true
		for _ in $(seq 1 40); do kill -0 "$unshare_pid" 2>/dev/null || break; sleep 0.5; done
	fi
	if [ -n "$unshare_pid" ] && kill -0 "$unshare_pid" 2>/dev/null; then
		kill -KILL "$unshare_pid" 2>/dev/null || true
	fi
	# The namespace's systemd made cgroups (init.scope, system.slice, ...)
	# in the cgroup2 hierarchy it was given; remove those it left, empty.
	find /sys/fs/cgroup -maxdepth 2 -type d 2>/dev/null | sort | comm -13 "$cgroups_before" - |
		while read -r dir; do find "$dir" -depth -type d -exec rmdir {} \; 2>/dev/null || true; done
	rm -f "$cgroups_before"
	rm -rf "$work"
}
trap cleanup EXIT

passed=0 failed=0
pass() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }

# The installed files, the unit in /etc/systemd/system, a one-node
# configuration on the namespace's loopback and one election policy.
stage=$work/stage
make --no-print-directory install DESTDIR="$stage" UNITDIR=/etc/systemd/system >"$work/install.log" 2>&1 || { cat "$work/install.log"; exit 1; }
make --no-print-directory bin/policies/first-isr.wasm >"$work/policy.log" 2>&1 || { cat "$work/policy.log"; exit 1; }
cp bin/policies/first-isr.wasm "$stage/etc/reeve/policies/"
cat >"$stage/etc/reeve/reeve.toml" <<'EOF'
# One node on the namespace's loopback (test/systemd/boot.sh).
[node]
data_dir = "/var/lib/reeve"

[kafka]
listen = "127.0.0.1:9092"

[admin]
listen = "127.0.0.1:9644"

[log]
level = "info"

[election]
policy_dir = "/etc/reeve/policies"

[[election.rules]]
topics = "*"
policy = "first-isr.wasm"

[events]
embedded_listen = "127.0.0.1:4222"
EOF
chmod 0640 "$stage/etc/reeve/reeve.toml"
cp "$stage/etc/reeve/reeve.toml" "$stage/etc/reeve/good.toml"

cat >"$work/inner.sh" <<'EOF'
#!/bin/bash
# In the new namespaces: overlays, the staged files, then systemd as PID 1.
set -euo pipefail
work=$1
mount --make-rprivate /
for d in etc var usr/local; do
	mkdir -p "$work/up/$d" "$work/wk/$d"
	mount -t overlay overlay -o "lowerdir=/$d,upperdir=$work/up/$d,workdir=$work/wk/$d" "/$d"
done
cp -a "$work/stage/." /
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
umount -R /sys/fs/cgroup
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up
cat >/etc/systemd/system/reeve-test.target <<'UNIT'
[Unit]
Description=A basic system to run reeve.service in
Requires=basic.target
After=basic.target
UNIT
rm -f /etc/systemd/system/getty.target.wants/* /etc/systemd/system/timers.target.wants/*
export container=other
exec /lib/systemd/systemd --system --unit=reeve-test.target --log-target=console --log-level=warning
EOF
chmod +x "$work/inner.sh"
setsid unshare --fork --pid --mount --net --uts --ipc --cgroup --mount-proc "$work/inner.sh" "$work" >"$work/boot.log" 2>&1 &
unshare_pid=$!
for _ in $(seq 1 100); do
	init=$(pgrep -P "$unshare_pid" -x systemd || true)
	[ -n "$init" ] && break
	sleep 0.1
done
[ -n "$init" ] || { cat "$work/boot.log"; skip "systemd did not start in the namespaces"; }
ns() { nsenter -t "$init" -a "$@"; }
state=
for _ in $(seq 1 120); do
	state=$(ns systemctl is-system-running 2>/dev/null || true)
	case $state in running | degraded) break ;; esac
	sleep 0.5
done
case $state in running | degraded) ;; *)
	cat "$work/boot.log"
	skip "systemd in the namespaces never finished booting ($state)"
	;;
esac
ns systemd-analyze --version | head -1
show() { ns systemctl show reeve -p "$1" --value; }
journal() { ns journalctl -u reeve -o json --no-pager "$@"; }
# priorities prints "PRIORITY first-word" for each of reeve's log lines.
priorities() {
	journal "$@" | python3 -c '
import json, sys
for line in sys.stdin:
    e = json.loads(line)
    m = e.get("MESSAGE")
    if isinstance(m, str) and m.startswith(("level=", "time=")):
        print(e.get("PRIORITY"), m.split(" ", 1)[0])'
}
# has PATTERN [journalctl options]: one of reeve's lines matches, as
# "PRIORITY first-word".
has() {
	local pattern=$1
	shift
	grep -q "$pattern" <<<"$(priorities "$@")"
}
# mismatched prints the lines whose priority is not their level's.
mismatched() {
	grep -vE '^(3 level=ERROR|4 level=WARN|6 level=INFO|7 level=DEBUG)$' <<<"$(priorities "$@")" || true
}

# Boot: the account and the modes from the snippets.
if ns getent passwd reeve >/dev/null && [ "$(ns stat -c '%a %U:%G' /etc/reeve/reeve.toml)" = "640 root:reeve" ]; then
	pass "boot: sysusers.d made reeve, tmpfiles.d made reeve.toml 0640 root:reeve"
else
	fail "boot: reeve account $(ns getent passwd reeve || echo missing), reeve.toml $(ns stat -c '%a %U:%G' /etc/reeve/reeve.toml)"
fi

# Start: returns at READY=1, in the sandbox.
start=$(date +%s%N)
if ns timeout 120 systemctl start reeve && [ "$(show ActiveState)" = active ]; then
	pass "start: active after $((($(date +%s%N) - start) / 1000000)) ms; STATUS=\"$(show StatusText)\""
else
	fail "start: $(show ActiveState) ($(show Result)); $(ns journalctl -u reeve --no-pager -n 20 -o cat)"
fi
user=$(ns stat -c %U "/proc/$(show MainPID)")
if [ -n "$(show StatusText)" ] && [ "$user" = reeve ]; then
	pass "notify: STATUS= from the daemon; the daemon runs as $user"
else
	fail "notify: StatusText=\"$(show StatusText)\", the daemon runs as $user"
fi
if [ "$(ns find /var/lib/reeve/policy-cache -type f 2>/dev/null | wc -l)" -gt 0 ]; then
	pass "policy compiled by wazero's compiler (cached in /var/lib/reeve/policy-cache)"
else
	fail "no compiled policy in /var/lib/reeve/policy-cache: wazero ran its interpreter"
fi
if has '^6 level=INFO' && [ -z "$(mismatched)" ]; then
	pass "journal: each line at its level's PRIORITY (info 6), no time= of its own"
else
	fail "journal: $(priorities | sort | uniq -c | tr '\n' ';')"
fi

if command -v kcat >/dev/null 2>&1; then
	if ns bash -c 'seq 1 200 | sed "s/.*/k&:v&/" | kcat -b 127.0.0.1:9092 -P -t edge -K: -X topic.request.required.acks=all' &&
		[ "$(ns kcat -b 127.0.0.1:9092 -C -t edge -e -q | wc -l)" = 200 ]; then
		pass "kafka: 200 records produced (acks=all) and fetched through the sandbox"
	else
		fail "kafka: produce or fetch through the sandbox failed"
	fi
else
	echo "skip kafka: no kcat (bash test/interop/deps.sh installs it)"
fi

# Reload: a new level at once, a restart-only key named at warn. A Kafka
# request cut off mid-frame is logged at debug: before the reload it is not.
cut_request() { ns bash -c 'exec 3<>/dev/tcp/127.0.0.1/9092; printf "\0\0\0\20abc" >&3; exec 3>&-'; sleep 0.5; }
since=$(ns date '+%Y-%m-%d %H:%M:%S')
cut_request
if has '^7 level=DEBUG' --since "$since"; then
	fail "at log.level info, debug lines reached the journal"
fi
ns sed -i 's/^level = "info"/level = "debug"/; s/^listen = "127.0.0.1:9644"/listen = "127.0.0.1:9645"/' /etc/reeve/reeve.toml
since=$(ns date '+%Y-%m-%d %H:%M:%S')
if ns systemctl reload reeve; then
	sleep 1
	cut_request
	if has '^4 level=WARN' --since "$since" && has '^7 level=DEBUG' --since "$since" && [ -z "$(mismatched --since "$since")" ]; then
		pass "reload: debug lines at PRIORITY 7 at once; the changed admin.listen named at PRIORITY 4"
	else
		fail "reload: $(priorities --since "$since" | sort | uniq -c | tr '\n' ';')"
	fi
else
	fail "reload of a good file failed"
fi
ns sed -i 's/^level = "debug"/level = "verbose"/' /etc/reeve/reeve.toml
if ! ns systemctl reload reeve 2>/dev/null && [ "$(show ActiveState)" = active ]; then
	pass "reload of a bad file fails, the node keeps running"
else
	fail "reload of a bad file: succeeded or the node stopped ($(show ActiveState))"
fi
ns cp /etc/reeve/good.toml /etc/reeve/reeve.toml

# Watchdog: a hung daemon is aborted and restarted.
pid=$(show MainPID)
ns kill -STOP "$pid"
restarted=
for _ in $(seq 1 90); do
	if [ "$(show NRestarts)" -ge 1 ] && [ "$(show ActiveState)" = active ]; then restarted=1; break; fi
	sleep 1
done
if [ -n "$restarted" ] && [ "$(show MainPID)" != "$pid" ]; then
	pass "watchdog: a stopped daemon was aborted and restarted (NRestarts=$(show NRestarts))"
else
	fail "watchdog: NRestarts=$(show NRestarts) ActiveState=$(show ActiveState) Result=$(show Result)"
fi

# MemoryDenyWriteExecute=yes takes wazero's compiler away.
ns mkdir -p /etc/systemd/system/reeve.service.d
ns sh -c 'printf "[Service]\nMemoryDenyWriteExecute=yes\n" >/etc/systemd/system/reeve.service.d/mdwe.conf'
ns systemctl daemon-reload
ns systemctl stop reeve
ns rm -rf /var/lib/reeve/policy-cache
if ns timeout 120 systemctl start reeve && [ "$(ns find /var/lib/reeve/policy-cache -type f 2>/dev/null | wc -l)" -eq 0 ]; then
	pass "MemoryDenyWriteExecute=yes: no compiled policy (wazero fell back to its interpreter)"
else
	fail "MemoryDenyWriteExecute=yes: $(show ActiveState), $(ns find /var/lib/reeve/policy-cache -type f | wc -l) compiled files"
fi
ns rm -rf /etc/systemd/system/reeve.service.d
ns systemctl daemon-reload

# Stop, then a bad configuration: the start fails and retries end.
if ns systemctl stop reeve && [ "$(show Result)" = success ] && grep -q 'reeve stopping' <<<"$(ns journalctl -u reeve --no-pager -o cat)"; then
	pass "stop: SIGTERM, 'reeve stopping', Result=success"
else
	fail "stop: Result=$(show Result)"
fi
ns sed -i 's/^level = "info"/level = "verbose"/' /etc/reeve/reeve.toml
ns systemctl reset-failed reeve 2>/dev/null || true
ns systemctl start reeve 2>/dev/null || true
sleep 15
if [ "$(show ActiveState)" = failed ] && [ "$(show NRestarts)" -le 5 ]; then
	pass "bad configuration: start failed, gave up after $(show NRestarts) retries"
else
	fail "bad configuration: ActiveState=$(show ActiveState) NRestarts=$(show NRestarts)"
fi

echo "systemd-boot: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
