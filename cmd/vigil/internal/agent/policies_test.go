package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

const webPolicy = "version: 1\nrules:\n  - name: secret\n    syscalls: [openat]\n    match: { path: [\"/etc/secret\"] }\n    action: deny\n"

func writePolicy(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSelectPicksTheNamedPolicyThenDefaultYamlThenTheEmbeddedDefault(t *testing.T) {
	dir := t.TempDir()
	web := writePolicy(t, dir, "web.yaml", webPolicy)
	ps := Policies{Dir: dir}

	p, src, err := ps.Select("policy=web.yaml")
	if err != nil || src != web || p.Rules[0].Name != "secret" {
		t.Fatalf("named: %v %q %v", p, src, err)
	}
	if _, src, err = ps.Select(""); err != nil || src != EmbeddedDefault {
		t.Fatalf("no default.yaml: %q %v", src, err)
	}
	def := writePolicy(t, dir, DefaultPolicyFile, strings.Replace(webPolicy, "secret", "dir-default", 1))
	if p, src, err = ps.Select(""); err != nil || src != def || p.Rules[0].Name != "dir-default" {
		t.Fatalf("default.yaml: %q %v", src, err)
	}
	if _, src, err = (Policies{}).Select(""); err != nil || src != EmbeddedDefault {
		t.Fatalf("no dir: %q %v", src, err)
	}
}

func TestSelectRefusesEscapesAndBadPolicies(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "policies")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writePolicy(t, base, "outside.yaml", webPolicy)
	writePolicy(t, dir, "bad.yaml", "version: 1\nrules:\n  - syscalls: [opne]\n    action: deny\n")
	writePolicy(t, dir, "emulate.yaml", "version: 1\nrules:\n  - syscalls: [openat]\n    action: emulate\n")
	if err := os.Symlink("../outside.yaml", filepath.Join(dir, "escape.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "outside.yaml"), filepath.Join(dir, "abs.yaml")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo.yaml"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct{ meta, want string }{
		{"policy=../outside.yaml", "not a path"},
		{"policy=" + filepath.Join(base, "outside.yaml"), "not a path"},
		{"policy=..", "dot"},
		{"policy=escape.yaml", "escapes"},
		{"policy=abs.yaml", "escapes"},
		{"policy=missing.yaml", "no such file"},
		{"policy=bad.yaml", "bad.yaml:3:16: unknown syscall"},
		{"policy=emulate.yaml", "cannot emulate openat"},
		{"policy=fifo.yaml", "not a regular file"},
		{"policy=web.yaml,owner=me", "unknown key"},
	}
	ps := Policies{Dir: dir}
	for _, tc := range cases {
		p, _, err := ps.Select(tc.meta)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Select(%q) = %v, %v; want an error containing %q", tc.meta, p, err, tc.want)
		}
	}
	if _, _, err := (Policies{}).Select("policy=web.yaml"); err == nil || !strings.Contains(err.Error(), "without --policy-dir") {
		t.Errorf("no dir: %v", err)
	}
	// A broken default.yaml refuses containers instead of falling back.
	writePolicy(t, dir, DefaultPolicyFile, "version: 2\n")
	if _, _, err := ps.Select(""); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Errorf("broken default.yaml: %v", err)
	}
}
