# Anonymous memory files (memfd_create, /proc/self/fd reopening, fexecve,
# /proc/self/map_files) from python3: objects on the kernel's internal
# mounts, which no mount table shows.
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
x /usr/bin/python3 "$CONFORMANCE_DATA/python/memfd.py" .
finish
