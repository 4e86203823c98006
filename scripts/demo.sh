#!/usr/bin/env bash
# vigil's demonstration on its embedded default policy: an allowed read, a
# denied read of a protected file, and the audit records of both.
set -uo pipefail
vigil=${1:-bin/vigil}
log=$(mktemp /tmp/vigil-demo.XXXXXX.jsonl)
trap 'rm -f "$log"' EXIT
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: run as root (vigil reads other processes' memory and /proc)" >&2
  exit 1
fi

say "The embedded default policy (excerpt): 'vigil policy default' prints it all"
"$vigil" policy default | grep -E '^ *(- name|action|errno)' | head -n 12

say "vigil run -- cat /etc/hostname   (allowed)"
"$vigil" run --log "$log" -- cat /etc/hostname
echo "exit status: $?"

say "vigil run -- cat /etc/shadow     (denied by rule 'credentials')"
"$vigil" run --log "$log" -- cat /etc/shadow
echo "exit status: $?"

say "vigil run -- sh -c 'echo hi > /usr/bin/vigil-demo'   (system binaries are read-only)"
"$vigil" run --log "$log" -- sh -c 'echo hi > /usr/bin/vigil-demo'
echo "exit status: $?"

say "Audit records (one JSON line per decision; the openat ones for these files)"
grep -E '"(/etc/hostname|/etc/shadow|/usr/bin/vigil-demo)"' "$log" | grep '"openat"'
say "Decisions recorded: $(wc -l < "$log") (every exec is logged by rule 'exec')"
grep -c '"rule":"exec"' "$log" >/dev/null && grep '"rule":"exec"' "$log" | head -n 3
