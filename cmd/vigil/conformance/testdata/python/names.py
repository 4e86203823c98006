"""The names a create, remove or rename acts on, at their edges: ".", ".."
and trailing slashes over files, directories, symlinks and nothing. The
kernel fails most of these calls with an errno the call and the name decide
(mkdir("d/f/") is EEXIST, unlink("d/link/") ENOTDIR, rmdir("..") ENOTEMPTY,
rename onto "." EBUSY, open("x/", O_CREAT) EISDIR); each is printed, so a
supervised run must give the same errno and leave the same tree. Paths stay
inside the current directory. Not covered: a rename whose source is missing
onto "." or into a file's "directory" (the kernel checks the names before the
source, vigil the source first)."""
import errno
import os
import shutil

PATHS = ["new/", "d/sub/", "d/f/", "d/f//", "new2//", "d/link/", "d/dangling/",
         ".", "..", "./", "d/.", "d/..", "d/sub/..", "nonexist/.", "d/f/.", "d/./.",
         "d/.//", "nonexist/new", "d/f/new"]

OPS = {
    "mkdir": lambda p: os.mkdir(p),
    "mkfifo": lambda p: os.mkfifo(p),
    "symlink": lambda p: os.symlink("target", p),
    "link": lambda p: os.link("d/f", p),
    "unlink": lambda p: os.unlink(p),
    "rmdir": lambda p: os.rmdir(p),
    "rename-from": lambda p: os.rename(p, "d/renamed"),
    "rename-dir-to": lambda p: os.rename("d/sub", p),
    "rename-file-to": lambda p: os.rename("d/f", p),
    "open-creat": lambda p: os.close(os.open(p, os.O_CREAT | os.O_WRONLY, 0o600)),
    "open-creat-excl": lambda p: os.close(os.open(p, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)),
}


def reset():
    for q in ("d", "new", "new2"):
        shutil.rmtree(q, ignore_errors=True)
        try:
            os.unlink(q)
        except OSError:
            pass
    os.makedirs("d/sub")
    open("d/f", "w").close()
    os.symlink("sub", "d/link")
    os.symlink("nothing", "d/dangling")


def outcome(op, path):
    reset()
    try:
        op(path)
    except OSError as e:
        return errno.errorcode[e.errno]
    return "ok " + " ".join(sorted(os.listdir(".")) + sorted(os.listdir("d")))


def main():
    os.mkdir("work")
    os.chdir("work")
    for name, op in OPS.items():
        for path in PATHS:
            print(name, path, outcome(op, path))
    reset()


if __name__ == "__main__":
    main()
