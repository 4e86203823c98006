package reexec_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/enforcer/reexec"
)

// echoRole prints its arguments and exits with status 7, so a test sees both
// that the role ran and that its status became the process's.
func echoRole() reexec.Role {
	return reexec.Role{Name: "test-echo", Main: func(args []string) int {
		fmt.Println(strings.Join(args, " "))
		return 7
	}}
}

func TestMain(m *testing.M) {
	reexec.Run(echoRole())
	os.Exit(m.Run())
}

func TestCommandRunsTheRoleWithItsArguments(t *testing.T) {
	cmd := reexec.Command("", "test-echo", "a", "b c")
	if cmd.Path != reexec.Self || cmd.Args[0] != "vigil:test-echo" {
		t.Fatalf("path %q, argv %q", cmd.Path, cmd.Args)
	}
	out, err := cmd.Output()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 7 || string(out) != "a b c\n" {
		t.Fatalf("err %v, output %q", err, out)
	}
}

func TestCommandOfAnotherExecutable(t *testing.T) {
	if cmd := reexec.Command("/bin/true", "x"); cmd.Path != "/bin/true" || len(cmd.Args) != 1 || cmd.Args[0] != "vigil:x" {
		t.Fatalf("path %q, argv %q", cmd.Path, cmd.Args)
	}
}

func TestAnUnservedRoleExitsInsteadOfRunningTheProgram(t *testing.T) {
	cmd := reexec.Command("", "no-such-role", "-test.run=^$")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "no helper role") {
		t.Fatalf("err %v, output %q", err, out)
	}
}
