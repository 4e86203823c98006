"""Anonymous memory files through Python's os module: memfd_create (plain,
sealed, no-exec, huge pages), reopening one through /proc/self/fd for
reading and writing, executing one (fexecve and through its /proc path)
and opening a shared anonymous mapping through /proc/self/map_files, as
sandboxes, runtimes that clone their own binary and JIT loaders do. Every
result or errno name is printed, so a bare run and a supervised one can be
compared line by line."""
import errno
import fcntl
import mmap
import os
import sys

MFD_NOEXEC_SEAL = 0x0008  # Linux 6.3; not in every Python's os module


def show(label, fn, *args):
    try:
        r = fn(*args)
        print(label, "ok", r if r is not None else "")
        return r
    except OSError as e:
        print(label, "err", errno.errorcode.get(e.errno, e.errno))
        return None


def reopen(fd, flags):
    n = os.open("/proc/self/fd/%d" % fd, flags | os.O_CLOEXEC)
    try:
        if flags & os.O_ACCMODE == os.O_RDONLY:
            return os.pread(n, 64, 0)
        return os.pwrite(n, b"W", 0)
    finally:
        os.close(n)


def run(label, exe):
    """Runs echo from exe in a child; prints its exit status."""
    pid = os.fork()
    if pid == 0:
        try:
            os.execve(exe, ["echo", label], {})
        except OSError as e:
            os._exit(100 + e.errno)
    print(label, "status", os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))


out = sys.argv[1]
fd = os.memfd_create("data", os.MFD_CLOEXEC)
os.write(fd, b"memfd contents\n")
print("link", os.readlink("/proc/self/fd/%d" % fd))
show("reopen-read", reopen, fd, os.O_RDONLY)
show("reopen-write", reopen, fd, os.O_RDWR)
show("reopen-append", reopen, fd, os.O_WRONLY | os.O_APPEND)
show("reopen-trunc", reopen, fd, os.O_RDWR | os.O_TRUNC)
os.write(fd, b"again\n")
print("contents", os.pread(fd, 64, 0))
with open(os.path.join(out, "from-memfd"), "wb") as f:
    f.write(os.pread(fd, 64, 0))

sealed = os.memfd_create("sealed", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
os.write(sealed, b"sealed\n")
fcntl.fcntl(sealed, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
show("sealed-reopen-read", reopen, sealed, os.O_RDONLY)
show("sealed-reopen-write", reopen, sealed, os.O_RDWR)

with open("/bin/echo", "rb") as f:
    prog = f.read()
exe = os.memfd_create("echo", os.MFD_CLOEXEC)
os.write(exe, prog)
run("fexecve", exe)
# Not CLOEXEC: the exec through /proc/self/fd needs it open in the child.
exe2 = os.memfd_create("echo2", 0)
os.write(exe2, prog)
run("exec-proc-path", "/proc/self/fd/%d" % exe2)
noexec = show("noexec-create", os.memfd_create, "noexec", os.MFD_CLOEXEC | MFD_NOEXEC_SEAL)
if noexec is not None:
    os.write(noexec, prog)
    run("noexec-fexecve", noexec)

huge = show("huge-create", os.memfd_create, "huge", os.MFD_CLOEXEC | os.MFD_HUGETLB)
if huge is not None:
    print("huge-link", os.readlink("/proc/self/fd/%d" % huge))
    n = show("huge-reopen", os.open, "/proc/self/fd/%d" % huge, os.O_RDONLY | os.O_CLOEXEC)
    if n is not None:
        os.close(n)

m = mmap.mmap(-1, mmap.PAGESIZE, flags=mmap.MAP_SHARED)
m.write(b"shared anonymous\n")
with open("/proc/self/maps") as f:
    span = next(l.split()[0] for l in f if l.rstrip().endswith("/dev/zero (deleted)"))
n = show("map-files-open", os.open, "/proc/self/map_files/" + span, os.O_RDONLY | os.O_CLOEXEC)
if n is not None:
    print("map-files-read", os.pread(n, 17, 0))
    os.close(n)
