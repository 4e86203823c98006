package emulate

import (
	"os"
	"regexp"
	"strconv"
	"testing"

	"github.com/vigilsec/vigil/enforcer/reexec"
)

// nsenter.c runs before Go starts, so it cannot import Go's constants: it
// repeats them, and this test keeps the two in agreement.
func TestNsenterAgreesWithGo(t *testing.T) {
	src, err := os.ReadFile("nsenter.c")
	if err != nil {
		t.Fatal(err)
	}
	define := func(name string) string {
		t.Helper()
		m := regexp.MustCompile(`(?m)^#define ` + name + ` (.+)$`).FindSubmatch(src)
		if m == nil {
			t.Fatalf("nsenter.c defines no %s", name)
		}
		return string(m[1])
	}
	if got, want := define("VIGIL_WORKER_ARG0"), strconv.Quote(reexec.Arg0(workerRole)); got != want {
		t.Errorf("VIGIL_WORKER_ARG0 is %s, Go re-executes workers as %s", got, want)
	}
	for name, fd := range map[string]int{"VIGIL_FD_USERNS": fdUserns, "VIGIL_FD_MNTNS": fdMntns, "VIGIL_FD_CTL": fdCtl} {
		if got := define(name); got != strconv.Itoa(fd) {
			t.Errorf("%s is %s, Go passes fd %d", name, got, fd)
		}
	}
}
