#!/usr/bin/env bash
# debian-container.sh — a real Debian userland in a runc container, bare and
# under `vigil agent` (default secure mode, the conformance suite's trap-all
# policy merged by `vigil agent seccomp-profile`): apt-get update, installs
# with apt's _apt sandbox, dpkg and maintainer scripts, useradd, su, python,
# a removal. stdout, stderr, the exit status and the container's tree
# (types, modes, owners, sizes, link targets; logs, caches and package
# lists aside) must be the same. Not part of `make test`: it needs the
# Debian archive and about a minute of debootstrap.
#
#   sudo scripts/debian-container.sh [BIN/VIGIL]     (or: sudo make debian-container)
#
# DEBIAN_MIRROR (default http://deb.debian.org/debian) and SUITE (bookworm)
# choose the userland; KEEP=1 keeps the work directory.
set -euo pipefail
cd "$(dirname "$0")/.."
vigil=${1:-bin/vigil}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=${SUITE:-bookworm}
[ "$(id -u)" = 0 ] || { echo "debian-container: needs root" >&2; exit 2; }
[ -x "$vigil" ] || { echo "debian-container: $vigil: build it first (make build)" >&2; exit 2; }
for c in runc debootstrap; do
	command -v "$c" >/dev/null || { echo "debian-container: needs $c (apt-get install $c)" >&2; exit 2; }
done
work=$(mktemp -d /tmp/vigil-debian-XXXXXX)
agent_pid=
cleanup() {
	[ -n "$agent_pid" ] && kill "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null
	[ "${KEEP:-}" = 1 ] && { echo "debian-container: kept $work"; return; }
	rm -rf "$work"
}
trap cleanup EXIT

echo "debian-container: debootstrap --variant=minbase $suite"
debootstrap --variant=minbase "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
	{ tail -20 "$work/debootstrap.log"; exit 1; }
cp /etc/resolv.conf "$work/rootfs/etc/resolv.conf"

cat >"$work/script.sh" <<'EOF'
set -e
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
apt-get update -q 2>&1 | grep -v '^Get:\|^Hit:\|^Fetched\|^Reading' || true
apt-get install -y -q --no-install-recommends hello cowsay python3-minimal 2>&1 |
	grep -v '^Fetched\|^Get:\|Reading database'
hello
/usr/games/cowsay moo
useradd -m bob
su bob -c 'echo hi > ~/f; cat ~/f; id'
python3 -c 'import os; print(sorted(os.listdir("/usr/share/doc"))[:5])'
apt-get remove -y -q cowsay 2>&1 | grep -v 'Reading database'
dpkg -l | wc -l
EOF

mkdir -p "$work/policies"
sed "s#@DENIED@#$work/denied#g" cmd/vigil/conformance/testdata/policies/trap-all.yaml >"$work/policies/trap-all.yaml"

# bundle DIR: a runc bundle around a copy of the userland, on the host's
# network, with Docker's default capabilities.
bundle() {
	mkdir -p "$1"
	cp -a "$work/rootfs" "$1/rootfs"
	(cd "$1" && runc spec)
	python3 - "$1/config.json" "$work/script.sh" <<'EOF'
import json, sys
path, script = sys.argv[1], sys.argv[2]
c = json.load(open(path))
caps = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
        "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
c["process"].update(terminal=False, args=["/bin/sh", "/script.sh"],
                    capabilities={k: caps for k in ("bounding", "effective", "permitted")})
c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "network"]
c["root"]["readonly"] = False
c["mounts"].append({"destination": "/script.sh", "type": "bind", "source": script, "options": ["rbind", "ro"]})
json.dump(c, open(path, "w"))
EOF
}

# tree DIR: what the comparison looks at.
tree() {
	(cd "$1/rootfs" && find . -xdev \( -path ./var/log -o -path ./var/cache -o -path ./var/lib/apt/lists \
		-o -path ./proc -o -path ./sys -o -path ./dev -o -path ./tmp \) -prune -o \
		-printf '%P %y %m %u %g %s %l\n' | sort)
}

bundle "$work/bare"
bundle "$work/vigil"
"$vigil" agent seccomp-profile --policy "$work/policies/trap-all.yaml" --socket "$work/agent.sock" \
	--runtime runc --config "$work/vigil/config.json" >"$work/merged.json" 2>/dev/null
mv "$work/merged.json" "$work/vigil/config.json"

echo "debian-container: bare"
rc=0
runc --root "$work/state" run --bundle "$work/bare" "vigil-debian-bare-$$" >"$work/bare.out" 2>&1 || rc=$?
echo "exit $rc" >>"$work/bare.out"

echo "debian-container: under vigil agent"
"$vigil" agent --socket "$work/agent.sock" --policy-dir "$work/policies" --log "$work/audit.jsonl" 2>"$work/agent.log" &
agent_pid=$!
for _ in $(seq 50); do [ -S "$work/agent.sock" ] && break; sleep 0.1; done
rc=0
runc --root "$work/state" run --bundle "$work/vigil" "vigil-debian-vigil-$$" >"$work/vigil.out" 2>&1 || rc=$?
echo "exit $rc" >>"$work/vigil.out"
kill "$agent_pid"
wait "$agent_pid" || true
agent_pid=

status=0
diff -u "$work/bare.out" "$work/vigil.out" || { echo "debian-container: the output differs" >&2; status=1; }
diff -u <(tree "$work/bare") <(tree "$work/vigil") || { echo "debian-container: the trees differ" >&2; status=1; }
grep -q '"emulated":true' "$work/audit.jsonl" || { echo "debian-container: nothing emulated: vigil did not supervise" >&2; status=1; }
echo "debian-container: $(wc -l <"$work/audit.jsonl") audit records, $(tree "$work/bare" | wc -l) entries compared, $(tail -1 "$work/bare.out")"
[ "$status" = 0 ] && echo "debian-container: identical"
exit "$status"
