#!/usr/bin/env bash
# Installs the Debian packages vigil's build, demo and tests need. Idempotent:
# it installs only what is missing, and runs apt-get update at most once.
set -euo pipefail
pkgs=(gcc make pkg-config libseccomp-dev clang llvm libbpf-dev bpftool strace runc crun busybox-static jq
  git rsync sqlite3 python3-venv patch xz-utils zstd bzip2 lz4 gnupg tmux openssh-client bsdutils iproute2)
# the second line: programs the conformance suite runs
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "deps: missing packages: ${missing[*]} (run as root, or install them yourself)" >&2
  exit 1
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
