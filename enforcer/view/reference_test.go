package view

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/testenv"
)

// sandbox starts a process in a private mount namespace that runs script
// (sh) and then waits; it returns the process's pid once the script is done.
func sandbox(t *testing.T, script string) int {
	t.Helper()
	ready := filepath.Join(t.TempDir(), "ready")
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-ec",
		script+"\n: > "+ready+"\nexec sleep 600")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	for i := 0; i < 500; i++ {
		if _, err := os.Stat(ready); err == nil {
			return cmd.Process.Pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("sandbox did not come up")
	return 0
}

// nameOf resolves p (as vigil sees it) and names it in ref.
func nameOf(t *testing.T, ref *Reference, p string, tid int, withParent bool) (string, error) {
	t.Helper()
	return nameIn(t, ref, p, tid, withParent, nil)
}

// nameIn is nameOf with the watchee's root as vigil reads it.
func nameIn(t *testing.T, ref *Reference, p string, tid int, withParent bool, root func() string) (string, error) {
	t.Helper()
	fd, err := unix.Open(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open %s: %v", p, err)
	}
	defer unix.Close(fd)
	var stx unix.Statx_t
	if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, StatxMask, &stx); err != nil {
		t.Fatal(err)
	}
	o := Object{Fd: fd, Stx: &stx, Parent: -1, Tid: tid, WatcheeRoot: root}
	if withParent {
		pfd, err := unix.Open(filepath.Dir(p), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(pfd)
		o.Parent, o.Base = pfd, filepath.Base(p)
	}
	return ref.Name(&o)
}

func fixture(t *testing.T) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{"protected/sub", "allowed"} {
		if err := os.MkdirAll(filepath.Join(d, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(d, "protected/sub/secret"), []byte("s"), 0o600); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestOwnViewNamesByTheKernelsPath(t *testing.T) {
	testenv.RequirePrivileged(t)
	ref, err := Own()
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	if !ref.Own() || !ref.Settled() {
		t.Fatalf("own %v settled %v", ref.Own(), ref.Settled())
	}
	d := fixture(t)
	for _, p := range []string{"/etc/hostname", "/", d + "/protected/sub", d + "/protected/sub/secret"} {
		got, err := nameOf(t, ref, p, os.Getpid(), false)
		if err != nil || got != p {
			t.Errorf("%s: got %q, %v", p, got, err)
		}
	}
}

// A bind mount in a private namespace gives a protected directory a new
// name; the reference name is where the object sits in the reference view.
func TestBindMountedObjectsKeepTheirReferenceName(t *testing.T) {
	testenv.RequirePrivileged(t)
	d := fixture(t)
	ref, err := Own()
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	pid := sandbox(t, "mount --bind "+d+"/protected "+d+"/allowed")
	root := "/proc/" + strconv.Itoa(pid) + "/root"
	want := d + "/protected/sub/secret"
	if _, err := nameOf(t, ref, root+d+"/allowed/sub/secret", pid, false); !errors.Is(err, ErrNeedParent) {
		t.Fatalf("non-directory without its parent: err = %v, want ErrNeedParent", err)
	}
	got, err := nameOf(t, ref, root+d+"/allowed/sub/secret", pid, true)
	if err != nil || got != want {
		t.Fatalf("file through the bind mount: got %q, %v; want %q", got, err, want)
	}
	// The watchee's root is its namespace's root: its mount table and
	// vigil's reading of the path agree, no parent needed.
	got, err = nameIn(t, ref, root+d+"/allowed/sub/secret", pid, false, func() string { return "/" })
	if err != nil || got != want {
		t.Fatalf("file through the bind mount, by its mount point: got %q, %v; want %q", got, err, want)
	}
	got, err = nameOf(t, ref, root+d+"/allowed/sub", pid, false)
	if err != nil || got != d+"/protected/sub" {
		t.Fatalf("directory through the bind mount: got %q, %v", got, err)
	}
	got, err = nameOf(t, ref, root+d+"/allowed", pid, false)
	if err != nil || got != d+"/protected" {
		t.Fatalf("the bind mount's root: got %q, %v", got, err)
	}
	// A copy of the reference mounts (the namespace's own /) names its
	// objects as the reference does.
	got, err = nameOf(t, ref, root+"/etc/hostname", pid, true)
	if err != nil || got != "/etc/hostname" {
		t.Fatalf("copied mount: got %q, %v", got, err)
	}
}

func TestFreshFilesystemsKeepTheWatcheesName(t *testing.T) {
	testenv.RequirePrivileged(t)
	d := fixture(t)
	ref, err := Own()
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	pid := sandbox(t, "mount -t tmpfs none "+d+"/allowed; echo x > "+d+"/allowed/f")
	root := "/proc/" + strconv.Itoa(pid) + "/root"
	got, err := nameOf(t, ref, root+d+"/allowed/f", pid, false)
	if err != nil || got != d+"/allowed/f" {
		t.Fatalf("got %q, %v", got, err)
	}
}

func TestLateOverlaysAreRefused(t *testing.T) {
	testenv.RequirePrivileged(t)
	d := fixture(t)
	ref, err := Own()
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	for _, dir := range []string{"upper", "work"} {
		if err := os.Mkdir(filepath.Join(d, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	pid := sandbox(t, "mount -t overlay overlay -o lowerdir="+d+"/protected,upperdir="+d+"/upper,workdir="+d+"/work "+d+"/allowed")
	root := "/proc/" + strconv.Itoa(pid) + "/root"
	if got, err := nameOf(t, ref, root+d+"/allowed/sub/secret", pid, true); !errors.Is(err, ErrStacked) {
		t.Fatalf("got %q, %v; want ErrStacked", got, err)
	}
}

// A reference mount moved after capture is named where the reference view
// had it once a watchee's topology change was announced.
func TestMovedReferenceMountsKeepTheirCapturedName(t *testing.T) {
	testenv.RequirePrivileged(t)
	d := fixture(t)
	if err := os.MkdirAll(filepath.Join(d, "mnt"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("none", filepath.Join(d, "mnt"), "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	mounted := filepath.Join(d, "mnt")
	defer func() { _ = unix.Unmount(mounted, unix.MNT_DETACH) }()
	if err := unix.Mount("", mounted, "", unix.MS_PRIVATE, ""); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "mnt/f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ref, err := Own()
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	moved := filepath.Join(d, "allowed")
	if err := unix.Mount(mounted, moved, "", unix.MS_MOVE, ""); err != nil {
		t.Fatal(err)
	}
	mounted = moved
	// Settled: the kernel's path is trusted (nothing announced a change).
	if got, _ := nameOf(t, ref, moved+"/f", os.Getpid(), true); got != moved+"/f" {
		t.Fatalf("settled: got %q", got)
	}
	ref.Unsettle()
	got, err := nameOf(t, ref, moved+"/f", os.Getpid(), true)
	if err != nil || got != d+"/mnt/f" {
		t.Fatalf("unsettled: got %q, %v; want %q", got, err, d+"/mnt/f")
	}
	// Mounts that did not move are still named by the fast path.
	if got, err := nameOf(t, ref, "/etc/hostname", os.Getpid(), false); err != nil || got != "/etc/hostname" {
		t.Fatalf("unmoved mount: got %q, %v", got, err)
	}
	if !strings.HasPrefix(d, "/") {
		t.Fatal(d)
	}
}

func TestPseudoFilesKeepTheirKernelName(t *testing.T) {
	testenv.RequirePrivileged(t)
	ref, err := Own()
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	var stx unix.Statx_t
	if err := unix.Statx(p[0], "", unix.AT_EMPTY_PATH, StatxMask, &stx); err != nil {
		t.Fatal(err)
	}
	got, err := ref.Name(&Object{Fd: p[0], Stx: &stx, Parent: -1, Tid: os.Getpid()})
	if err != nil || !strings.HasPrefix(got, "pipe:[") {
		t.Fatalf("got %q, %v", got, err)
	}
}

// memfds live on the kernel's internal shmem and hugetlbfs mounts, which no
// mount table shows: they keep the kernel's description, not an absolute
// path, whatever their name says. A file on a mount that left every table
// (a lazy unmount) is still refused, even when its path reads like a memfd.
func TestMemfdsKeepTheirKernelDescription(t *testing.T) {
	testenv.RequirePrivileged(t)
	ref, err := Own()
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	name := func(fd int) (string, error) {
		t.Helper()
		var stx unix.Statx_t
		if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, StatxMask, &stx); err != nil {
			t.Fatal(err)
		}
		return ref.Name(&Object{Fd: fd, Stx: &stx, Parent: -1, Tid: os.Getpid()})
	}
	for _, c := range []struct {
		flags int
		what  string
	}{{0, "shmem"}, {unix.MFD_HUGETLB, "hugetlbfs"}} {
		fd, err := unix.MemfdCreate("/etc/shadow", c.flags|unix.MFD_CLOEXEC)
		if err != nil {
			t.Logf("no %s memfd here: %v", c.what, err)
			continue
		}
		got, err := name(fd)
		unix.Close(fd)
		if err != nil || got != "memfd:/etc/shadow" {
			t.Errorf("%s memfd: got %q, %v; want memfd:/etc/shadow", c.what, got, err)
		}
	}

	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	detached := false
	defer func() {
		if !detached {
			unix.Unmount(dir, unix.MNT_DETACH)
		}
	}()
	f := filepath.Join(dir, "memfd:x")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(f, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Unmount(dir, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	detached = true
	if link, err := readlinkFd(fd); err != nil || link != "/memfd:x" {
		t.Fatalf("the detached file reads as %q, %v; the test needs /memfd:x", link, err)
	}
	if got, err := name(fd); !errors.Is(err, ErrNoName) {
		t.Errorf("a file on a detached mount got %q, %v; want ErrNoName", got, err)
	}
}

// A mount of the reference view can go without a trapped call (a process
// vigil does not watch unmounts it) and its id be given to a new mount.
// Once a watchee may have created mounts (Renumber), a captured id counts
// only while the live reference namespace shows it as captured: objects on
// the new mount go the slow way. (Where that leads when the new mount also
// got the old one's device number is in docs/reference-view.md, Limits.)
func TestRenumberedMountIdsAreCheckedAgainstTheLiveTable(t *testing.T) {
	testenv.RequirePrivileged(t)
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mount("tmpfs", a, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	ref, err := Own()
	if err != nil {
		unix.Unmount(a, unix.MNT_DETACH)
		t.Fatal(err)
	}
	defer ref.Close()
	mntID := func(p string) int {
		t.Helper()
		var stx unix.Statx_t
		if err := unix.Statx(unix.AT_FDCWD, p, 0, unix.STATX_MNT_ID, &stx); err != nil {
			t.Fatal(err)
		}
		return int(stx.Mnt_id)
	}
	old := mntID(a)
	if err := unix.Unmount(a, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", b, "tmpfs", 0, ""); err != nil {
		t.Fatal(err)
	}
	defer unix.Unmount(b, unix.MNT_DETACH)
	if got := mntID(b); got != old {
		t.Skipf("the new mount got id %d, not the freed %d (another mount took it meanwhile)", got, old)
	}
	if !ref.Fast(old) {
		t.Fatalf("Fast(%d) before Renumber: the view is settled and the id was captured", old)
	}
	ref.Renumber()
	if ref.Fast(old) {
		t.Errorf("Fast(%d) after Renumber: the id is no longer the captured mount", old)
	}
}

// A reference root that is a plain directory (a chroot, not a mount's
// root) lies on a mount its own mount table does not list; its objects are
// still named from that root.
func TestChrootedReferenceRootNamesItsObjects(t *testing.T) {
	testenv.RequirePrivileged(t)
	bb, err := exec.LookPath("busybox")
	if err != nil {
		t.Fatalf("busybox-static is needed (scripts/deps.sh installs it): %v", err)
	}
	d := fixture(t)
	b, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("chroot", d, "/busybox", "sleep", "600")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var ref *Reference
	for i := 0; i < 200; i++ {
		if l, _ := os.Readlink("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/root"); l == d {
			if ref, err = Capture(cmd.Process.Pid); err != nil {
				t.Fatal(err)
			}
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if ref == nil {
		t.Fatal("the chroot did not happen")
	}
	defer ref.Close()
	root := "/proc/" + strconv.Itoa(cmd.Process.Pid) + "/root"
	got, err := nameOf(t, ref, root+"/protected/sub/secret", cmd.Process.Pid, false)
	if err != nil || got != "/protected/sub/secret" {
		t.Fatalf("got %q, %v", got, err)
	}
}
