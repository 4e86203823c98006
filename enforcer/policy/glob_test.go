package policy

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestGlobMatch(t *testing.T) {
	tests := []struct {
		pat, path string
		want      bool
	}{
		{"/etc/shadow", "/etc/shadow", true},
		{"/etc/shadow", "/etc/shadow-", false},
		{"/etc/shadow", "/etc/shadow/x", false},
		{"/etc/shadow", "/etc", false},
		{"/etc/shadow", "etc/shadow", false},
		{"/etc/shadow", "", false},
		{"/", "/", true},
		{"/", "/etc", false},

		{"/root/**", "/root", true},
		{"/root/**", "/root/", true},
		{"/root/**", "/root/.ssh/id_ed25519", true},
		{"/root/**", "/rootkit", false},
		{"/root/**", "/roo", false},
		{"/root/**", "/", false},
		{"/**", "/", true},
		{"/**", "/a/b/c", true},
		{"/**", "relative", false},

		{"/etc/*", "/etc/passwd", true},
		{"/etc/*", "/etc", false},
		{"/etc/*", "/etc/ssh/sshd_config", false},
		{"/etc/ssh/ssh_host_*_key", "/etc/ssh/ssh_host_ed25519_key", true},
		{"/etc/ssh/ssh_host_*_key", "/etc/ssh/ssh_host_ed25519_key.pub", false},
		{"/etc/ssh/ssh_host_*_key", "/etc/ssh/ssh_host__key", true},
		{"/etc/ssh/ssh_host_*_key", "/etc/ssh/ssh_host_a/b_key", false},
		{"/*", "/", false},
		{"/*", "/x", true},
		{"/tmp/?", "/tmp/a", true},
		{"/tmp/?", "/tmp/é", true},
		{"/tmp/?", "/tmp/ab", false},
		{"/tmp/?", "/tmp/", false},
		{"/tmp/??", "/tmp/é", false},
		{"/tmp/a*b*c", "/tmp/aXbYbZc", true},
		{"/tmp/a*b*c", "/tmp/aXbYbZ", false},
		{"/tmp/*.so", "/tmp/.so", true},

		{"/a/**/b", "/a/b", true},
		{"/a/**/b", "/a/x/b", true},
		{"/a/**/b", "/a/x/y/b", true},
		{"/a/**/b", "/a/x/y/bb", false},
		{"/a/**/b", "/a/b/c", false},
		{"/a/**/b/**", "/a/x/b/y/z", true},
		{"/**/x", "/x", true},
		{"/**/x", "/a/b/x", true},
		{"/**/x", "/a/b/xx", false},
		{"/**/*.pem", "/etc/ssl/private/k.pem", true},
		{"/**/**/x", "/x", true},
		{"/a/**/b/**/c", "/a/b/b/c", true},
		{"/a/**/b/**/c", "/a/b/c/b", false},
		{"/home/*/.ssh/**", "/home/alice/.ssh/authorized_keys", true},
		{"/home/*/.ssh/**", "/home/alice/x/.ssh/authorized_keys", false},
		{"/home/*/.ssh/**", "/home/.ssh/k", false},
		{"/usr/**/lib*.so*", "/usr/lib/x86_64-linux-gnu/libc.so.6", true},
	}
	for _, tt := range tests {
		g, err := compileGlob(tt.pat)
		if err != nil {
			t.Fatalf("compileGlob(%q): %v", tt.pat, err)
		}
		if got := g.match(tt.path); got != tt.want {
			t.Errorf("glob %q match %q = %v, want %v (kind %d)", tt.pat, tt.path, got, tt.want, g.kind)
		}
		if got := refGlob(tt.pat, tt.path); got != tt.want {
			t.Errorf("reference glob %q match %q = %v, want %v", tt.pat, tt.path, got, tt.want)
		}
	}
}

func TestGlobCompileErrors(t *testing.T) {
	for pat, want := range map[string]string{
		"":                                 "empty",
		"etc/shadow":                       "absolute",
		"*/shadow":                         "absolute",
		"/a/**b":                           "whole path component",
		"/a/b**":                           "whole path component",
		"/a/***":                           "whole path component",
		"/a\x00":                           "NUL",
		"/a//b":                            "empty component",
		"/a/":                              "ends in '/'",
		"/a/./b":                           ". component",
		"/a/../b":                          ".. component",
		"/\xff":                            "UTF-8",
		"/" + strings.Repeat("a", pathMax): "PATH_MAX",
	} {
		if _, err := compileGlob(pat); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("compileGlob(%q) error = %v, want it to mention %q", pat, err, want)
		}
	}
}

