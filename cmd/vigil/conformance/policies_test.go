package conformance_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

func loadTestPolicy(t *testing.T, name string) *policy.Policy {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "policies", name))
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer("@PROTECTED@", "/nonexistent/protected", "@DENIED@", "/nonexistent/denied").Replace(string(b))
	p, err := policy.Parse(name, []byte(s))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return p
}

// TestTrapAllPolicyTrapsEverySyscallVigilDecodes keeps trap-all.yaml in
// step with vigil's catalog: every syscall vigil can decode is trapped, and
// its allow depends on the arguments (a rule with a match comes first), so
// vigil binds or emulates it instead of passing it through.
func TestTrapAllPolicyTrapsEverySyscallVigilDecodes(t *testing.T) {
	p := loadTestPolicy(t, "trap-all.yaml")
	trapped := map[string]bool{}
	for _, s := range p.Syscalls() {
		trapped[s] = true
	}
	for _, name := range sysinfo.Inspectable() {
		sc, _ := sysinfo.Lookup(name)
		switch {
		case !trapped[name]:
			t.Errorf("trap-all.yaml does not trap %s, which vigil decodes", name)
		case !p.ContentDependent(sc.Nr):
			t.Errorf("trap-all.yaml: the allow of %s does not depend on its arguments", name)
		}
	}
}

// TestWriteProtectPolicyMakesEveryWriteContentDependent checks that
// write-protect.yaml makes vigil decide every write by its path, which is
// what makes it emulate them.
func TestWriteProtectPolicyMakesEveryWriteContentDependent(t *testing.T) {
	p := loadTestPolicy(t, "write-protect.yaml")
	for _, name := range p.Syscalls() {
		sc, _ := sysinfo.Lookup(name)
		if !p.ContentDependent(sc.Nr) {
			t.Errorf("write-protect.yaml: %s does not depend on its arguments", name)
		}
	}
	for _, name := range []string{"openat", "unlinkat", "renameat2", "mkdirat", "linkat", "symlinkat", "fchmodat", "fchownat"} {
		if sc, _ := sysinfo.Lookup(name); !p.ContentDependent(sc.Nr) {
			t.Errorf("write-protect.yaml does not trap %s", name)
		}
	}
}

// TestConformancePoliciesTakeEffect shows that each policy of the suite is
// in force when the suite runs it, so an identical run means vigil carried
// the calls out faithfully and not that it let them pass untouched: the
// call each policy denies is refused under vigil (and works bare), and an
// ordinary write in the run's directory is emulated.
func TestConformancePoliciesTakeEffect(t *testing.T) {
	testenv.RequirePrivileged(t)
	f := newFixture(t)
	cases := []struct {
		policy string
		// script refuses what the policy denies, in the fixture's dir
		// (protected or denied): bare it runs on a copy.
		script  func(dir string) string
		fixture string
		want    string // on stderr under vigil
	}{
		{"default", func(string) string { return "cat /etc/shadow >/dev/null" }, "", "Permission denied"},
		{"trap-all", func(d string) string { return "cat " + d + "/file" }, f.denied, "Operation not permitted"},
		{"write-protect", func(d string) string { return "echo x >" + d + "/file" }, f.protected, "Permission denied"},
		{"write-protect", func(d string) string { return "rm " + d + "/file" }, f.protected, "Permission denied"},
	}
	for _, tc := range cases {
		t.Run(tc.policy, func(t *testing.T) {
			copyDir := t.TempDir()
			if err := os.WriteFile(filepath.Join(copyDir, "file"), []byte("keep\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			bareScript := "cd " + t.TempDir() + " && echo written >out && " + tc.script(copyDir)
			if out, err := exec.Command("bash", "-c", bareScript).CombinedOutput(); err != nil {
				t.Fatalf("bare %q: %v\n%s", bareScript, err, out)
			}
			script := "echo written >out; " + tc.script(tc.fixture)
			dir := t.TempDir()
			log := filepath.Join(dir, "audit.jsonl")
			args := []string{"run", "--log", log, "--log-level", "debug"}
			if p := f.policies[tc.policy]; p != "" {
				args = append(args, "--policy", p)
			}
			cmd := exec.Command(vigilBin, append(args, "--", "bash", "-c", script)...)
			cmd.Dir = dir
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			if err == nil || !strings.Contains(stderr.String(), tc.want) {
				t.Fatalf("under vigil (%s) %q: %v, stderr %q; want it refused with %q", tc.policy, script, err, stderr.String(), tc.want)
			}
			for _, d := range []string{f.protected, f.denied} {
				if b, err := os.ReadFile(filepath.Join(d, "file")); err != nil || string(b) != "keep\n" {
					t.Fatalf("%s/file changed under vigil: %q %v", d, b, err)
				}
			}
			st, err := readAudit(log)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(log)
			if st.emulated == 0 || !bytes.Contains(b, []byte(`"path":"out"`)) {
				t.Fatalf("the write of %s/out was not emulated (%d emulated records)", dir, st.emulated)
			}
		})
	}
}
