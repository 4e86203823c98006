"""Extended attributes through Python's os module (setxattr, getxattr,
listxattr, removexattr and their l*/f* forms): set, replace, list and
remove user.* attributes on files, directories, through a symlink and
through a descriptor, and print every result or errno name, so a bare run
and a supervised one can be compared line by line."""
import errno
import os
import sys


def show(label, fn, *args, **kw):
    try:
        r = fn(*args, **kw)
        if isinstance(r, list):
            r = sorted(r)
        print(label, "ok", r if r is not None else "")
    except OSError as e:
        print(label, "err", errno.errorcode.get(e.errno, e.errno))


d = sys.argv[1]
os.makedirs(os.path.join(d, "dir"))
f = os.path.join(d, "file")
with open(f, "w") as fh:
    fh.write("x")
os.symlink("file", os.path.join(d, "link"))
show("set", os.setxattr, f, "user.a", b"1")
show("set-create-again", os.setxattr, f, "user.a", b"2", os.XATTR_CREATE)
show("set-replace", os.setxattr, f, "user.a", b"3", os.XATTR_REPLACE)
show("set-b", os.setxattr, f, "user.b", b"")
show("set-dir", os.setxattr, os.path.join(d, "dir"), "user.d", b"dir")
show("get", os.getxattr, f, "user.a")
show("list", os.listxattr, f)
show("remove", os.removexattr, f, "user.a")
show("remove-again", os.removexattr, f, "user.a")
show("remove-through-link", os.removexattr, os.path.join(d, "link"), "user.b")
show("lremove-link", os.removexattr, os.path.join(d, "link"), "user.b", follow_symlinks=False)
show("remove-missing-file", os.removexattr, os.path.join(d, "missing"), "user.a")
show("remove-empty-name", os.removexattr, f, "")
show("remove-dir", os.removexattr, os.path.join(d, "dir"), "user.d")
fd = os.open(f, os.O_RDONLY)
show("fset", os.setxattr, fd, "user.f", b"fd")
show("flist", os.listxattr, fd)
show("fremove", os.removexattr, fd, "user.f")
show("fremove-again", os.removexattr, fd, "user.f")
os.close(fd)
show("list-end", os.listxattr, f)
show("list-dir-end", os.listxattr, os.path.join(d, "dir"))
