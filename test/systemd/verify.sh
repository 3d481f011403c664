#!/usr/bin/env bash
# Checks what `make install` lays out and that systemd accepts it: the files
# and their modes under DESTDIR, a second install keeping an edited
# reeve.toml, `reeve config check` on the installed sample, the sysusers.d
# and tmpfiles.d snippets applied to the staged root (systemd-sysusers and
# systemd-tmpfiles --root, so this machine's accounts are not touched),
# `systemd-analyze verify` on the unit and `systemd-analyze security` under
# a ceiling. Installs Debian's systemd (systemd-analyze, -sysusers,
# -tmpfiles) and procps (the unit's /bin/kill) when missing. Needs no
# running systemd. Ends with "systemd: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/../.."

# The exposure `systemd-analyze security` may report, in tenths (12 = 1.2;
# 1.1 when this was written). A change that loosens the sandbox fails here.
MAX_EXPOSURE=${MAX_EXPOSURE:-12}

missing=()
for tool in systemd-analyze systemd-sysusers systemd-tmpfiles; do
	command -v "$tool" >/dev/null 2>&1 || { missing+=(systemd); break; }
done
[ -x /bin/kill ] || missing+=(procps)
. test/lib/apt.sh
apt_install systemd "${missing[@]}"
systemd-analyze --version | head -1

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0 failed=0
pass() { passed=$((passed + 1)); echo "ok   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL $*"; }

# 1. The layout under DESTDIR, with the default PREFIX and SYSCONFDIR.
dest=$work/dest
make --no-print-directory install DESTDIR="$dest" >"$work/install.log" 2>&1 || { cat "$work/install.log"; exit 1; }
while read -r mode path; do
	if [ ! -e "$dest$path" ]; then
		fail "make install: $path missing"
	elif [ "$(stat -c %a "$dest$path")" != "$mode" ]; then
		fail "make install: $path has mode $(stat -c %a "$dest$path"), want $mode"
	else
		pass "make install: $path ($mode)"
	fi
done <<'EOF'
755 /usr/local/bin/reeve
644 /lib/systemd/system/reeve.service
644 /usr/local/lib/sysusers.d/reeve.conf
644 /usr/local/lib/tmpfiles.d/reeve.conf
640 /etc/reeve/reeve.toml
750 /etc/reeve/policies
EOF

# 2. Installing again keeps an operator's reeve.toml; the sample goes beside it.
echo "# edited by the operator" >>"$dest/etc/reeve/reeve.toml"
make --no-print-directory install DESTDIR="$dest" >"$work/install2.log" 2>&1 || { cat "$work/install2.log"; exit 1; }
if tail -1 "$dest/etc/reeve/reeve.toml" | grep -q 'edited by the operator' && cmp -s systemd/reeve.toml "$dest/etc/reeve/reeve.toml.sample"; then
	pass "make install again: keeps the edited reeve.toml, new sample in reeve.toml.sample"
else
	fail "make install again: the edited reeve.toml was replaced or no reeve.toml.sample written"
fi

# 3. The installed sample is a valid configuration, and its data_dir is the
# unit's StateDirectory.
if out=$("$dest/usr/local/bin/reeve" config check -c "$dest/etc/reeve/reeve.toml" 2>&1); then
	pass "reeve config check on the installed sample: $out"
else
	fail "reeve config check on the installed sample: $out"
fi
if grep -qx 'data_dir = "/var/lib/reeve"' "$dest/etc/reeve/reeve.toml" && grep -qx 'StateDirectory=reeve' "$dest/lib/systemd/system/reeve.service"; then
	pass "sample data_dir is /var/lib/reeve, the unit's StateDirectory=reeve"
else
	fail "sample data_dir and the unit's StateDirectory=reeve (/var/lib/reeve) disagree"
fi

# 4. The sysusers.d snippet makes the account and the tmpfiles.d snippet
# gives its group read access to the configuration, in the staged root.
if systemd-sysusers --root="$dest" >"$work/sysusers.log" 2>&1 && grep -q '^reeve:x:[0-9]*:[0-9]*:.*:/var/lib/reeve:' "$dest/etc/passwd"; then
	pass "systemd-sysusers: $(grep '^reeve:' "$dest/etc/passwd")"
else
	fail "systemd-sysusers made no reeve account: $(cat "$work/sysusers.log")"
fi
gid=$(awk -F: '$1 == "reeve" { print $3 }' "$dest/etc/group")
if systemd-tmpfiles --root="$dest" --create reeve.conf >"$work/tmpfiles.log" 2>&1 &&
	[ -n "$gid" ] &&
	[ "$(stat -c '%a %u %g' "$dest/etc/reeve/reeve.toml")" = "640 0 $gid" ] &&
	[ "$(stat -c '%a %u %g' "$dest/etc/reeve/policies")" = "750 0 $gid" ]; then
	pass "systemd-tmpfiles: reeve.toml 0640 and policies/ 0750, root:reeve"
else
	fail "systemd-tmpfiles: reeve.toml is $(stat -c '%a %u:%g' "$dest/etc/reeve/reeve.toml"), policies/ $(stat -c '%a %u:%g' "$dest/etc/reeve/policies"), want root:reeve ($gid); $(cat "$work/tmpfiles.log")"
fi

# 5. systemd-analyze verify checks that each Exec*= binary exists, so the
# unit is installed once more with every path pointing into the work folder.
live=$work/live
make --no-print-directory install PREFIX="$live/usr/local" SYSCONFDIR="$live/etc" UNITDIR="$live/lib/systemd/system" \
	>"$work/install3.log" 2>&1 || { cat "$work/install3.log"; exit 1; }
unit=$live/lib/systemd/system/reeve.service
if grep -q "^ExecStart=$live/usr/local/bin/reeve serve -c $live/etc/reeve/reeve.toml\$" "$unit"; then
	pass "installed unit's paths follow PREFIX and SYSCONFDIR"
else
	fail "installed unit's ExecStart does not follow PREFIX and SYSCONFDIR: $(grep '^ExecStart=' "$unit")"
fi
# It exits 0 on some warnings (an unknown key, a bad value it ignores), so
# any output fails too.
if out=$(systemd-analyze verify --man=no "$unit" 2>&1) && [ -z "$out" ]; then
	pass "systemd-analyze verify reeve.service"
else
	fail "systemd-analyze verify reeve.service: $out"
fi

# 6. The sandbox's exposure stays at or under MAX_EXPOSURE.
if systemd-analyze security --offline=true --threshold="$MAX_EXPOSURE" --no-pager "$unit" >"$work/security.log" 2>&1; then
	pass "systemd-analyze security: $(grep 'Overall exposure' "$work/security.log")"
else
	fail "systemd-analyze security over $MAX_EXPOSURE tenths: $(grep -E '^✗|Overall exposure' "$work/security.log")"
fi
if grep -q '^MemoryDenyWriteExecute=yes' "$unit"; then
	fail "MemoryDenyWriteExecute=yes would put wazero's policies in its interpreter (see the unit's comment)"
else
	pass "MemoryDenyWriteExecute left off for wazero's compiler"
fi

echo "systemd: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
