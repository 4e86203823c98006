# mv across directories (rename), over existing files, directories into
# directories, and across file systems (copy, then remove) and back.
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
mktree src
mkdir -p d1 d2/sub
x mv src/a/hello.txt d1/
x mv src/a/b d2/sub/
x mv src/priv src/group d1/
x mv -t d2 src/with\ space src/fifo
printf 'victim\n' >d1/victim
x mv src/empty-file d1/victim
x mv -T src/empty d2/renamed-empty
x mv d2/sub d1/moved-sub
x mv -n src/a/rel-link d1/hello.txt
x mv src/a/abs-link src/a/dangling d1/
# Across file systems: to a tmpfs scratch directory and back.
x mv d1/moved-sub "$CONFORMANCE_SCRATCH/"
x mv "$CONFORMANCE_SCRATCH/moved-sub" d2/back
x mv -v d1/priv/key d1/group/
finish
