# A shell chrooted into a small busybox tree inside a mount and pid
# namespace of its own, as build roots and image tools run one: it reads
# and writes files, lists its own /proc, mounts a tmpfs on /tmp and
# unmounts it again, then keeps working. The namespace's copy of / lies
# above the chroot, so the chrooted shell's own mount table does not show
# the mount its files are on.
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
mkdir -p r/bin r/proc r/etc r/tmp r/work
cp /bin/busybox r/bin/
for c in sh ls cat echo mount umount touch mkdir rm wc grep sort; do
	ln -s busybox "r/bin/$c"
done
echo hello >r/etc/motd
x unshare -m -p -f --mount-proc="$PWD/r/proc" chroot r /bin/sh -c '
cat /etc/motd
ls /proc | grep -c "^1$"
echo before >/work/a
mount -t tmpfs scratch /tmp
echo inside >/tmp/x && cat /tmp/x
umount /tmp
ls /tmp
echo after >/work/b
mkdir /work/d && touch /work/d/e
ls /work | sort
cat /work/a /work/b
'
finish
