package emulate

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/enforcer/testenv"
)

// TestLayOutLeadsTheSpellingToTheMountPoint: the private root's directories
// and mount point for a socket path's directory part, walked as the kernel
// walks a tree without symlinks, and the spellings refused because the walk
// would look a name up inside the mounted directory.
func TestLayOutLeadsTheSpellingToTheMountPoint(t *testing.T) {
	cases := []struct {
		spelled string
		abs     bool
		mountAt string
		dirs    []string
		cwd     string
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
		// Arrives at d, then looks e up in it: refused.
		{spelled: "d/e/../../d/sock", err: errSpelling},
		{spelled: "/t/d/e/../sock", abs: true, err: errSpelling},
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
		if lay.absolute != c.abs || lay.mountAt != c.mountAt || !slices.Equal(lay.dirs, c.dirs) || lay.cwd != c.cwd {
			t.Errorf("%q: %+v, want absolute %v mountAt %q dirs %q cwd %q", c.spelled, lay, c.abs, c.mountAt, c.dirs, c.cwd)
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
