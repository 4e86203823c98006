# unshare(1) building its own user namespace, and a mount namespace in it, as
# rootless container tools do: after unshare(2) it writes its id maps through
# /proc, then the shell creates, appends to, reads and lists files as the
# namespace's root, mounts a tmpfs of its own and binds AF_UNIX sockets.
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
x unshare -Ur sh -c 'echo one >a; cat a; mkdir d; echo two >>d/b; echo three >>d/b; cat d/b; id -u; stat -c "%u %g %s %a %n" d d/b'
x unshare -Urm sh -c 'mkdir m && mount -t tmpfs none m && echo inner >m/f && cat m/f && umount m && rmdir m; echo four >c; cat c'
# AF_UNIX sockets bound by the namespace's root under names with directories,
# one of them passing the socket's directory and coming back to it.
x unshare -Ur python3 -c '
import os, socket
os.makedirs("s/t")
for name in ["s/a.sock", "s/t/../b.sock", os.getcwd() + "/s/c.sock"]:
    s = socket.socket(socket.AF_UNIX)
    s.bind(name)
    print(s.getsockname() == name, oct(os.stat(name).st_mode))
'
finish
