package emulate

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/testenv"
)

// TestLayOutLeadsTheSpellingToTheMountPoint: the private root's directories,
// mount point and link for a socket path's directory part, walked as the
// kernel walks them, and a spelling refused because every layout would
// look a name up inside the mounted directory.
func TestLayOutLeadsTheSpellingToTheMountPoint(t *testing.T) {
	cases := []struct {
		spelled string
		abs     bool
		mountAt string
		dirs    []string
		cwd     string
		link    string
		err     error
	}{
		{spelled: "sock"},
		{spelled: "./sock"},
		{spelled: "/sock", abs: true},
		{spelled: "//sock", abs: true},
		{spelled: "/", abs: true},
		{spelled: "/run/app/sock", abs: true, mountAt: "/run/app", dirs: []string{"/run", "/run/app"}, cwd: "/"},
		{spelled: "/run//app/./sock/", abs: true, mountAt: "/run/app", dirs: []string{"/run", "/run/app"}, cwd: "/"},
		{spelled: "a/b/sock", mountAt: "/cwd/a/b", dirs: []string{"/cwd", "/cwd/a", "/cwd/a/b"}, cwd: "/cwd"},
		{spelled: "../sock", mountAt: "/", dirs: []string{"/cwd"}, cwd: "/cwd"},
		{spelled: "a/../sock", mountAt: "/cwd", dirs: []string{"/cwd", "/cwd/a"}, cwd: "/cwd"},
		{spelled: "/../../x/sock", abs: true, mountAt: "/x", dirs: []string{"/x"}, cwd: "/"},
		{spelled: "d/e/../f/sock", mountAt: "/cwd/d/f", dirs: []string{"/cwd", "/cwd/d", "/cwd/d/e", "/cwd/d/f"}, cwd: "/cwd"},
		// Arrives at its end, then looks a name up there: one link mends
		// it (d/e leads to a directory elsewhere, whose ".." is the
		// mount point).
		{spelled: "/t/d/e/../sock", abs: true, mountAt: "/.vigil-link", dirs: []string{"/t", "/t/d", "/.vigil-link", "/.vigil-link/d"}, cwd: "/",
			link: "/t/d/e"},
		{spelled: "d/e/../../d/sock", mountAt: "/d", dirs: []string{"/cwd", "/cwd/d", "/.vigil-link", "/.vigil-link/d", "/d"}, cwd: "/cwd",
			link: "/cwd/d/e"},
		{spelled: "/.vigil-link/e/../sock", abs: true, mountAt: "/.vigil-link2", dirs: []string{"/.vigil-link", "/.vigil-link2", "/.vigil-link2/d"}, cwd: "/",
			link: "/.vigil-link/e"},
		// One link is not enough.
		{spelled: "a/b/../../a/b/../s", err: errSpelling},
		// Leaves the mount point by ".." only: the kernel steps back out.
		{spelled: "a/b/../b/sock", mountAt: "/cwd/a/b", dirs: []string{"/cwd", "/cwd/a", "/cwd/a/b"}, cwd: "/cwd"},
	}
	for _, c := range cases {
		lay, err := layOut(c.spelled)
		if !errors.Is(err, c.err) {
			t.Errorf("%q: err %v, want %v", c.spelled, err, c.err)
			continue
		}
		if err != nil {
			continue
		}
		if lay.absolute != c.abs || lay.mountAt != c.mountAt || !slices.Equal(lay.dirs, c.dirs) || lay.cwd != c.cwd || lay.link != c.link {
			t.Errorf("%q: %+v, want absolute %v mountAt %q dirs %q cwd %q link %q", c.spelled, lay, c.abs, c.mountAt, c.dirs, c.cwd, c.link)
		}
		if lay.link != "" && (!slices.Contains(lay.dirs, lay.linkTo) || lay.procAt == "" || slices.Contains(lay.dirs, lay.procAt)) {
			t.Errorf("%q: link to %q, procfs on %q, dirs %q", c.spelled, lay.linkTo, lay.procAt, lay.dirs)
		}
	}
}

