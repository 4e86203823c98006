# Extended attributes set, listed and removed by python3 (setxattr,
# listxattr, removexattr and their l*/f* forms) on files, a directory,
# through a symlink and through a descriptor.
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
x /usr/bin/python3 "$CONFORMANCE_DATA/python/xattrs.py" x
finish
