package main

import (
	"strings"
	"testing"
)

// TestUsageErrorsExit2 holds every command to one contract: a mistake in
// the command line exits 2 with a message, before anything runs.
func TestUsageErrorsExit2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--bogus"}, "unknown flag"},
		{[]string{"frobnicate"}, "unknown command"},
		{[]string{"run"}, "requires at least 1 arg"},
		{[]string{"run", "--bogus", "--", "true"}, "unknown flag"},
		{[]string{"run", "--log-level", "loud", "--", "true"}, "--log-level"},
		{[]string{"run", "--metrics-addr", "9464", "--", "true"}, "want host:port"},
		{[]string{"policy", "check"}, "requires at least 1 arg"},
		{[]string{"policy", "default", "extra"}, "unknown command"},
		{[]string{"bench", "--reps", "0"}, "--reps must be at least 1"},
		{[]string{"bench", "--reps", "-3"}, "--reps must be at least 1"},
		{[]string{"bench", "--iterations", "-1"}, "--iterations must be at least 0"},
		{[]string{"bench", "--run-time", "0s"}, "--run-time must be positive"},
		{[]string{"bench", "--memory-calls", "-1"}, "--memory-calls must be at least 0"},
		{[]string{"bench", "--reps", "many"}, "invalid argument"},
		{[]string{"bench", "--workloads", "fork"}, `workload "fork"`},
		{[]string{"bench", "--mechanisms", "gvisor"}, `mechanism "gvisor"`},
		{[]string{"bench", "extra"}, "unknown command"},
		{[]string{"bench", "compare", "a.json"}, "requires at least 2 arg"},
		{[]string{"agent", "extra"}, "unknown command"},
		{[]string{"agent", "--handoff-timeout", "0s"}, "--handoff-timeout must be positive"},
		{[]string{"agent", "--handoff-timeout", "soon"}, "invalid argument"},
		{[]string{"agent", "seccomp-profile", "extra"}, "unknown command"},
		{[]string{"doctor", "extra"}, "unknown command"},
		{[]string{"version", "extra"}, "unknown command"},
		{[]string{"completion", "tcsh"}, `unknown command "tcsh" for "vigil completion"`},
	} {
		_, stderr, code := vigil(t, tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) {
			t.Errorf("vigil %s: exit %d, stderr %q; want exit 2 and %q", strings.Join(tc.args, " "), code, stderr, tc.want)
		}
	}
}

func TestUnknownSubcommandsOfGroupsExit2WithASuggestion(t *testing.T) {
	_, stderr, code := vigil(t, "policy", "chek", "p.yaml")
	if code != 2 || !strings.Contains(stderr, `unknown command "chek" for "vigil policy"; did you mean check?`) {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	stdout, _, code := vigil(t, "policy")
	if code != 0 || !strings.Contains(stdout, "Available Commands") {
		t.Fatalf("vigil policy: exit %d\n%s", code, stdout)
	}
}
