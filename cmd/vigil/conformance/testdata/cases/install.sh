# install -D and -d: create leading directories, set modes and owners,
# preserve times, compare and skip.
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 027
printf 'one\n' >one
printf '#!/bin/sh\necho two\n' >two.sh
touch -d @1600000000 one
x install -D -m 0640 -o 1234 -g 5678 one deep/a/b/c/one
x install -D two.sh bin/two
x install -d -m 0711 dirs/x dirs/y/z
x install -d -o 65534 -g 65534 owned
x install -p -m 0600 one preserved
x install -C -m 0640 -o 1234 -g 5678 one deep/a/b/c/one
x install -t dirs/x -m 0444 one two.sh
x install -b -m 0644 two.sh preserved
x install -D -T one tdir/file
x bin/two
finish
