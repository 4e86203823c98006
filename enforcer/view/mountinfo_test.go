package view

import (
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMountinfo(t *testing.T) {
	text := `22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw
99 27 254:0 /srv/a\040b /mnt/with\040space rw master:2 - ext4 /dev/vda rw
47 46 0:4 net:[4026532174] /run/netns/vt1 rw shared:2 - nsfs nsfs rw

`
	ms, err := ParseMountinfo([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 4 {
		t.Fatalf("got %d mounts", len(ms))
	}
	want := Mount{ID: 99, Parent: 27, Dev: unix.Mkdev(254, 0), Root: "/srv/a b", Point: "/mnt/with space", FSType: "ext4"}
	if ms[2] != want {
		t.Fatalf("got %+v, want %+v", ms[2], want)
	}
	if ms[0].FSType != "proc" || ms[1].Point != "/" || ms[3].Root != "net:[4026532174]" || ms[3].Point != "/run/netns/vt1" {
		t.Fatalf("got %+v", ms)
	}
}

func TestParseMountinfoRejectsMalformedLines(t *testing.T) {
	for _, line := range []string{
		"22 27 0:21 / /proc rw,relatime proc proc rw",  // no separator
		"x 27 0:21 / /proc rw - proc proc rw",          // id
		"22 27 021 / /proc rw - proc proc rw",          // device
		"22 27 0:21 rel /proc rw - proc proc rw",       // relative root
		"22 27 0:21 a/b:[1] /proc rw - proc proc rw",   // relative root, not a description
		"22 27 0:4 net:[1] rel rw - nsfs nsfs rw",      // relative point
		"22 27 0:21 / /proc\\04 rw - proc proc rw",     // truncated escape
		"22 27 0:21 / /proc\\999 rw - proc proc rw",    // bad escape
		"22 27 0:21 / /proc rw -",                      // short
		"22 27 0:21 / /proc rw opt1 opt2 opt3 opt4 - ", // no type
	} {
		if _, err := ParseMountinfo([]byte(line)); !errors.Is(err, ErrMalformed) {
			t.Errorf("%q: err = %v, want ErrMalformed", line, err)
		}
	}
}

func FuzzParseMountinfo(f *testing.F) {
	f.Add([]byte("27 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n"))
	f.Add([]byte("99 27 254:0 /srv/a\\040b /mnt/x rw - ext4 /dev/vda rw"))
	f.Add([]byte("47 46 0:4 net:[4026532174] /run/netns/vt1 rw shared:2 - nsfs nsfs rw"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := ParseMountinfo(b)
		if err != nil {
			return
		}
		for _, m := range ms {
			if !validRoot(m.Root) || m.Point == "" || m.Point[0] != '/' || m.FSType == "" {
				t.Fatalf("accepted %+v", m)
			}
		}
	})
}
