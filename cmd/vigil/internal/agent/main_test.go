package agent

import (
	"fmt"
	"os"
	"testing"

	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/reexec"
)

// helperEnv selects a helper role when the test binary re-executes itself:
// a fake container that owns a real seccomp listener, a peer that connects
// as another user, or an agent process (Main, as `vigil agent` runs it) the
// tests can signal and kill.
const helperEnv = "VIGIL_AGENT_TEST_HELPER"

func TestMain(m *testing.M) {
	// The agent's emulation engine re-executes this binary as its worker.
	reexec.Run(emulate.WorkerRole())
	if role := os.Getenv(helperEnv); role != "" {
		code, err := runHelper(role)
		if err != nil {
			fmt.Fprintf(os.Stderr, "helper %s: %v\n", role, err)
		}
		os.Exit(code)
	}
	os.Exit(m.Run())
}
