package enforcer_test

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/enforcer/testenv"
)

// BenchmarkTrappedOpen measures one trapped openat+close of an allowed file
// under the supervisor, for a content-independent rule (vigil only passes the
// call on, like the C reference supervisor) and for a path rule (vigil also
// resolves the path). Compare with scripts/bench-open.sh for bare and refsup.
func BenchmarkTrappedOpen(b *testing.B) {
	testenv.RequirePrivileged(b)
	probe := testenv.Bin(b, "probe")
	for _, bc := range []struct{ name, policy string }{
		{"content-independent", "version: 1\nrules:\n  - syscalls: [openat]\n    action: allow\n"},
		{"path-rule", "version: 1\nrules:\n  - syscalls: [openat]\n    match: { path: [\"/etc/shadow\"] }\n    action: deny\n"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			pol := mustPolicy(b, bc.policy)
			b.ResetTimer()
			r := supervise(b, pol, []string{probe, "loop", fmt.Sprint(b.N), "/etc/hostname"}, withAuditTo(io.Discard))
			b.StopTimer()
			if strings.TrimSpace(r.stdout) != "ok" {
				b.Fatalf("probe: %q", r.stdout)
			}
		})
	}
}

// BenchmarkTrappedOpenUnbound is BenchmarkTrappedOpen's path rule in the
// naive mode: the difference is what the eBPF binding costs per open.
func BenchmarkTrappedOpenUnbound(b *testing.B) {
	testenv.RequirePrivileged(b)
	probe := testenv.Bin(b, "probe")
	pol := mustPolicy(b, "version: 1\nrules:\n  - syscalls: [openat]\n    match: { path: [\"/etc/shadow\"] }\n    action: deny\n")
	b.ResetTimer()
	r := supervise(b, pol, []string{probe, "loop", fmt.Sprint(b.N), "/etc/hostname"}, withAuditTo(io.Discard), naive())
	b.StopTimer()
	if strings.TrimSpace(r.stdout) != "ok" {
		b.Fatalf("probe: %q", r.stdout)
	}
}
