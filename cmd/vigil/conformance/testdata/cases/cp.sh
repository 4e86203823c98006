# cp -a and friends: copy a tree preserving everything, copy into existing
# directories, copy over existing files, sparse and reflink fallbacks.
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
mktree src
x cp -a src dst
x cp -a src/. dst2
mkdir dst3
x cp -r src/a dst3/
x cp --preserve=mode,ownership,timestamps,links src/a/hello.txt src/group/hard dst3/
x cp -P src/a/rel-link dst3/link-copy
x cp -L src/a/rel-link dst3/deref-copy
printf 'old\n' >dst3/over
chmod 0600 dst3/over
x cp src/a/hello.txt dst3/over
x cp --sparse=always src/a/b/c/big dst3/sparse
x cp -al src hardlinked
# --no-preserve=links: with -a, cp -s makes the first-visited name of a
# hard-linked pair a symlink and hard-links the other name to that symlink.
# GNU cp visits a directory's entries in inode order, and the filesystem
# decides the inode order of src/a and src/group: a file deleted anywhere
# on it between their mkdirs gives group the lower number (reproduced bare).
# Which name wins is then the platform's choice, not vigil's; hard-link
# preservation is still compared by cp -a, cp -al and --preserve=links.
x cp -as --no-preserve=links "$PWD/src" symlinked
x cp -u src/a/hello.txt dst3/over
stamp dst3/over dst3/a dst3/sparse dst3/deref-copy
finish
