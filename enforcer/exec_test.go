package enforcer_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// TestFexecveIsBoundAndRuns runs glibc's fexecve, execveat(fd, "", argv,
// envp, AT_EMPTY_PATH), under a policy whose exec rule matches paths, so the
// allowed exec is a bound grant: the binding's tripwire is the empty string.
// On Debian's 6.1 and 6.12 kernels bpf_probe_read_user_str returns 0 for an
// empty string (6.18 returns 1, the NUL), and the eBPF side once took that
// for an unreadable argument and killed every such exec; scripts/kernel-
// matrix.sh runs this test on those kernels. A denied binary reached through
// its descriptor is refused, as the same exec by name would be.
func TestFexecveIsBoundAndRuns(t *testing.T) {
	testenv.RequirePrivileged(t)
	dir := t.TempDir()
	echo, err := filepath.EvalSymlinks("/bin/echo")
	if err != nil {
		t.Fatal(err)
	}
	denied := filepath.Join(dir, "denied-echo")
	b, err := os.ReadFile(echo)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(denied, b, 0o755); err != nil {
		t.Fatal(err)
	}
	pol := mustPolicy(t, `version: 1
rules:
  - name: no-denied-echo
    syscalls: [execve, execveat]
    match: { path: ["`+denied+`"] }
    action: deny
`)
	self, _ := os.Executable()
	t.Setenv("VIGIL_TEST_HELPER", "fexecve")

	// The platform decides what the exec prints: compare with a bare run.
	want, code := bare(t, self, echo, "fexecve ran")
	if code != 0 || want != "fexecve ran\n" {
		t.Fatalf("bare fexecve: exit %d, stdout %q", code, want)
	}
	r := supervise(t, pol, []string{self, echo, "fexecve ran"})
	if r.stdout != want || r.code != 0 {
		t.Fatalf("supervised fexecve of %s: exit %d, stdout %q; want exit 0, %q", echo, r.code, r.stdout, want)
	}
	recs := r.find("execveat", "")
	if len(recs) != 1 {
		t.Fatalf("want 1 execveat record, got %d: %v", len(recs), r.records)
	}
	rec := recs[0]
	if rec.Action != "allow" || rec.Verified != audit.VerifiedKernel || rec.Args.Resolved != echo {
		t.Fatalf("fexecve record %v: want a bound (verified kernel) allow of %s", rec, echo)
	}

	r = supervise(t, pol, []string{self, denied, "should not run"})
	if got := strings.TrimSpace(r.stdout); got != "err EPERM" {
		t.Fatalf("fexecve of the denied binary: got %q (exit %d), want err EPERM", got, r.code)
	}
}

// TestExecFromAThreadIsRecorded: an exec made by a thread other than the
// group's leader takes over the leader's id, and the kernel's event for it
// names the leader; its record is still completed from that event (verified
// kernel), not left waiting under the dead thread's id.
func TestExecFromAThreadIsRecorded(t *testing.T) {
	testenv.RequirePrivileged(t)
	echo, err := filepath.EvalSymlinks("/bin/echo")
	if err != nil {
		t.Fatal(err)
	}
	pol := mustPolicy(t, `version: 1
rules:
  - name: no-nonexistent-exec
    syscalls: [execve, execveat]
    match: { path: ["/nonexistent/**"] }
    action: deny
`)
	self, _ := os.Executable()
	t.Setenv("VIGIL_TEST_HELPER", "fexecve-thread")
	want, code := bare(t, self, echo, "ran from a thread")
	if code != 0 || want != "ran from a thread\n" {
		t.Fatalf("bare fexecve from a thread: exit %d, stdout %q", code, want)
	}
	r := supervise(t, pol, []string{self, echo, "ran from a thread"})
	if r.stdout != want || r.code != 0 {
		t.Fatalf("supervised: exit %d, stdout %q; want exit 0, %q", r.code, r.stdout, want)
	}
	recs := r.find("execveat", "")
	if len(recs) != 1 {
		t.Fatalf("want 1 execveat record, got %d: %v", len(recs), r.records)
	}
	if rec := recs[0]; rec.Action != "allow" || rec.Verified != audit.VerifiedKernel || rec.Tid == rec.Pid {
		t.Fatalf("record %v: want a bound (verified kernel) allow made by a thread that is not the leader", rec)
	}
}
