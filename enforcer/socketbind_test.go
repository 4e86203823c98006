package enforcer_test

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// bindScript binds sockets of every family and spelling in the directory
// argv[1] and prints what the kernel made of each: the name getsockname
// gives back, the socket file's owner and mode, the errno.
const bindScript = `
import os, socket, stat, sys
os.chdir(sys.argv[1])
os.makedirs("d/e", exist_ok=True)
os.mkdir("locked", 0o755)
keep = []
def ub(p, fam=socket.AF_UNIX):
    lab = repr(p).replace(os.getcwd(), "CWD").replace(os.path.basename(os.getcwd()), "BASE")
    s = socket.socket(fam)
    keep.append(s)
    try:
        s.bind(p)
    except OSError as e:
        print(lab, "errno", e.errno)
        return s
    name = s.getsockname()
    if fam == socket.AF_UNIX and p and p[0] != "\0":
        st = os.lstat(p)
        print(lab, "name", name == p, stat.S_ISSOCK(st.st_mode), st.st_uid, st.st_gid, oct(st.st_mode & 0o7777))
    elif fam == socket.AF_UNIX:
        print(repr(p[:1]), "bound", len(name) > 1)
    else:
        print(lab, "bound", name[1] > 0 if isinstance(p, tuple) else True)
    return s
cwd = os.getcwd()
for p in ["rel.sock", "./dot.sock", "d/e/deep.sock", "d/../up.sock", cwd + "/d/abs.sock",
          "/" + cwd + "/d/e/./dbl.sock", "rel.sock", "nodir/x.sock", "d/e/deep.sock/",
          "d/e/new.sock/", cwd + "/d/e/../back.sock", "d/e/../../d/back2.sock", "../" + os.path.basename(cwd) + "/d/../up2.sock",
          "\0vigil-bind-test-%d" % os.getpid(), ""]:
    ub(p)
srv = ub(cwd + "/d/e/srv.sock")
srv.listen(1)
c = socket.socket(socket.AF_UNIX)
c.connect("d/e/srv.sock")
a, _ = srv.accept()
a.send(b"hello")
print("client got", c.recv(5), "peer", c.getpeername() == cwd + "/d/e/srv.sock")
os.umask(0o077)
ub("private.sock")
ub(("127.0.0.1", 0), socket.AF_INET)
ub(("::1", 0), socket.AF_INET6)
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
i4 = socket.socket()
sun = (ctypes.c_char * 110)(*(b"\x01\x00" + b"d/inet.sock\0"))
print("unix path on an inet socket", libc.bind(i4.fileno(), sun, 16), ctypes.get_errno(), os.path.exists("d/inet.sock"))
n = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
n.bind((0, 0))
n2 = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
n2.bind((0, 0))
print("netlink port ids", n.getsockname()[0] == os.getpid(), n2.getsockname()[0] not in (0, os.getpid()))
try:
    n.bind((0, 0))
except OSError as e:
    print("netlink rebind errno", e.errno)
os.setgid(65534); os.setuid(65534)
ub("locked/nobody.sock")
ub(("127.0.0.1", 80), socket.AF_INET)
ub(("127.0.0.1", 0), socket.AF_INET)
`

// TestBindIsPerformedAsTheKernelWouldBind: under a policy whose bind rules
// look at addresses, vigil performs every bind (socketbind.go) from its own
// copy of the address. Real software must not see the difference: the same
// names back from getsockname and getpeername (a relative name stays
// relative), the same socket files with the same owner and mode (umask),
// the port id the kernel gives a netlink socket (the caller's pid),
// the same errors (EADDRINUSE, ENOENT, a trailing slash, EACCES for a
// directory or a low port the caller may not use), and a socket that works.
func TestBindIsPerformedAsTheKernelWouldBind(t *testing.T) {
	testenv.RequirePrivileged(t)
	pol := mustPolicy(t, "version: 1\nrules:\n  - syscalls: [bind]\n    match: { addr: [\"unix:/var/empty/vigil-denied/*\", \"127.0.0.1:9\"] }\n    action: deny\n")
	want, r := pythonAsBare(t, pol, "binds", bindScript, 0)
	if !strings.Contains(want, "'rel.sock' name True True 0 0 0o755") || !strings.Contains(want, "errno 13") {
		t.Fatalf("the script did not exercise what it should:\n%s", want)
	}
	n := performed(t, r.records, func(m *audit.Record) bool { return m.Syscall == "bind" })
	if n < 15 {
		t.Errorf("%d binds performed by vigil, want every allowed one (at least 15)", n)
	}
}

