package enforcer_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// Issue 9, bypass 4: AF_UNIX addresses are paths, and path rules name
// objects: a denied socket is denied under every spelling that reaches it,
// and an allowlisted one is allowed under every spelling.
func TestUnixSocketRulesMatchTheSocketNotItsSpelling(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	listen := func(name string) string {
		p := filepath.Join(dir, name)
		l, err := net.Listen("unix", p)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
		return p
	}
	denied, allowed := listen("denied.sock"), listen("allowed.sock")
	if err := os.Symlink(denied, filepath.Join(dir, "innocent.sock")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(allowed, filepath.Join(dir, "alias.sock")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	spellings := map[string][]string{
		denied: {
			"unix:" + denied,
			"unix:" + filepath.Join(dir, "innocent.sock"),
			"unix:" + strings.ReplaceAll(denied, "/", "//"),
			"unix:" + dir + "/./denied.sock",
			"unix:" + dir + "/sub/../denied.sock",
			"unix:denied.sock",
			"unix:./innocent.sock",
			"unix:/proc/self/cwd/denied.sock",
		},
		allowed: {"unix:" + allowed, "unix:" + filepath.Join(dir, "alias.sock"), "unix:alias.sock", "unix:/proc/self/cwd/allowed.sock"},
	}
	denyList := mustPolicy(t, fmt.Sprintf(`version: 1
rules:
  - syscalls: [connect]
    match: { addr: ["unix:%s"] }
    action: deny
    errno: EACCES
`, denied))
	allowList := mustPolicy(t, fmt.Sprintf(`version: 1
default: deny
rules:
  - syscalls: [connect]
    match: { addr: ["unix:%s"] }
    action: allow
  - syscalls: [getppid]
    action: allow
`, allowed))
	for _, pol := range []struct {
		name string
		p    *policy.Policy
	}{{"denylist", denyList}, {"allowlist", allowList}} {
		for sock, list := range spellings {
			want := "ok"
			if sock == denied {
				want = "err EACCES"
				if pol.name == "allowlist" {
					want = "err EPERM"
				}
			}
			for _, sp := range list {
				argv := []string{"sh", "-c", fmt.Sprintf("cd %s && exec %s connect %s", dir, probe, sp)}
				r := supervise(t, pol.p, argv)
				if got := strings.TrimSpace(r.stdout); got != want {
					t.Errorf("%s: connect %s: %q, want %q", pol.name, sp, got, want)
				}
			}
		}
	}
}
