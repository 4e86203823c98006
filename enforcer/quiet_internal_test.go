package enforcer

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/loader"
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

// TestViolatedQuietGrantIsRecordedInFull: no event confirms a quiet grant
// that held, but one the kernel finds violated is killed and must still be
// written as the full record of the decision (rule, arguments, mismatch),
// at error level, like a violated grant whose record was parked.
func TestViolatedQuietGrantIsRecordedInFull(t *testing.T) {
	f := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := newCore(t, "version: 1\nrules:\n  - name: elsewhere\n    syscalls: [openat]\n    match: { path: [\"/nonexistent/**\"] }\n    action: deny\n", false)
	var out bytes.Buffer
	c.sup.audit = zerolog.New(&out).Level(zerolog.InfoLevel)
	r := c.decide(&fakeListener{}, unix.SYS_OPENAT, uint64(unix.AT_FDCWD&0xffffffff), c.cstr(f), unix.O_RDONLY)
	if b, ok := c.maps.binding(c.tid); r.Flags != continueFlag || !ok || !b.Quiet {
		t.Fatalf("answer %+v, binding %+v: want a quiet bound CONTINUE", r, b)
	}
	if out.Len() != 0 {
		t.Fatalf("a quiet grant wrote a record: %s", out.String())
	}
	k := c.sup.cfg.Kernel
	k.violation(&loader.Event{Type: loader.EventViolation, Tgid: os.Getpid(), Tid: c.tid, Nr: unix.SYS_OPENAT,
		Reason: loader.ReasonObjectMismatch, Flags: loader.FlagAtExit})
	rec, err := audit.ParseRecord(bytes.TrimSpace(out.Bytes()))
	if err != nil {
		t.Fatalf("the violation's record %q: %v", out.String(), err)
	}
	if rec.Level != "error" || rec.Rule != "default" || rec.Args.Path != f || rec.Verified != audit.VerifiedMismatch {
		t.Errorf("violation record %s: want level error, rule default, path %s, verified %s", rec.String(), f, audit.VerifiedMismatch)
	}
	if p := k.takeQuiet(c.tid, os.Getpid(), unix.SYS_OPENAT); p != nil {
		t.Errorf("the violated grant's record is still kept")
	}
}
