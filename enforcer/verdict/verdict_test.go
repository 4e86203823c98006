package verdict

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/enforcer/notify"
)

type dependence map[int]bool

func (d dependence) ContentDependent(nr int) bool { return d[nr] }

func TestGrantsAreBoundToTheirNotification(t *testing.T) {
	n := &notify.Notif{ID: 7, Data: notify.Data{Nr: 257}}
	other := &notify.Notif{ID: 8, Data: notify.Data{Nr: 257}}
	if (Grant{}).permits(n) {
		t.Fatal("the zero Grant must permit nothing")
	}
	if _, ok := ContentIndependent(dependence{257: true}, n); ok {
		t.Fatal("a content-dependent syscall must not get a content-independent grant")
	}
	g, ok := ContentIndependent(dependence{}, n)
	if !ok || !g.permits(n) || g.permits(other) {
		t.Fatalf("content-independent grant: ok=%v permits(n)=%v permits(other)=%v", ok, g.permits(n), g.permits(other))
	}
	u := Unverified(n)
	if !u.permits(n) || u.permits(other) || u.Verified() != "none" {
		t.Fatal("unverified grant must permit only its notification and say verified none")
	}
}

// TestOnlyVerdictAnswersContinue keeps the invariant of docs/design.md §2 checkable:
// no file outside this package may even mention the CONTINUE flag, except
// vigil doctor's probe, which answers CONTINUE on a listener of its own
// throwaway child to find out whether the kernel supports it.
func TestOnlyVerdictAnswersContinue(t *testing.T) {
	root, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not in a git checkout: %v", err)
	}
	out, _ := exec.Command("git", "-C", strings.TrimSpace(string(root)), "grep", "-l",
		"SECCOMP_USER_NOTIF_FLAG_CONTINUE", "--", "*.go").Output()
	for _, f := range strings.Fields(string(out)) {
		if f != "enforcer/verdict/verdict.go" && !strings.HasSuffix(f, "_test.go") && !strings.HasPrefix(f, "cmd/vigil/internal/doctor/") {
			t.Errorf("%s answers CONTINUE outside package verdict", f)
		}
	}
}
