package resolve

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// tree builds a directory with files, symlinks and loops to resolve, and
// returns its real path (t.TempDir may itself sit behind a symlink).
func tree(t *testing.T) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(d, "a/b"), 0o755))
	must(os.WriteFile(filepath.Join(d, "a/b/file"), nil, 0o644))
	must(os.WriteFile(filepath.Join(d, "secret"), nil, 0o644))
	must(os.Symlink("b/file", filepath.Join(d, "a/rel")))
	must(os.Symlink(filepath.Join(d, "secret"), filepath.Join(d, "a/abs")))
	must(os.Symlink("../secret", filepath.Join(d, "a/up")))
	must(os.Symlink("a/b", filepath.Join(d, "dirlink")))
	must(os.Symlink("loop2", filepath.Join(d, "loop1")))
	must(os.Symlink("loop1", filepath.Join(d, "loop2")))
	must(os.Symlink(filepath.Join(d, "newtarget"), filepath.Join(d, "dangling")))
	return d
}

type lookup struct {
	name      string
	path      string // relative paths are joined to the tree, "@" prefix keeps them relative to dirfd
	follow    bool
	mayCreate bool
	want      string // expected path relative to the tree, or "!ERRNO"
}

func lookups() []lookup {
	return []lookup{
		{"plain file", "a/b/file", true, false, "a/b/file"},
		{"relative symlink", "a/rel", true, false, "a/b/file"},
		{"absolute symlink", "a/abs", true, false, "secret"},
		{"dotdot symlink", "a/up", true, false, "secret"},
		{"symlink in the middle", "dirlink/file", true, false, "a/b/file"},
		{"nofollow keeps the link", "a/abs", false, false, "a/abs"},
		{"dotdot after symlinked dir", "dirlink/../b/file", true, false, "a/b/file"},
		{"dot components", "./a/./b/./file", true, false, "a/b/file"},
		{"trailing slash on a dir", "a/b/", true, false, "a/b"},
		{"trailing slash on a file", "a/b/file/", true, false, "!ENOTDIR"},
		{"file used as a dir", "a/b/file/x", true, false, "!ENOTDIR"},
		{"missing", "a/nope", true, false, "!ENOENT"},
		{"missing parent", "nope/x", true, true, "!ENOENT"},
		{"create in place", "a/new", true, true, "a/new"},
		{"create through a symlinked dir", "dirlink/new", true, true, "a/b/new"},
		{"create through a dangling symlink", "dangling", true, true, "newtarget"},
		{"dangling symlink without follow", "dangling", false, true, "dangling"},
		{"symlink loop", "loop1", true, false, "!ELOOP"},
		{"symlink loop as a dir", "loop1/x", false, false, "!ELOOP"},
		{"relative to dirfd", "@b/file", true, false, "a/b/file"},
		{"relative dotdot from dirfd", "@../secret", true, false, "secret"},
	}
}

