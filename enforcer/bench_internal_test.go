package enforcer

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/notify"
)

// BenchmarkDecideBoundOpenRecorded is BenchmarkDecideBoundOpen with allow
// records written (as with --log FILE, level debug): each grant's record is
// parked for the kernel's confirmation (withdrawn here, as no kernel
// confirms), where BenchmarkDecideBoundOpen's quiet grants park nothing.
func BenchmarkDecideBoundOpenRecorded(b *testing.B) {
	f := filepath.Join(b.TempDir(), "f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	c := newCore(b, "version: 1\nrules:\n  - syscalls: [openat]\n    match: { path: [\"/nonexistent/**\"] }\n    action: deny\n", false)
	c.sup.quietAllows = false
	path := c.cstr(f)
	l := &fakeListener{resps: make([]notify.Resp, 0, 1)}
	n := notify.Notif{ID: 7, Pid: uint32(c.tid)}
	n.Data.Nr = unix.SYS_OPENAT
	n.Data.Arch = notify.AuditArchX86_64
	n.Data.Args = [6]uint64{uint64(unix.AT_FDCWD & 0xffffffff), path, unix.O_RDONLY}
	k := c.sup.cfg.Kernel
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l.resps = l.resps[:0]
		c.sup.first.handle(l, &n)
		if len(l.resps) != 1 || l.resps[0].Flags != continueFlag {
			b.Fatalf("answer %+v", l.resps)
		}
		k.withdraw(c.tid)
	}
}
