#!/usr/bin/env bash
# Runs a static vigil on a root with no shared libraries at all: an empty
# directory holding only vigil and a static busybox, entered with chroot in a
# private mount namespace (proc, sysfs and /dev mounted for vigil; nothing
# else). It checks `vigil version` and `vigil run -- true` there, as on a
# machine without libseccomp. Usage: static-smoke.sh BIN   (needs root)
set -euo pipefail
bin=${1:?usage: static-smoke.sh VIGIL-STATIC-BINARY}
fail() { echo "static-smoke: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || fail "needs root (chroot, mounts)"
interp() { readelf -lW "$1" | grep -q 'program interpreter'; }
interp "$bin" && fail "$bin has an ELF interpreter: it is not static"
busybox=$(command -v busybox) || fail "busybox is not installed (scripts/deps.sh installs busybox-static)"
interp "$busybox" && fail "$busybox is dynamically linked; install busybox-static"

stage=$(mktemp -d /tmp/vigil-static-stage.XXXXXX)
trap 'rm -rf --one-file-system "$stage"' EXIT
install -m 0755 "$bin" "$stage/vigil"
install -m 0755 "$busybox" "$stage/busybox"

# The root is a fresh tmpfs mounted in the namespace below, so it is a
# mount of its own as on a real machine, and it vanishes with the namespace.
unshare --mount --propagation private env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin STAGE="$stage" /bin/sh -eu -c '
  ROOT=$STAGE/root
  mkdir "$ROOT"
  mount -t tmpfs -o mode=0755 vigil-static-root "$ROOT"
  mkdir -p "$ROOT/bin" "$ROOT/proc" "$ROOT/sys" "$ROOT/dev" "$ROOT/tmp"
  chmod 1777 "$ROOT/tmp"
  cp "$STAGE/vigil" "$STAGE/busybox" "$ROOT/bin/"
  for applet in sh true cat ls; do ln -s busybox "$ROOT/bin/$applet"; done
  echo "static-smoke ok" >"$ROOT/ok"
  mount -t proc proc "$ROOT/proc"
  mount --rbind /sys "$ROOT/sys"   # BTF (/sys/kernel/btf/vmlinux) for the eBPF binding
  mount --rbind /dev "$ROOT/dev"
  # Nothing to load a library from: no /lib, /usr, /etc in the root.
  for d in lib lib64 usr etc; do [ ! -e "$ROOT/$d" ] || { echo "static-smoke: $d exists in the root" >&2; exit 1; }; done
  chroot "$ROOT" /bin/vigil version
  chroot "$ROOT" /bin/vigil --version >/dev/null
  chroot "$ROOT" /bin/vigil run -- /bin/true
  # A trapped, bound call (an open under the default policy) in the same root.
  out=$(chroot "$ROOT" /bin/vigil run -- /bin/cat /ok)
  [ "$out" = "static-smoke ok" ] || { echo "static-smoke: cat under vigil printed: $out" >&2; exit 1; }
'
echo "static-smoke: $bin runs without shared libraries"
