package emulate

import (
	"errors"
	"slices"
	"testing"
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
