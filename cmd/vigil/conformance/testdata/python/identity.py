"""One process that keeps changing what its file operations depend on —
umask, effective and file-system ids, supplementary groups, capabilities,
root — and creates, opens and removes files after each change, from the main
thread and from threads. Prints what every step returned and what it made.

The emulator reuses what it read of a thread's credentials while nothing
could have changed them; any stale reuse shows up here as a different mode,
owner or errno than the kernel's own."""
import ctypes
import errno
import os
import sys
import threading

root = os.path.abspath(sys.argv[1])
os.makedirs(root, exist_ok=True)
libc = ctypes.CDLL(None, use_errno=True)
SYS_setfsuid, SYS_setfsgid, SYS_capset, SYS_capget = 122, 123, 126, 125


def step(label, fn):
    try:
        r = fn()
        print(f"{label}: ok{'' if r is None else ' ' + str(r)}")
    except OSError as e:
        print(f"{label}: {errno.errorcode.get(e.errno, e.errno)}")


def create(path, mode=0o666):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    os.write(fd, b"x")
    os.close(fd)
    st = os.stat(path)
    return f"{oct(st.st_mode & 0o7777)} {st.st_uid}:{st.st_gid}"


def raw(nr, *args):
    r = libc.syscall(nr, *args)
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


# A directory only root may write to, one anyone may, one for group 4242.
shared = os.path.join(root, "shared")
private = os.path.join(root, "private")
grp = os.path.join(root, "grp")
for d, mode in ((shared, 0o1777), (private, 0o755), (grp, 0o770)):
    os.mkdir(d)
    os.chmod(d, mode)
os.chown(grp, 0, 4242)

# umask, changed between calls of the same thread.
for i, mask in enumerate((0o022, 0o077, 0o000, 0o027, 0o022)):
    os.umask(mask)
    step(f"umask {oct(mask)}", lambda: create(os.path.join(shared, f"u{i}")))

# Effective ids: glibc changes every thread's (setresuid on each).
os.setegid(65534)
os.seteuid(65534)
step("euid nobody, shared", lambda: create(os.path.join(shared, "nobody")))
step("euid nobody, private", lambda: create(os.path.join(private, "nobody")))
os.seteuid(0)
os.setegid(0)
step("euid root, private", lambda: create(os.path.join(private, "root")))

# File-system ids alone (setfsuid is per thread, no glibc broadcast).
raw(SYS_setfsgid, 1000)
raw(SYS_setfsuid, 1000)
step("fsuid 1000, shared", lambda: create(os.path.join(shared, "fs1000")))
step("fsuid 1000, private", lambda: create(os.path.join(private, "fs1000")))
raw(SYS_setfsuid, 0)
raw(SYS_setfsgid, 0)
step("fsuid 0, private", lambda: create(os.path.join(private, "fs0")))

# Supplementary groups decide access to grp as a non-root fsuid.
for groups in ([], [4242], []):
    os.setgroups(groups)
    raw(SYS_setfsuid, 1000)
    step(f"groups {groups}, grp", lambda: create(os.path.join(grp, f"g{len(groups)}{os.getpid() % 1}")))
    raw(SYS_setfsuid, 0)
    for n in os.listdir(grp):
        os.unlink(os.path.join(grp, n))
os.setgroups([])

# Capabilities: without CAP_DAC_OVERRIDE root cannot write into a 0755
# directory another user owns; with it back, it can.
other = os.path.join(root, "other")
os.mkdir(other)
os.chown(other, 1000, 1000)
os.chmod(other, 0o755)


class CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


hdr = CapHeader(0x20080522, 0)
data = (CapData * 2)()
raw(SYS_capget, ctypes.byref(hdr), ctypes.byref(data))
saved = data[0].effective
data[0].effective = saved & ~(1 << 1)  # CAP_DAC_OVERRIDE
raw(SYS_capset, ctypes.byref(hdr), ctypes.byref(data))
step("without CAP_DAC_OVERRIDE", lambda: create(os.path.join(other, "nocap")))
data[0].effective = saved
raw(SYS_capset, ctypes.byref(hdr), ctypes.byref(data))
step("with CAP_DAC_OVERRIDE", lambda: create(os.path.join(other, "cap")))

# Threads: each changes its own umask view (shared by the process) in turn
# and creates; joined one by one so that the order is fixed.
def worker(n):
    os.umask(0o077 if n % 2 else 0o022)
    step(f"thread {n}", lambda: create(os.path.join(shared, f"t{n}")))


for n in range(6):
    t = threading.Thread(target=worker, args=(n,))
    t.start()
    t.join()
os.umask(0o022)

# Root: the same absolute name means another file after chroot.
jail = os.path.join(root, "jail")
os.mkdir(jail)
step("before chroot", lambda: create("/" + os.path.relpath(os.path.join(shared, "abs"), "/")))
outer = os.open("/", os.O_PATH)
os.chroot(jail)
os.chdir("/")
step("after chroot", lambda: create("/inside"))
step("after chroot, again", lambda: os.unlink("/inside"))
step("after chroot, recreate", lambda: create("/inside"))
os.fchdir(outer)
os.chroot(".")
step("back out", lambda: create(os.path.join(shared, "out")))

for d in (shared, private, grp, other, jail):
    for n in sorted(os.listdir(d)):
        st = os.lstat(os.path.join(d, n))
        print(f"{os.path.basename(d)}/{n} {oct(st.st_mode & 0o7777)} {st.st_uid}:{st.st_gid}")
