package enforcer

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestBoundAllowsAreQuietExactlyWhenUnrecorded: a bound allow whose record
// the audit level leaves out gets a quiet binding and parks nothing; with
// records written (and for a log rule, recorded at info), the binding asks
// for its confirmation and the record waits for it, as before.
func TestBoundAllowsAreQuietExactlyWhenUnrecorded(t *testing.T) {
	f := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	const allow = "version: 1\nrules:\n  - syscalls: [openat]\n    match: { path: [\"/nonexistent/**\"] }\n    action: deny\n"
	const logRule = "version: 1\nrules:\n  - syscalls: [openat]\n    match: { path: [\"/**\"] }\n    action: log\n"
	for _, tc := range []struct {
		name      string
		policy    string
		recorded  bool
		wantQuiet bool
	}{
		{"allow, unrecorded", allow, false, true},
		{"allow, recorded", allow, true, false},
		{"log, unrecorded allows", logRule, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newCore(t, tc.policy, false)
			if tc.recorded {
				c.sup.quietAllows = false
			}
			r := c.decide(&fakeListener{}, unix.SYS_OPENAT, uint64(unix.AT_FDCWD&0xffffffff), c.cstr(f), unix.O_RDONLY)
			if r.Flags != continueFlag {
				t.Fatalf("answer %+v, want CONTINUE", r)
			}
			b, ok := c.maps.binding(c.tid)
			if !ok || b.Quiet != tc.wantQuiet {
				t.Fatalf("binding %+v (written %v), want quiet %v", b, ok, tc.wantQuiet)
			}
			k := c.sup.cfg.Kernel
			k.mu.Lock()
			parked := k.pending[c.tid] != nil
			k.mu.Unlock()
			if parked == tc.wantQuiet {
				t.Errorf("record parked %v, want %v", parked, !tc.wantQuiet)
			}
			k.withdraw(c.tid)
		})
	}
}
