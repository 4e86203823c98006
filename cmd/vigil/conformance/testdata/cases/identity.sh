# One python3 process that changes its umask, effective and file-system ids,
# supplementary groups, capabilities and root between file operations, and
# prints what each returned and what it made (modes, owners).
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
x /usr/bin/python3 "$CONFORMANCE_DATA/python/identity.py" id
finish