// TestBindInAUserNamespace: the worker that serves a watchee in its own user
// and mount namespaces performs its binds, socket files owned by the
// watchee's ids as the host sees them.
func TestBindInAUserNamespace(t *testing.T) {
	testenv.RequirePrivileged(t)
	pol := mustPolicy(t, "version: 1\nrules:\n  - syscalls: [bind]\n    match: { addr: [\"unix:/var/empty/vigil-denied/*\"] }\n    action: deny\n")
	dir := t.TempDir()
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	py := `
import os, socket, sys
os.chdir(sys.argv[1])
os.makedirs("q/r")
for p in ["a.sock", os.getcwd() + "/q/r/b.sock", "q/../c.sock"]:
    s = socket.socket(socket.AF_UNIX)
    s.bind(p)
    print(p == s.getsockname(), os.lstat(p).st_uid)
`
	// The user namespace's root (host uid 100000) cannot search /root, where
	// a python3 found on PATH may live (pyenv).
	python := "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Fatalf("python3 outside /root: %v", err)
	}
	r := supervise(t, pol, []string{python, "-c", py, dir}, inUserNS())
	if r.code != 0 || r.stdout != "True 0\nTrue 0\nTrue 0\n" {
		t.Fatalf("binds in a user namespace: exit %d\n%s", r.code, r.stdout)
	}
	for _, name := range []string{"a.sock", "q/r/b.sock", "c.sock"} {
		st, err := os.Lstat(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode()&os.ModeSocket == 0 || st.Sys().(*syscall.Stat_t).Uid != 100000 {
			t.Errorf("%s: mode %v, owner %d; want a socket of host uid 100000", name, st.Mode(), st.Sys().(*syscall.Stat_t).Uid)
		}
	}
}

// TestBindIsRefusedOnASpellingVigilCannotLayOut: a socket path that walks
// back into the directory it ends in and on more often than one link in
// vigil's layout can mend (a/b/../../a/b/../x.sock) would make the kernel
// look a name up in the watchee's directory after vigil's layout handed it
// over, so vigil refuses it with a reason instead of creating the socket
// anywhere else.
func TestBindIsRefusedOnASpellingVigilCannotLayOut(t *testing.T) {
	testenv.RequirePrivileged(t)
	pol := mustPolicy(t, "version: 1\nrules:\n  - syscalls: [bind]\n    match: { addr: [\"unix:/var/empty/vigil-denied/*\"] }\n    action: deny\n")
	dir := t.TempDir()
	py := `
import os, socket, sys
os.chdir(sys.argv[1])
os.makedirs("a/b")
s = socket.socket(socket.AF_UNIX)
try:
    s.bind("a/b/../../a/b/../x.sock")
    print("bound")
except OSError as e:
    print("errno", e.errno)
`
	r := supervise(t, pol, []string{"python3", "-c", py, dir})
	if r.stdout != "errno 1\n" {
		t.Fatalf("got %q, want EPERM", r.stdout)
	}
	if _, err := os.Lstat(filepath.Join(dir, "a", "x.sock")); !os.IsNotExist(err) {
		t.Errorf("the refused bind made a socket file: %v", err)
	}
	recs := r.find("bind", "")
	if len(recs) != 1 || !strings.Contains(recs[0].Reason, "cannot emulate faithfully") {
		t.Errorf("want one refused record with a reason, got %+v", recs)
	}
}
