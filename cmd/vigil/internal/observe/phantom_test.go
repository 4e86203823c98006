package observe

import "testing"

func TestSpellsBelow(t *testing.T) {
	for _, c := range []struct {
		path, rel string
		want      bool
	}{
		{"f", "/f", true},
		{"a/b/c", "/a/b/c", true},
		{"/etc/hostname", "/etc/hostname", true},
		{"a//b/./c/", "/a/b/c", true},
		{".", "", true},
		{"", "", true},
		{"./", "", true},
		{"a", "/ab", false},
		{"ab", "/a", false},
		{"a/b", "/a", false},
		{"a", "/a/b", false},
		{"a/../a", "/a", false}, // ".." is never literal
		{"lib/x.so", "/usr/lib/x.so", false},
		{"f", "", false},
		{".", "/f", false},
	} {
		if got := spellsBelow([]byte(c.path), []byte(c.rel)); got != c.want {
			t.Errorf("spellsBelow(%q, %q) = %v, want %v", c.path, c.rel, got, c.want)
		}
	}
}

func TestSpellsLexically(t *testing.T) {
	j := &judge{}
	for _, c := range []struct {
		spath, path, kpath string
		want               bool
	}{
		{"/t/d0/d1", "..", "/t/d0", true},
		{"/t/d0/d1", "../..", "/t", true},
		{"/t/d0/d1", "../../..", "/", true},
		{"/t", "../../..", "/", true}, // ".." stops at the root
		{"/w", "src/../include/common.h", "/w/include/common.h", true},
		{"/w", "/usr/lib/gcc/../x/crt1.o", "/usr/lib/x/crt1.o", true},
		{"/", "a/./b/../c", "/a/c", true},
		{"/w", "src/../include/common.h", "/w/src/include/common.h", false},
		{"/t/d0/d1", "..", "/t", false},
		{"/t/d0", "../d0x", "/t/d0", false},
		{"/t/d0", "x", "/t/d0/x", false}, // no ".." at all: not this check's case
	} {
		if got := j.spellsLexically([]byte(c.spath), []byte(c.path), []byte(c.kpath)); got != c.want {
			t.Errorf("spellsLexically(%q, %q, %q) = %v, want %v", c.spath, c.path, c.kpath, got, c.want)
		}
	}
}