// FuzzLayOut: any socket path (the watchee's bytes) is laid out or refused,
// never a panic; a layout makes every directory after its parent, and the
// mount point is one of them or the root.
func FuzzLayOut(f *testing.F) {
	for _, s := range []string{"sock", "/run/a/s", "a/../b/s", "../../x", "//", "/a/b/../../a/b/c/s", "a/./b//c/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spelled string) {
		lay, err := layOut(spelled)
		if err != nil {
			return
		}
		made := map[string]bool{"/": true}
		for _, d := range lay.dirs {
			parent := d[:strings.LastIndexByte(d, '/')]
			if parent == "" {
				parent = "/"
			}
			if !made[parent] || made[d] {
				t.Fatalf("%q: %q made before its parent or twice: %q", spelled, d, lay.dirs)
			}
			made[d] = true
		}
		if lay.mountAt != "" && !made[lay.mountAt] {
			t.Fatalf("%q: mount point %q is not laid out: %+v", spelled, lay.mountAt, lay)
		}
		if lay.mountAt != "" && !made[lay.cwd] {
			t.Fatalf("%q: cwd %q is not laid out: %+v", spelled, lay.cwd, lay)
		}
		if lay.link != "" && (made[lay.link] || !made[lay.linkTo] || made[lay.procAt] || lay.procAt == "") {
			t.Fatalf("%q: the link %q must not be a directory, its target %q must be one, procfs %q must have its own place: %+v", spelled, lay.link, lay.linkTo, lay.procAt, lay)
		}
	})
}

// TestBindsLeaveVigilsOwnViewAlone: many binds through the private view
// (ProbeBind, as `vigil doctor` makes them) leave the process's mount
// namespace and root — the main thread's, which /proc/self names — as they
// were. A bind thread that landed on the main thread and was parked there
// instead of ending changed both, and vigil's reference view with them.
func TestBindsLeaveVigilsOwnViewAlone(t *testing.T) {
	testenv.RequirePrivileged(t)
	view := func() string {
		ns, err1 := os.Readlink("/proc/self/ns/mnt")
		root, err2 := os.Readlink("/proc/self/root")
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		return ns + " " + root
	}
	before := view()
	for i := 0; i < 100; i++ {
		if err := ProbeBind(); err != nil {
			t.Fatalf("bind %d: %v", i, err)
		}
		if now := view(); now != before {
			t.Fatalf("after bind %d the process's view is %q, was %q", i, now, before)
		}
	}
}

// TestLaidOutBindsLandInTheirDirectory checks layOut against the kernel's
// own walk: for spellings made of a few names and "..", in a tree where
// every name is a directory, the socket made through the private view must
// be in the directory the plain spelling resolves to (opened here as the
// held parent) and keep the spelling as its name. Relative spellings are
// looked up from the tree's root by the plain resolution and from the
// layout's cwd by the bind.
func TestLaidOutBindsLandInTheirDirectory(t *testing.T) {
	testenv.RequirePrivileged(t)
	root := t.TempDir()
	rootFd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rootFd)
	rng := rand.New(rand.NewPCG(1, 2))
	parts := []string{"a", "b", "..", "a", ".", "c"}
	laidOut, linked, refused := 0, 0, 0
	for i := 0; i < 300; i++ {
		var comps []string
		for n := 1 + rng.IntN(6); n > 0; n-- {
			comps = append(comps, parts[rng.IntN(len(parts))])
		}
		dir := strings.Join(comps, "/")
		abs := rng.IntN(2) == 0
		// Every name the walk meets exists as a directory: made lexically
		// from the tree's root (".." never climbs above it here, since
		// the plain resolution below starts there too).
		depth, cur := 0, root
		ok := true
		for _, c := range comps {
			switch c {
			case ".":
			case "..":
				if depth == 0 {
					ok = false
				}
				depth--
				cur = filepath.Dir(cur)
			default:
				depth++
				cur = filepath.Join(cur, c)
				if err := os.MkdirAll(cur, 0o755); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !ok {
			continue
		}
		name := fmt.Sprintf("s%d", i)
		spelled := dir + "/" + name
		parent, err := unix.Openat(rootFd, dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatalf("%q: %v", dir, err)
		}
		if abs {
			spelled = root + "/" + spelled
		}
		lay, lerr := layOut(spelled)
		err = bindOwnSocket(parent, spelled)
		unix.Close(parent)
		switch {
		case errors.Is(lerr, errSpelling):
			refused++
			if !errors.Is(err, ErrUnsupported) {
				t.Fatalf("%q: refused by the layout, yet the bind said %v", spelled, err)
			}
		case err != nil:
			t.Fatalf("%q (layout %+v): %v", spelled, lay, err)
		case lay.link != "":
			linked++
		default:
			laidOut++
		}
	}
	t.Logf("%d laid out, %d with a link, %d refused", laidOut, linked, refused)
	if linked == 0 || laidOut == 0 {
		t.Fatalf("the spellings did not exercise both layouts: %d plain, %d linked", laidOut, linked)
	}
}
