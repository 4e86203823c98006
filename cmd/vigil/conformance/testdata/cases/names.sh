# The names creates, removes and renames act on at their edges: ".", ".."
# and trailing slashes over files, directories, symlinks and nothing (tar
# extracting an archive of "." calls mkdir("."); mkdir -p /var/run/ calls
# mkdir on a symlink with a trailing slash). Every errno is printed.
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
x /usr/bin/python3 "$CONFORMANCE_DATA/python/names.py"
mkdir -p src/a dst
printf 'hi\n' >src/a/f
stamp src
x tar -C src --sort=name -cf dot.tar .
x tar -C dst -xf dot.tar
finish
