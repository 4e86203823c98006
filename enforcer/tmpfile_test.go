package enforcer_test

import (
	"strings"
	"testing"

	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// tmpfileScript makes O_TMPFILE files in argv[1] and links some of them in,
// printing what the kernel made of each.
const tmpfileScript = `
import ctypes, os, stat, sys
os.chdir(sys.argv[1])
os.makedirs("d")
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, AT_SYMLINK_FOLLOW, AT_EMPTY_PATH = -100, 0x400, 0x1000
def t(path, flags, mode=0o640, link=None, empty=False):
    try:
        fd = os.open(path, flags, mode)
    except OSError as e:
        print(path, "errno", e.errno)
        return
    st = os.fstat(fd)
    print(path, stat.S_ISREG(st.st_mode), oct(st.st_mode & 0o7777), st.st_uid, st.st_gid, st.st_nlink, os.get_inheritable(fd))
    if flags & os.O_ACCMODE != os.O_RDONLY:
        os.write(fd, b"data\n")
    if link:
        if empty:
            r = libc.linkat(fd, b"", AT_FDCWD, link.encode(), AT_EMPTY_PATH)
        else:
            r = libc.linkat(AT_FDCWD, b"/proc/self/fd/%d" % fd, AT_FDCWD, link.encode(), AT_SYMLINK_FOLLOW)
        if r != 0:
            print("link errno", ctypes.get_errno())
        else:
            print("linked", open(link).read().strip(), oct(os.stat(link).st_mode & 0o777), os.stat(link).st_nlink)
    os.close(fd)
t("d", os.O_TMPFILE | os.O_RDWR, link="d/a")
t("d", os.O_TMPFILE | os.O_WRONLY, link="d/b", empty=True)
t("d", os.O_TMPFILE | os.O_WRONLY | os.O_EXCL, link="d/c")
t("d", os.O_TMPFILE | os.O_RDONLY)
t("nodir", os.O_TMPFILE | os.O_RDWR)
t("d/a", os.O_TMPFILE | os.O_RDWR)
os.umask(0o077)
t(".", os.O_TMPFILE | os.O_RDWR, 0o666, link="umasked")
os.chmod("d", 0o2777)
os.chown("d", 0, 4242)
t("d", os.O_TMPFILE | os.O_RDWR, link="d/setgid")
os.setgid(65534); os.setuid(65534)
t(".", os.O_TMPFILE | os.O_RDWR)
t("d", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, link="d/nobody")
`

// TestTmpfileOpensArePerformed: an O_TMPFILE open under a rule that makes
// opens content-dependent is performed by vigil in the directory it vetted
// (no binding can name a new, nameless inode), and the watchee sees what
// the kernel would give it: the file's mode after the umask, owner, a
// setgid directory's group, errors, and a file it can link in afterwards.
func TestTmpfileOpensArePerformed(t *testing.T) {
	testenv.RequirePrivileged(t)
	pol := mustPolicy(t, "version: 1\nrules:\n  - syscalls: [open, openat, openat2]\n    match: { path: [\"/var/empty/vigil-denied/**\"] }\n    action: deny\n")
	want, r := pythonAsBare(t, pol, "O_TMPFILE opens", tmpfileScript, 0o777)
	if !strings.Contains(want, "linked data 0o640 1") || !strings.Contains(want, "4242") {
		t.Fatalf("the script did not exercise what it should:\n%s", want)
	}
	n := performed(t, r.records, func(m *audit.Record) bool { return strings.Contains(m.Args.Flags, "O_TMPFILE") })
	if n < 7 {
		t.Errorf("%d O_TMPFILE opens performed by vigil, want at least 7", n)
	}
}
