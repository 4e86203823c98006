package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/cmd/vigil/internal/doctor"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

func TestDoctorSaysVigilCanRunHere(t *testing.T) {
	testenv.RequirePrivileged(t)
	stdout, stderr, code := vigil(t, "doctor")
	if code != 0 || !strings.HasSuffix(stdout, "vigil can run: yes\n") {
		t.Fatalf("vigil doctor: exit %d, stderr %q, stdout:\n%s", code, stderr, stdout)
	}
	stdout, stderr, code = vigil(t, "doctor", "--json")
	if code != 0 {
		t.Fatalf("vigil doctor --json: exit %d, stderr %q", code, stderr)
	}
	r, err := doctor.ReadJSON(bytes.NewReader([]byte(stdout)))
	if err != nil {
		t.Fatal(err)
	}
	if !r.CanRun || len(r.Features) == 0 {
		t.Fatalf("report: %+v", r)
	}
}

// The doctor's helper is a re-execution selected by argv[0] (package
// reexec), not a command a user could type.
func TestDoctorHelperIsNotACommand(t *testing.T) {
	for _, args := range [][]string{{"doctor-helper", "probe"}, {"__doctor-helper", "probe"}} {
		_, stderr, code := vigil(t, args...)
		if code != 2 || !strings.Contains(stderr, "unknown command") {
			t.Errorf("vigil %q: exit %d, stderr %q", args, code, stderr)
		}
	}
	if stdout, _, _ := vigil(t, "help"); strings.Contains(stdout, "helper") {
		t.Errorf("help lists a helper:\n%s", stdout)
	}
}

func TestDoctorCompareOfReportsAndBenchFiles(t *testing.T) {
	report := writeFile(t, "host.json", `{"kernel": "6.18.0-test", "can_run": true, "features": [
  {"name": "seccomp_sync_wake_up", "available": true, "detail": "accepted", "required": false, "use": "u", "remedy": "r"}]}`)
	bench := writeFile(t, "guest.json", benchFile)
	stdout, stderr, code := vigil(t, "doctor", "compare", report, bench)
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"host", "guest", "seccomp_sync_wake_up", "VIGIL USES", "open refsup", "4.60×"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	bad := writeFile(t, "bad.json", `{"hello": 1}`)
	if _, stderr, code := vigil(t, "doctor", "compare", bad); code != 2 || !strings.Contains(stderr, "neither") {
		t.Errorf("bad input: exit %d, stderr %q", code, stderr)
	}
}