func check(t *testing.T, r *Resolver, root string, ownRoot bool) {
	t.Helper()
	dirfd, err := unix.Open(filepath.Join(root, "a"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dirfd)
	for _, l := range lookups() {
		req := Request{Tid: unix.Gettid(), Tgid: os.Getpid(), Dirfd: unix.AT_FDCWD,
			Follow: l.follow, MayCreate: l.mayCreate, OwnRoot: ownRoot}
		if strings.HasPrefix(l.path, "@") {
			req.Path, req.Dirfd = l.path[1:], dirfd
		} else {
			req.Path = root + "/" + l.path // not filepath.Join: it would clean away the ".."
		}
		obj, err := r.Resolve(req)
		if strings.HasPrefix(l.want, "!") {
			if err == nil {
				t.Errorf("%s (%s): got %q, want error %s", l.name, req.Path, obj.Path, l.want[1:])
			} else if e, ok := err.(unix.Errno); !ok || unix.ErrnoName(e) != l.want[1:] {
				t.Errorf("%s: error %v, want %s", l.name, err, l.want[1:])
			}
			continue
		}
		if err != nil {
			t.Errorf("%s (%s): %v", l.name, req.Path, err)
			continue
		}
		if want := filepath.Join(root, l.want); obj.Path != want {
			t.Errorf("%s: resolved %q, want %q", l.name, obj.Path, want)
		}
	}
}

// The fast paths (lexical, openat2) and the component walk must agree on
// every lookup: the walk is the fallback for whatever the fast paths cannot
// settle, so a divergence would be a policy bypass in one of them.
func TestFastPathsAndWalkAgree(t *testing.T) {
	root := tree(t)
	for _, mode := range []struct {
		name      string
		ownRoot   bool
		forceWalk bool
	}{{"lexical", true, false}, {"proc-root", false, false}, {"walk", false, true}} {
		t.Run(mode.name, func(t *testing.T) {
			r, err := New()
			if err != nil {
				t.Fatal(err)
			}
			r.forceWalk = mode.forceWalk
			check(t, r, root, mode.ownRoot)
		})
	}
}

// watchee starts a sleeping child holding extra as its fd 3, so lookups can
// be made in another process's view than the resolver's own.
func watchee(t *testing.T, extra *os.File) int {
	t.Helper()
	cmd := exec.Command("sleep", "60")
	if extra != nil {
		cmd.ExtraFiles = []*os.File{extra}
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd.Process.Pid
}

func TestProcSelfNamesTheWatcheeNotVigil(t *testing.T) {
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	root := tree(t)
	f, err := os.Open(filepath.Join(root, "secret"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pid := watchee(t, f)
	// The watchee's fd 3 is the secret; vigil's fd 3 is something else.
	// /proc/self must be rewritten to the watchee's pid (not followed as
	// vigil's), and the fd magic link then lands on the secret.
	for _, p := range []string{"/proc/self/fd/3", "/proc/thread-self/fd/3", "/dev/fd/3"} {
		for _, own := range []bool{true, false} {
			obj, err := r.Resolve(Request{Tid: pid, Tgid: pid, Dirfd: unix.AT_FDCWD, Path: p, Follow: true, OwnRoot: own})
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if obj.Path != filepath.Join(root, "secret") {
				t.Fatalf("%s (ownRoot %v) resolved to %q", p, own, obj.Path)
			}
		}
	}
	// Plain procfs symlinks through self (mounts -> self/mounts) too.
	obj, err := r.Resolve(Request{Tid: pid, Tgid: pid, Dirfd: unix.AT_FDCWD, Path: "/proc/mounts", Follow: true, OwnRoot: true})
	if err != nil {
		t.Fatal(err)
	}
	if want := "/proc/" + strconv.Itoa(pid) + "/mounts"; obj.Path != want {
		t.Fatalf("/proc/mounts resolved to %q, want %q", obj.Path, want)
	}
}

// Every path that settles a lookup must report the object's identity when
// asked: a kernel binding with a zero inode would kill every bound call.
func TestIdentityOnEveryPath(t *testing.T) {
	root := tree(t)
	var want unix.Stat_t
	if err := unix.Stat(filepath.Join(root, "a/b/file"), &want); err != nil {
		t.Fatal(err)
	}
	var wantDir unix.Stat_t
	if err := unix.Stat(filepath.Join(root, "a"), &wantDir); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []struct {
		own, walk bool
	}{{true, false}, {false, false}, {false, true}} {
		r, _ := New()
		r.forceWalk = mode.walk
		base := Request{Tid: unix.Gettid(), Tgid: os.Getpid(), Dirfd: unix.AT_FDCWD, Follow: true, OwnRoot: mode.own, Identity: true}
		req := base
		req.Path = root + "/a/rel"
		obj, err := r.Resolve(req)
		if err != nil || obj.Dev != want.Dev || obj.Ino != want.Ino || !obj.Exists {
			t.Errorf("mode %+v: file identity %+v, %v; want dev %d ino %d", mode, obj, err, want.Dev, want.Ino)
		}
		req = base
		req.Path, req.MayCreate = root+"/a/newfile", true
		obj, err = r.Resolve(req)
		if err != nil || obj.Dev != wantDir.Dev || obj.Ino != wantDir.Ino || obj.Exists {
			t.Errorf("mode %+v: missing file's parent identity %+v, %v; want dev %d ino %d", mode, obj, err, wantDir.Dev, wantDir.Ino)
		}
	}
}

func TestResolveFdAndBadDirfds(t *testing.T) {
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	root := tree(t)
	f, err := os.Open(filepath.Join(root, "a/b/file"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	obj, err := r.ResolveFd(unix.Gettid(), int(f.Fd()), false)
	if err != nil || obj.Path != filepath.Join(root, "a/b/file") {
		t.Fatalf("ResolveFd: %q, %v", obj.Path, err)
	}
	for _, tc := range []struct {
		dirfd int
		want  unix.Errno
	}{{int(f.Fd()), unix.ENOTDIR}, {999, unix.EBADF}, {-5, unix.EBADF}} {
		_, err := r.Resolve(Request{Tid: unix.Gettid(), Tgid: os.Getpid(), Dirfd: tc.dirfd, Path: "x", Follow: true})
		if err != tc.want {
			t.Errorf("dirfd %d: %v, want %v", tc.dirfd, err, tc.want)
		}
	}
	if _, err := r.Resolve(Request{Tid: unix.Gettid(), Dirfd: unix.AT_FDCWD, Path: ""}); err != unix.ENOENT {
		t.Errorf("empty path: %v, want ENOENT", err)
	}
}

func TestExecTargetFollowsShebangs(t *testing.T) {
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "s.sh")
	nested := filepath.Join(dir, "n.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh -e\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(nested, []byte("#!"+script+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var sh unix.Stat_t
	if err := unix.Stat("/bin/sh", &sh); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{script, nested, "/bin/sh"} {
		req := Request{Tid: unix.Gettid(), Tgid: os.Getpid(), Dirfd: unix.AT_FDCWD, Path: p, Follow: true, OwnRoot: true, Identity: true, Keep: true}
		obj, err := r.Resolve(req)
		if err != nil {
			t.Fatal(err)
		}
		target, err := r.ExecTarget(req, obj)
		if err != nil || target.Dev != sh.Dev || target.Ino != sh.Ino {
			t.Fatalf("%s: exec target %+v, %v; want /bin/sh's inode %d", p, target, err, sh.Ino)
		}
	}
}

// The walk honours openat2's RESOLVE_* flags exactly as the kernel does:
// compared, case by case, with the kernel's own openat2 from the same
// dirfd in this very process.
func TestResolveFlagsMatchTheKernel(t *testing.T) {
	root := tree(t)
	if err := os.Symlink("/proc/self/fd/0", filepath.Join(root, "a/magic")); err != nil {
		t.Fatal(err)
	}
	dirfd, err := unix.Open(filepath.Join(root, "a"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dirfd)
	paths := []string{"b/file", "rel", "abs", "up", "../secret", "b/../../secret", "/" + "b/file", "magic",
		"/proc/self/status", "../dirlink/file", "../a/b", "b/../b/file", "nope", ".."}
	flagSets := []uint64{0, unix.RESOLVE_BENEATH, unix.RESOLVE_IN_ROOT, unix.RESOLVE_NO_SYMLINKS,
		unix.RESOLVE_NO_MAGICLINKS, unix.RESOLVE_NO_XDEV, unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS}
	for _, walk := range []bool{false, true} {
		r, err := New()
		if err != nil {
			t.Fatal(err)
		}
		r.forceWalk = walk
		for _, p := range paths {
			for _, fl := range flagSets {
				kfd, kerr := unix.Openat2(dirfd, p, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: fl})
				// EAGAIN: a rename or mount anywhere on the machine (other
				// test packages run beside this one) raced the kernel's
				// ".." check under RESOLVE_IN_ROOT/BENEATH; it asks to retry.
				for try := 0; kerr == unix.EAGAIN && try < 100; try++ {
					kfd, kerr = unix.Openat2(dirfd, p, &unix.OpenHow{Flags: unix.O_PATH | unix.O_CLOEXEC, Resolve: fl})
				}
				var kst unix.Stat_t
				if kerr == nil {
					unix.Fstat(kfd, &kst)
					unix.Close(kfd)
				}
				obj, err := r.Resolve(Request{Tid: unix.Gettid(), Tgid: os.Getpid(), Dirfd: dirfd, Path: p, Follow: true, Resolve: fl})
				switch {
				case kerr != nil && err != kerr:
					t.Errorf("walk %v %q resolve %#x: got %v (%q), kernel %v", walk, p, fl, err, obj.Path, kerr)
				case kerr == nil && (err != nil || obj.Dev != kst.Dev || obj.Ino != kst.Ino):
					t.Errorf("walk %v %q resolve %#x: got %v (%q, ino %d), kernel ino %d", walk, p, fl, err, obj.Path, obj.Ino, kst.Ino)
				}
			}
		}
	}
}

// Keep hands over the object and the directory it was found in; Parent
// reports that directory's identity.
func TestKeepAndParent(t *testing.T) {
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	root := tree(t)
	var dir unix.Stat_t
	if err := unix.Stat(filepath.Join(root, "a/b"), &dir); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{root + "/a/rel", root + "/a/b/file", root + "/dirlink/new"} {
		obj, err := r.Resolve(Request{Tid: unix.Gettid(), Tgid: os.Getpid(), Dirfd: unix.AT_FDCWD, Path: p,
			Follow: true, MayCreate: true, Keep: true, Parent: true})
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if obj.ParentDev != dir.Dev || obj.ParentIno != dir.Ino || obj.Fd < 0 || obj.ParentFd < 0 {
			t.Fatalf("%s: parent %d/%d fds %d %d, want a/b (%d)", p, obj.ParentDev, obj.ParentIno, obj.Fd, obj.ParentFd, dir.Ino)
		}
		var st unix.Stat_t
		if err := unix.Fstat(obj.ParentFd, &st); err != nil || st.Ino != dir.Ino {
			t.Fatalf("%s: ParentFd is not a/b", p)
		}
		obj.Close()
	}
}

// A watchee never reaches vigil's (or its helpers') /proc entries, however
// it spells them: a watchee with CAP_SYS_PTRACE could write vigil's memory
// or take its descriptors there.
func TestVigilsOwnProcEntriesAreProtected(t *testing.T) {
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	helper := watchee(t, nil)
	r.Protected = func(pid int) bool { return pid == helper }
	pid := watchee(t, nil)
	self := strconv.Itoa(os.Getpid())
	for _, p := range []string{"/proc/" + self + "/mem", "/proc/" + self + "/fd/0", "/proc/" + self + "/task/" + self + "/mem",
		"/proc/" + strconv.Itoa(unix.Gettid()) + "/mem", "/proc/" + strconv.Itoa(helper) + "/mem", "/proc/" + strconv.Itoa(helper) + "/cwd"} {
		for _, own := range []bool{true, false} {
			_, err := r.Resolve(Request{Tid: pid, Tgid: pid, Dirfd: unix.AT_FDCWD, Path: p, Follow: true, OwnRoot: own})
			if err != ErrProtected {
				t.Errorf("%s (own root %v): %v, want ErrProtected", p, own, err)
			}
		}
	}
	// The watchee's own entries are fine.
	if _, err := r.Resolve(Request{Tid: pid, Tgid: pid, Dirfd: unix.AT_FDCWD, Path: "/proc/self/status", Follow: true, OwnRoot: true}); err != nil {
		t.Fatalf("/proc/self/status: %v", err)
	}
}

// An entry (Request.Entry: the name a create, remove or rename acts on)
// keeps its trailing slash to the call: the slash neither follows a final
// symlink nor makes a file ENOTDIR, on the fast paths as in the walk, and
// the object is the entry itself in the directory the name is in.
func TestEntryKeepsTrailingSlashesToTheCall(t *testing.T) {
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	root := tree(t)
	for _, tc := range []struct {
		path     string
		wantPath string
		wantType uint32
	}{
		{"dirlink/", "dirlink", unix.S_IFLNK},
		{"dangling/", "dangling", unix.S_IFLNK},
		{"a/b/file/", "a/b/file", unix.S_IFREG},
		{"a/b//", "a/b", unix.S_IFDIR},
		{"a/new/", "a/new", 0},
	} {
		for _, ownRoot := range []bool{false, true} {
			obj, err := r.Resolve(Request{Tid: unix.Gettid(), Tgid: os.Getpid(), Dirfd: unix.AT_FDCWD,
				Path: root + "/" + tc.path, MayCreate: true, Entry: true, OwnRoot: ownRoot, Parent: true})
			if err != nil {
				t.Errorf("%s (own root %v): %v", tc.path, ownRoot, err)
				continue
			}
			if want := filepath.Join(root, tc.wantPath); obj.Path != want || obj.Mode&unix.S_IFMT != tc.wantType ||
				obj.Name != filepath.Base(tc.wantPath) {
				t.Errorf("%s (own root %v): %q mode %o name %q, want %q type %o", tc.path, ownRoot, obj.Path, obj.Mode, obj.Name, want, tc.wantType)
			}
		}
		// Without Entry the slash follows and requires a directory.
		obj, err := r.Resolve(Request{Tid: unix.Gettid(), Tgid: os.Getpid(), Dirfd: unix.AT_FDCWD,
			Path: root + "/" + tc.path, MayCreate: true})
		if tc.path == "a/b/file/" {
			if err != unix.ENOTDIR {
				t.Errorf("%s without Entry: %v, want ENOTDIR", tc.path, err)
			}
		} else if err == nil && tc.wantType == unix.S_IFLNK && obj.Mode&unix.S_IFMT == unix.S_IFLNK {
			t.Errorf("%s without Entry: the symlink itself, want it followed", tc.path)
		}
	}
}
