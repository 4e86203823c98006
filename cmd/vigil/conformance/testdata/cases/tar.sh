# GNU tar: create and extract archives, plain and gzipped, preserving modes,
# owners, symlinks, hard links, FIFOs and times (tar xzf of a tree of 0755
# directories once failed under vigil: tar changes modes through
# chmod("/proc/self/fd/N")).
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
mktree src
x tar --sort=name -cf src.tar src
x tar --sort=name -czf src.tgz src
mkdir x1 x2 x3
x tar -xf src.tar -C x1
x tar -xzf src.tgz -C x2
x tar -xpzf src.tgz -C x3 --same-owner
x tar -tvf src.tar --full-time --numeric-owner
# Extraction over an existing tree replaces files and keeps directories.
printf 'changed\n' >x1/src/a/hello.txt
x tar -xf src.tar -C x1
x cat x1/src/a/hello.txt
# A member list piped through tar x.
x sh -c 'tar -cf - src/a | tar -xf - -C x3 --transform s,^src,piped,'
# Drop the archives: gzip's header is deterministic, but the comparison
# should be about what tar made of the tree.
x rm -f src.tgz
finish
