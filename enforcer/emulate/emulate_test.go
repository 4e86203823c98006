package emulate_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/launch"
	"github.com/vigilsec/vigil/enforcer/reexec"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

func TestMain(m *testing.M) {
	reexec.Run(launch.InitRole(), emulate.WorkerRole())
	if os.Getenv("VIGIL_EMULATE_CHILD") == "1" {
		os.Exit(runChild())
	}
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func newEmulator(t testing.TB) *emulate.Emulator {
	t.Helper()
	e, err := emulate.New(zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("closing emulator: %v", err)
		}
	})
	return e
}

// workDir returns a directory the user-namespace watchee owns (host uid
// hostBase) inside a world-searchable temporary directory.
func workDir(t testing.TB) (base, work string) {
	t.Helper()
	base = t.TempDir()
	// t.TempDir's own parent is private to root too.
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	work = filepath.Join(base, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(work, hostBase, hostBase); err != nil {
		t.Fatal(err)
	}
	return base, work
}

func caller(w *watchee) emulate.Caller { return emulate.Caller{Pid: w.pid, Tid: w.pid} }

// outcome renders an emulation's result like the child does, so the two can
// be compared as strings.
func outcome(r emulate.Result, err error) string {
	if err != nil {
		var e unix.Errno
		if errors.As(err, &e) {
			return "err " + unix.ErrnoName(e)
		}
		return "fail " + err.Error()
	}
	if r.Fd >= 0 {
		unix.Close(r.Fd)
	}
	if r.Errno != 0 {
		return "err " + unix.ErrnoName(r.Errno)
	}
	return "ok"
}

// prepErr renders a preparation failure as the watchee would see it.
func prepErr(err error) string { return outcome(emulate.Result{Fd: -1}, err) }

func statOf(t testing.TB, p string) (uid, gid, mode uint32) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatalf("stat %s: %v", p, err)
	}
	return st.Uid, st.Gid, st.Mode
}

func mkdev(maj, min uint32) uint64 { return unix.Mkdev(maj, min) }

// emulated runs prepare+do for a LookupParent call.
func emulated(e *emulate.Emulator, c emulate.Caller, path string, lookup emulate.Lookup, do func(p *emulate.Prepared) (emulate.Result, error)) string {
	p, err := e.PrepareAt(c, unix.AT_FDCWD, path, lookup)
	if err != nil {
		return prepErr(err)
	}
	defer p.Close()
	return outcome(do(p))
}

