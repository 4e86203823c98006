# A threaded python3 script: 16 threads create, write, rename, link and
# remove files and directories at once.
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
x /usr/bin/python3 "$CONFORMANCE_DATA/python/threads.py" out
finish
