package enforcer_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// Issue 9, bypass 1: the watchee must not control the view path rules are
// matched in. Each attack below is deterministic; its bare run shows the
// protected object is reachable, so a refusal under vigil is vigil's.

// runBare runs argv without vigil (with extra environment) and returns its
// trimmed stdout.
func runBare(t *testing.T, env []string, argv ...string) string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	out, _ := cmd.Output()
	return strings.TrimSpace(string(out))
}

func TestChrootDoesNotRenameProtectedObjectsUnderTheDefaultPolicy(t *testing.T) {
	testenv.RequirePrivileged(t)
	self, _ := os.Executable()
	pol := policy.Default()
	cases := []struct {
		helper, root, path string
		why                string
	}{
		{"chroot-open", "/etc", "/shadow", "credentials: /etc/shadow read as /shadow"},
		{"chroot-openw", "/usr/bin", "/true", "system-binaries-readonly: /usr/bin/true opened for appending as /true"},
	}
	for _, c := range cases {
		t.Run(c.helper, func(t *testing.T) {
			env := "VIGIL_TEST_HELPER=" + c.helper
			if got := runBare(t, []string{env}, self, c.root, c.path); got != "ok" {
				t.Fatalf("bare %s %s %s: %q, want ok (the attack must reach the object without vigil)", c.helper, c.root, c.path, got)
			}
			t.Setenv("VIGIL_TEST_HELPER", c.helper)
			r := supervise(t, pol, []string{self, c.root, c.path})
			if got := strings.TrimSpace(r.stdout); got != "err EACCES" {
				t.Fatalf("%s under the default policy: %q, want err EACCES", c.why, got)
			}
		})
	}
}

// protectedTree is a world-readable directory with a protected
// subdirectory (holding a secret, an executable and a victim file) and an
// allowed one, and a policy that denies opening, executing, unlinking and
// creating anything under protected/.
type protectedTree struct {
	dir, protected, allowed string
	pol                     *policy.Policy
}

func newProtectedTree(t *testing.T) protectedTree {
	t.Helper()
	parent, err := os.MkdirTemp("", "vigil-view-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o755); err != nil {
		t.Fatal(err)
	}
	p := protectedTree{dir: parent, protected: filepath.Join(parent, "protected"), allowed: filepath.Join(parent, "allowed")}
	for _, d := range []string{p.protected, p.allowed} {
		if err := os.Mkdir(d, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(p.protected, "secret"), []byte("s3cret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.protected, "victim"), nil, 0o666); err != nil {
		t.Fatal(err)
	}
	tr, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p.protected, "bin"), tr, 0o755); err != nil {
		t.Fatal(err)
	}
	p.pol = mustPolicy(t, fmt.Sprintf(`version: 1
rules:
  - name: protected
    syscalls: [open, openat, openat2, creat, execve, execveat, unlink, unlinkat, mknod, mknodat]
    match: { path: ["%s/**"] }
    action: deny
    errno: EACCES
  - name: devices
    syscalls: [mknod, mknodat]
    match: { dev: ["c 1:3"] }
    action: emulate
`, p.protected))
	return p
}

func TestChrootDoesNotRenameAProtectedFileForUnlink(t *testing.T) {
	testenv.RequirePrivileged(t)
	self, _ := os.Executable()
	p := newProtectedTree(t)
	victim := filepath.Join(p.protected, "victim")
	t.Setenv("VIGIL_TEST_HELPER", "chroot-unlink")
	r := supervise(t, p.pol, []string{self, p.protected, "/victim"})
	if got := strings.TrimSpace(r.stdout); got != "err EACCES" {
		t.Fatalf("chroot + unlink(/victim): %q, want err EACCES", got)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Fatalf("the protected file is gone: %v", err)
	}
	// Bare, the same calls delete it.
	if got := runBare(t, []string{"VIGIL_TEST_HELPER=chroot-unlink"}, self, p.protected, "/victim"); got != "ok" {
		t.Fatalf("bare: %q", got)
	}
}

// An unprivileged watchee makes its own user and mount namespace, binds the
// protected directory over the allowed one, and reads and executes through
// the new name (util-linux's unshare and mount: real software).
func TestPrivateBindMountsDoNotRenameProtectedObjects(t *testing.T) {
	testenv.RequirePrivileged(t)
	p := newProtectedTree(t)
	script := fmt.Sprintf(`mount --bind %[1]s %[2]s || exit 9
if cat %[2]s/secret >/dev/null 2>&1; then echo read; else echo noread; fi
if %[2]s/bin 2>/dev/null; then echo exec; else echo noexec; fi`, p.protected, p.allowed)
	argv := []string{"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"unshare", "--user", "--map-root-user", "--mount", "sh", "-c", script}
	if got := runBare(t, nil, argv...); got != "read\nexec" {
		t.Fatalf("bare run: %q, want read and exec (the attack must work without vigil)", got)
	}
	r := supervise(t, p.pol, argv)
	if got := strings.TrimSpace(r.stdout); got != "noread\nnoexec" {
		t.Fatalf("under vigil: %q, want noread and noexec", got)
	}
}

// Under --userns a lent mknod must not land in a protected directory bound
// over an allowed one.
func TestUserNSMknodDoesNotLandInABoundProtectedDirectory(t *testing.T) {
	testenv.RequirePrivileged(t)
	p := newProtectedTree(t)
	node := filepath.Join(p.allowed, "null")
	script := fmt.Sprintf("mount --bind %s %s && mknod %s c 1 3 && echo made", p.protected, p.allowed, node)
	r := supervise(t, p.pol, []string{"sh", "-c", script}, inUserNS())
	if strings.Contains(r.stdout, "made") {
		t.Fatalf("mknod through the bind mount succeeded: %q", r.stdout)
	}
	if _, err := os.Lstat(filepath.Join(p.protected, "null")); err == nil {
		t.Fatal("a device node landed in the protected directory")
	}
	// Without the bind mount the lent mknod works where it is allowed.
	r = supervise(t, p.pol, []string{"sh", "-c", "mknod " + node + " c 1 3 && echo made"}, inUserNS())
	if strings.TrimSpace(r.stdout) != "made" {
		t.Fatalf("plain lent mknod: %q", r.stdout)
	}
	var st unix.Stat_t
	if err := unix.Stat(node, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Fatalf("node: %v %o", err, st.Mode)
	}
}
