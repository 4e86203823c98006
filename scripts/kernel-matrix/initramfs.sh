#!/usr/bin/env bash
# Builds the kernel matrix's initramfs for one unpacked Debian kernel package:
# busybox (static), the guest init beside this script, and the modules the
# init needs to mount the host's root over virtio-9p, with their dependencies
# in load order, decompressed (Debian's 6.12
# compresses them with xz; busybox's insmod takes plain .ko files only).
#
#   initramfs.sh UNPACKED_DEB OUT_DIR
# writes OUT_DIR/vmlinuz, OUT_DIR/initramfs.cpio.gz and OUT_DIR/release.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$1 out=$2
# virtio_pci is built in on some kernels (6.12): a module that is not there
# is left to the mount to complain about.
wanted=(9p 9pnet_virtio virtio_pci)

vmlinuz=$(ls "$src"/boot/vmlinuz-* 2>/dev/null | head -n 1)
[ -n "$vmlinuz" ] || { echo "initramfs: no boot/vmlinuz-* in $src" >&2; exit 1; }
release=${vmlinuz##*/vmlinuz-}
moddir=$src/lib/modules/$release
[ -d "$moddir/kernel" ] || { echo "initramfs: no $moddir/kernel" >&2; exit 1; }
busybox=/bin/busybox # busybox-static's (the initramfs has no libc)
[ -x "$busybox" ] && dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed" ||
  { echo "initramfs: busybox-static is not installed (scripts/deps.sh installs it)" >&2; exit 1; }

# modinfo_depends prints the depends= field of a module file's .modinfo.
modinfo_depends() {
  case $1 in
    *.xz) xz -dc "$1" ;;
    *.zst) zstd -qdc "$1" ;;
    *.gz) gzip -dc "$1" ;;
    *) cat "$1" ;;
  esac | tr '\0' '\n' | sed -n 's/^depends=//p' | head -n 1 | tr ',' ' '
}

# order appends a module's file and its dependencies' to order_list,
# dependencies first, each once. Debian's packages ship no modules.dep (depmod
# runs at install), so dependencies come from each module's own .modinfo.
declare -A seen=()
order_list=()
order() {
  local name=$1 path d
  [ -z "${seen[$name]:-}" ] || return 0
  seen[$name]=1
  # Module names use '_' where file names may use '-'.
  path=$(find "$moddir/kernel" \( -name "$name.ko*" -o -name "${name//_/-}.ko*" \) -print -quit)
  if [ -z "$path" ]; then
    # Not a module: built in, or the kernel lacks it (the mount will say).
    return 0
  fi
  for d in $(modinfo_depends "$path"); do order "$d"; done
  order_list+=("$path")
}
for m in "${wanted[@]}"; do order "$m"; done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"/{bin,dev,proc,sys,modules,newroot}
cp "$busybox" "$work/bin/busybox"
cp "$here/init" "$work/init"
chmod 0755 "$work/init" "$work/bin/busybox"
: >"$work/modules/order"
for p in "${order_list[@]}"; do
  base=${p##*/}
  case $base in
    *.ko.xz) xz -dc "$p" >"$work/modules/${base%.xz}"; base=${base%.xz} ;;
    *.ko.zst) zstd -qdc "$p" >"$work/modules/${base%.zst}"; base=${base%.zst} ;;
    *.ko.gz) gzip -dc "$p" >"$work/modules/${base%.gz}"; base=${base%.gz} ;;
    *) cp "$p" "$work/modules/$base" ;;
  esac
  echo "$base" >>"$work/modules/order"
done
mkdir -p "$out"
(cd "$work" && find . | "$busybox" cpio -o -H newc 2>/dev/null | gzip -1) >"$out/initramfs.cpio.gz.tmp"
mv "$out/initramfs.cpio.gz.tmp" "$out/initramfs.cpio.gz"
cp "$vmlinuz" "$out/vmlinuz"
echo "$release" >"$out/release"
echo "initramfs: $release: $(tr '\n' ' ' <"$work/modules/order")" >&2