func TestMknodLendsWhitelistedDeviceInUserNamespace(t *testing.T) {
	testenv.RequirePrivileged(t)
	_, work := workDir(t)
	w := startWatchee(t, childOpts{userns: true, dir: work})
	e := newEmulator(t)
	c := caller(w)
	w.must("umask 027")

	// Without vigil the watchee cannot create a device node at all.
	if got := w.do("mknod own 20666 1 3"); got != "err EPERM" {
		t.Fatalf("watchee's own mknod c 1:3 = %s, want err EPERM", got)
	}
	// Emulated without lending: exactly the watchee's answer.
	if got := emulated(e, c, "plain", emulate.LookupParent, func(p *emulate.Prepared) (emulate.Result, error) {
		return e.Mknodat(p, unix.S_IFCHR|0o666, mkdev(1, 3), false)
	}); got != "err EPERM" {
		t.Fatalf("emulated mknod without lend = %s, want err EPERM", got)
	}
	// Lent: created, owned and moded as the watchee's own node would be.
	if got := emulated(e, c, "null", emulate.LookupParent, func(p *emulate.Prepared) (emulate.Result, error) {
		if p.Path != filepath.Join(work, "null") || p.Exists {
			t.Errorf("prepared %q exists=%v, want %q missing", p.Path, p.Exists, filepath.Join(work, "null"))
		}
		return e.Mknodat(p, unix.S_IFCHR|0o666, mkdev(1, 3), true)
	}); got != "ok" {
		t.Fatalf("emulated mknod c 1:3 with lend = %s, want ok", got)
	}
	node := filepath.Join(work, "null")
	uid, gid, mode := statOf(t, node)
	if uid != hostBase || gid != hostBase || mode != unix.S_IFCHR|0o640 {
		t.Errorf("node owner %d:%d mode %o, want %d:%d %o", uid, gid, mode, hostBase, hostBase, unix.S_IFCHR|0o640)
	}
	var st unix.Stat_t
	_ = unix.Stat(node, &st)
	if st.Rdev != mkdev(1, 3) {
		t.Errorf("node rdev %#x, want 1:3", st.Rdev)
	}
	// The node works for the watchee (echo > node).
	if got := w.do("write null hello"); got != "ok" {
		t.Errorf("watchee writing to the emulated node: %s", got)
	}
	// A repeat is the kernel's EEXIST, not a second node.
	if got := emulated(e, c, "null", emulate.LookupParent, func(p *emulate.Prepared) (emulate.Result, error) {
		return e.Mknodat(p, unix.S_IFCHR|0o666, mkdev(1, 3), true)
	}); got != "err EEXIST" {
		t.Errorf("repeated mknod = %s, want err EEXIST", got)
	}

	// nodev: refused as the kernel would (EPERM), nothing created.
	w.must("mkdir nd 0755")
	w.must("mount-tmpfs nd nodev")
	if got := emulated(e, c, "nd/null", emulate.LookupParent, func(p *emulate.Prepared) (emulate.Result, error) {
		return e.Mknodat(p, unix.S_IFCHR|0o666, mkdev(1, 3), true)
	}); got != "err EPERM" {
		t.Errorf("mknod on a nodev mount = %s, want err EPERM", got)
	}
	if got := w.do("stat nd/null"); got != "err ENOENT" {
		t.Errorf("after refused mknod on nodev: stat = %s, want err ENOENT", got)
	}
	// The tmpfs is mounted in the watchee's mount namespace only: the
	// emulation ran there (vigil's view has no mount at work/nd).
	if sameFS(t, filepath.Join(work, "nd"), work) == false {
		t.Errorf("the watchee's tmpfs leaked into vigil's mount namespace")
	}

	// A directory the watchee cannot write: its own EACCES, no lending.
	locked := filepath.Join(work, "locked")
	if err := os.Mkdir(locked, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, want := emulated(e, c, "locked/null", emulate.LookupParent, func(p *emulate.Prepared) (emulate.Result, error) {
		return e.Mknodat(p, unix.S_IFCHR|0o666, mkdev(1, 3), true)
	}), w.do("mknod locked/own 20666 1 3"); got != want || got != "err EACCES" {
		t.Errorf("mknod in a root-owned directory: emulated %s, watchee %s, want err EACCES", got, want)
	}
}

func sameFS(t testing.TB, a, b string) bool {
	var sa, sb unix.Stat_t
	if err := unix.Stat(a, &sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(b, &sb); err != nil {
		t.Fatal(err)
	}
	return sa.Dev == sb.Dev
}

func TestSetxattrLendsTrustedOverlayName(t *testing.T) {
	testenv.RequirePrivileged(t)
	_, work := workDir(t)
	w := startWatchee(t, childOpts{userns: true, dir: work})
	e := newEmulator(t)
	c := caller(w)
	w.must("mkdir d 0755")

	if got := w.do("setxattr d trusted.overlay.opaque y"); got != "err EPERM" {
		t.Fatalf("watchee's own setxattr trusted.overlay.opaque = %s, want err EPERM", got)
	}
	set := func(path, name string, lend bool) string {
		return emulated(e, c, path, emulate.LookupFollow, func(p *emulate.Prepared) (emulate.Result, error) {
			return e.Setxattr(p, name, []byte("y"), 0, lend)
		})
	}
	if got := set("d", "trusted.overlay.opaque", false); got != "err EPERM" {
		t.Errorf("emulated without lend = %s, want err EPERM", got)
	}
	if got := set("d", "trusted.overlay.opaque", true); got != "ok" {
		t.Fatalf("emulated with lend = %s, want ok", got)
	}
	buf := make([]byte, 16)
	n, err := unix.Getxattr(filepath.Join(work, "d"), "trusted.overlay.opaque", buf)
	if err != nil || string(buf[:n]) != "y" {
		t.Errorf("trusted.overlay.opaque on d = %q, %v; want \"y\"", buf[:n], err)
	}
	// user.* needs no lending: the emulation is the watchee's own call.
	if got, want := set("d", "user.x", false), w.do("setxattr d user.y y"); got != want || got != "ok" {
		t.Errorf("user.* xattr: emulated %s, watchee %s", got, want)
	}
	// Lending never extends to objects the watchee may not write.
	root := filepath.Join(work, "rootdir")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if got := set("rootdir", "trusted.overlay.opaque", true); got != "err EPERM" {
		t.Errorf("lent setxattr on a root-owned directory = %s, want err EPERM", got)
	}
	if _, err := unix.Getxattr(root, "trusted.overlay.opaque", buf); err != unix.ENODATA {
		t.Errorf("root-owned directory got the xattr: %v", err)
	}
}

func TestCreateMatchesWatcheeOwnCall(t *testing.T) {
	testenv.RequirePrivileged(t)
	for _, tc := range []struct {
		name string
		opts func(work string) childOpts
		// setup prepares the watchee's working directory as root.
		owner int
	}{
		{"userns", func(work string) childOpts { return childOpts{userns: true, dir: work} }, hostBase},
		{"host-user", func(work string) childOpts {
			return childOpts{dir: work, cred: &syscall.Credential{Uid: 1000, Gid: 1000, Groups: []uint32{2000}}}
		}, 1000},
		// `unshare -Ur` in a container: the worker joined the user
		// namespace first and then could not join the mount namespace
		// (EPERM).
		{"userns-in-outer-mounts", func(work string) childOpts {
			return childOpts{dir: work, wrap: userNSInOuterMounts}
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, work := workDir(t)
			if err := os.Chown(work, tc.owner, tc.owner); err != nil {
				t.Fatal(err)
			}
			// A setgid directory whose group the watchee is not in
			// primarily: new entries inherit its group.
			sg := filepath.Join(work, "sg")
			if err := os.Mkdir(sg, 0o777); err != nil {
				t.Fatal(err)
			}
			if err := os.Chown(sg, tc.owner, tc.owner+7); err != nil {
				t.Fatal(err)
			}
			if err := unix.Chmod(sg, 0o2777); err != nil {
				t.Fatal(err)
			}
			w := startWatchee(t, tc.opts(work))
			e := newEmulator(t)
			c := caller(w)
			for _, umask := range []string{"022", "027", "0", "077"} {
				w.must("umask %s", umask)
				for _, dir := range []string{"", "sg/"} {
					own, emu := dir+"own"+umask, dir+"emu"+umask
					// mkdir
					if got := w.do("mkdir %sd 0777", own); got != "ok" {
						t.Fatalf("watchee mkdir: %s", got)
					}
					if got := emulated(e, c, emu+"d", emulate.LookupParent, func(p *emulate.Prepared) (emulate.Result, error) {
						return e.Mkdirat(p, 0o777)
					}); got != "ok" {
						t.Fatalf("emulated mkdir: %s", got)
					}
					compareStat(t, filepath.Join(work, own+"d"), filepath.Join(work, emu+"d"))
					// open(O_CREAT)
					flags := unix.O_CREAT | unix.O_WRONLY
					if got := w.do("open %sf %#x 0666", own, flags); got != "ok" {
						t.Fatalf("watchee open: %s", got)
					}
					if got := emulatedOpen(t, e, c, emu+"f", emulate.OpenHowFromFlags(flags, 0o666)); got != "ok" {
						t.Fatalf("emulated open: %s", got)
					}
					compareStat(t, filepath.Join(work, own+"f"), filepath.Join(work, emu+"f"))
				}
			}
		})
	}
}

func compareStat(t testing.TB, own, emu string) {
	t.Helper()
	ou, og, om := statOf(t, own)
	eu, eg, em := statOf(t, emu)
	if ou != eu || og != eg || om != em {
		t.Errorf("%s: emulated %d:%d %o, watchee's own %s %d:%d %o", emu, eu, eg, em, own, ou, og, om)
	}
}

// emulatedOpen runs PrepareOpen+Open and closes the result.
func emulatedOpen(t testing.TB, e *emulate.Emulator, c emulate.Caller, path string, how unix.OpenHow) string {
	t.Helper()
	p, err := e.PrepareOpen(c, unix.AT_FDCWD, path, how)
	if err != nil {
		return prepErr(err)
	}
	defer p.Close()
	r, err := e.Open(p)
	// O_TMPFILE opens a new file in the vetted directory, not the directory.
	if err == nil && r.Errno == 0 && how.Flags&unix.O_TMPFILE != unix.O_TMPFILE {
		var st unix.Stat_t
		if ferr := unix.Fstat(r.Fd, &st); ferr != nil || (p.Exists && (st.Dev != p.Dev || st.Ino != p.Ino)) {
			t.Errorf("open of %s returned %d:%d, prepared %d:%d", path, st.Dev, st.Ino, p.Dev, p.Ino)
		}
	}
	return outcome(r, err)
}

var _ = strings.TrimSpace
