# busybox-static applets (a statically linked program, with its own idea of
# which syscalls to use): sh, mkdir, cp -a, mv, ln -s, tar, sed -i, find,
# sort, md5sum, chmod, chown, rm -r.
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
bb=/bin/busybox
x $bb sh -c '
mkdir -p t/a/b && echo hello >t/a/f && echo x >t/a/b/g
chmod 0750 t/a && chmod 0600 t/a/f && chown 1234:5678 t/a/f
ln -s f t/a/link && ln t/a/f t/a/hard
cp -a t copy && mv copy/a/b moved && mkdir -p x/y && mv moved x/y/
sed -i "s/hello/HELLO/" t/a/f
'
stamp t
x $bb sh -c '
tar -cf t.tar t && mkdir u && tar -xf t.tar -C u
find t u x | sort
md5sum t/a/f u/t/a/f | sed "s/ .*//"
rm -r copy
ls -ln t/a | sed "s/  */ /g" | cut -d" " -f1,3,4,5
'
finish
