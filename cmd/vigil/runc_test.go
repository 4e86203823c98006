package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/vigilsec/vigil/enforcer/testenv"
)

// TestRuncRunsUnderVigilRunAsAlone runs a busybox container with `runc run`
// alone and under `vigil run` in its default mode, and compares what the
// container printed and how runc ended. runc 1.1 re-executes itself from a
// bind mount of its binary that it has already detached, opens openat2 with
// O_PATH, and its init reads /proc/self/mountinfo from the host's procfs
// after entering the container's pid namespace: under vigil each of these
// failed (no name for the detached mount, EBADF from installing an O_PATH
// descriptor, and a kill for /proc/self named in the wrong pid namespace).
func TestRuncRunsUnderVigilRunAsAlone(t *testing.T) {
	testenv.RequirePrivileged(t)
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatalf("runc (scripts/deps.sh installs it): %v", err)
	}
	bundle := busyboxBundle(t, runc, "cat /etc/ok; ls / | wc -l; wc -l < /proc/self/mountinfo; exit 3")
	state := t.TempDir()
	run := func(id string, prefix ...string) string {
		t.Helper()
		argv := append(prefix, runc, "--root", state, "run", "--bundle", bundle, id)
		cmd := exec.Command(argv[0], argv[1:]...)
		var out, errOut bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errOut
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("%v: %v", argv, err)
		}
		return fmt.Sprintf("exit %d, stdout %q (stderr %q)", shellStatus(cmd.ProcessState), out.String(), errOut.String())
	}
	id := fmt.Sprintf("vigil-run-%d", os.Getpid())
	alone := run(id + "-alone")
	log := filepath.Join(t.TempDir(), "audit.jsonl")
	if got := run(id+"-vigil", vigilBin, "run", "--log", log, "--"); got != alone {
		b, _ := os.ReadFile(log)
		t.Errorf("under vigil: %s\nalone: %s\naudit records that refused or failed:\n%s", got, alone, telling(b))
	}
}

// telling returns the audit lines that refused, failed or killed.
func telling(log []byte) string {
	var out bytes.Buffer
	for _, l := range bytes.Split(log, []byte{'\n'}) {
		if bytes.Contains(l, []byte(`"errno"`)) && !bytes.Contains(l, []byte(`"ENOENT"`)) ||
			bytes.Contains(l, []byte(`"mismatch"`)) || bytes.Contains(l, []byte(`"level":"error"`)) {
			out.Write(l)
			out.WriteByte('\n')
		}
	}
	return out.String()
}
