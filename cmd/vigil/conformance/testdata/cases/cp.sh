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
x cp -as "$PWD/src" symlinked
x cp -u src/a/hello.txt dst3/over
stamp dst3/over dst3/a dst3/sparse dst3/deref-copy
finish