func TestWildcard(t *testing.T) {
	tests := []struct {
		pat, s string
		want   bool
	}{
		{"user.*", "user.foo", true},
		{"user.*", "user.", true},
		{"user.*", "trusted.foo", false},
		{"trusted.overlay.opaque", "trusted.overlay.opaque", true},
		{"trusted.overlay.opaque", "trusted.overlay.opaque2", false},
		{"*", "", true},
		{"*.overlay.*", "trusted.overlay.redirect", true},
		{"user.?", "user.ab", false},
		{"a*/b", "a/x/b", true}, // flat: * crosses '/'
	}
	for _, tt := range tests {
		w := newWildcard(tt.pat)
		if got := w.match(tt.s); got != tt.want {
			t.Errorf("wildcard %q match %q = %v, want %v", tt.pat, tt.s, got, tt.want)
		}
	}
}

// refGlob is an independent, obviously correct (and slow) implementation of
// the glob semantics: split both sides into components and recurse.
func refGlob(pat, path string) bool {
	if path == "" || path[0] != '/' || pat == "" || pat[0] != '/' {
		return false
	}
	split := func(s string) []string {
		if s == "/" {
			return nil
		}
		return strings.Split(s[1:], "/")
	}
	return refComps(split(pat), split(path))
}

func refComps(pc, sc []string) bool {
	if len(pc) == 0 {
		return len(sc) == 0
	}
	if pc[0] == "**" {
		for i := 0; i <= len(sc); i++ {
			if refComps(pc[1:], sc[i:]) {
				return true
			}
		}
		return false
	}
	return len(sc) > 0 && refWild(pc[0], sc[0]) && refComps(pc[1:], sc[1:])
}

// refWild splits s into units the way `?` consumes them (one UTF-8
// character, or one byte of an invalid sequence) and recurses.
func refWild(pat, s string) bool {
	if pat == "" {
		return s == ""
	}
	switch pat[0] {
	case '*':
		for i := 0; i <= len(s); {
			if refWild(pat[1:], s[i:]) {
				return true
			}
			if i == len(s) {
				break
			}
			_, n := utf8.DecodeRuneInString(s[i:])
			i += n
		}
		return false
	case '?':
		if s == "" {
			return false
		}
		_, n := utf8.DecodeRuneInString(s)
		return refWild(pat[1:], s[n:])
	}
	return s != "" && s[0] == pat[0] && refWild(pat[1:], s[1:])
}

// FuzzGlob checks compileGlob never panics and that the compiled matcher
// (with its literal and tree fast paths and single-backtrack loops) agrees
// with the reference implementation on every valid pattern.
func FuzzGlob(f *testing.F) {
	for _, s := range [][2]string{
		{"/root/**", "/root/.ssh/k"},
		{"/a/**/b", "/a/x/y/b"},
		{"/etc/ssh/ssh_host_*_key", "/etc/ssh/ssh_host_rsa_key"},
		{"/tmp/?", "/tmp/é"},
		{"/**/x", "/x"},
		{"/", "/"},
		{"/a*b*c", "/aXbYc"},
		{"/*/**/*", "/a"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pat, path string) {
		if len(pat) > 64 || len(path) > 256 {
			return // keep the exponential reference implementation fast
		}
		g, err := compileGlob(pat)
		if err != nil {
			return
		}
		got := g.match(path)
		if want := refGlob(pat, path); got != want {
			t.Fatalf("glob %q match %q = %v, reference says %v (kind %d)", pat, path, got, want, g.kind)
		}
		// Every pattern matches itself read as a path once its wildcards
		// are replaced by characters they match.
		self := strings.NewReplacer("/**", "", "*", "x", "?", "x").Replace(pat)
		if self == "" {
			self = "/"
		}
		if !g.match(self) {
			t.Fatalf("glob %q does not match its own expansion %q", pat, self)
		}
	})
}
