#!/usr/bin/env bash
# Regenerates bpf/vmlinux.h from the running kernel's BTF.
set -euo pipefail
cd "$(dirname "$0")/.."
trap 'rm -f bpf/vmlinux.h.tmp' EXIT
bpftool btf dump file /sys/kernel/btf/vmlinux format c > bpf/vmlinux.h.tmp
mv bpf/vmlinux.h.tmp bpf/vmlinux.h
