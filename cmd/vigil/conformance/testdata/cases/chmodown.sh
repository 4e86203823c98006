# chmod -R and chown -R over a tree with symlinks (never followed by -R
# without -L), symbolic and numeric modes, chgrp, chown -h.
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
mktree t
x chmod -R u=rwX,go=rX t/a
x chmod -R 0700 t/group
x chmod -R g+s,o-rwx t/priv
x chmod 0444 t/a/hello.txt t/a/rel-link
x chown -R 1234:5678 t/a
x chown -R --from=1234:5678 4321:8765 t/a/b
x chgrp -R 100 t/priv
x chown -h 999:999 t/a/abs-link
x chown 0:0 t/a/rel-link
x chmod -c 0755 t/empty
x chmod --reference=t/priv/key t/empty-file
x chown --reference=t/group t/with\ space
# mkfifo -m and mknod -m set the mode after creating the node, through
# lchmod: glibc opens the node O_PATH and changes /proc/self/fd/N.
x mkfifo -m 0604 t/fifo-m
x mknod -m 0600 t/fifo-n p
x stat -c '%n %A %u:%g' t/a t/a/hello.txt t/a/b t/a/b/run.sh t/a/abs-link t/priv/key
finish
