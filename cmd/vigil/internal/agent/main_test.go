package agent

import (
	"fmt"
	"os"
	"testing"
)

// helperEnv selects a helper role when the test binary re-executes itself:
// a fake container that owns a real seccomp listener, a peer that connects
// as another user, or an agent process the runc tests can kill.
const helperEnv = "VIGIL_AGENT_TEST_HELPER"

func TestMain(m *testing.M) {
	if role := os.Getenv(helperEnv); role != "" {
		code, err := runHelper(role)
		if err != nil {
			fmt.Fprintf(os.Stderr, "helper %s: %v\n", role, err)
		}
		os.Exit(code)
	}
	os.Exit(m.Run())
}
