package observe

import (
	"encoding/binary"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/loader"
)

// syntheticCall makes an observe record of syscall nr with the given flags,
// path (user memory's copy, or a sockaddr) and kernel path; set changes
// the header further.
func syntheticCall(t *testing.T, nr int, flags loader.ObsFlags, path, kpath string, set func(b []byte)) loader.Call {
	t.Helper()
	b := make([]byte, loader.ObsHeaderSize+len(path)+len(kpath))
	le := binary.LittleEndian
	le.PutUint64(b[0:], 1_000_000) // ts_enter
	le.PutUint64(b[8:], 1_004_321) // ts_exit
	le.PutUint32(b[160:], 4242)    // tgid
	le.PutUint32(b[164:], 4243)    // tid
	le.PutUint32(b[168:], uint32(nr))
	le.PutUint32(b[172:], uint32(flags))
	le.PutUint16(b[192:], uint16(len(path)))
	le.PutUint16(b[194:], uint16(len(kpath)))
	copy(b[224:], "workload")
	copy(b[loader.ObsHeaderSize:], path)
	copy(b[loader.ObsHeaderSize+len(path):], kpath)
	if set != nil {
		set(b)
	}
	c, err := loader.ParseCall(b)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRecordsAreAuditRecords: every kind of event observe writes parses
// strictly into audit.Record, with the supervisor's names and types for
// what the two share.
func TestRecordsAreAuditRecords(t *testing.T) {
	o, err := New(Config{Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	le := binary.LittleEndian
	open, err := loader.ParseCall(syntheticOpen(t, "/tmp/a"))
	if err != nil {
		t.Fatal(err)
	}
	inet := []byte{unix.AF_INET, 0, 0, 80, 127, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}
	for _, tc := range []struct {
		name  string
		c     loader.Call
		v     Verdict
		why   string
		check func(r audit.Record) bool
	}{
		{"phantom open", open, Phantom, "object differs", func(r audit.Record) bool {
			return r.Level == "warn" && r.Phantom && r.PhantomReason == "object differs" && r.Ret != nil && *r.Ret == 3 &&
				r.Args.Dirfd == nil && r.Kernel != nil && r.Kernel.Dev == "254:0" && r.Kernel.Ino == 1234
		}},
		{"unchecked open", open, Unchecked, "chroot", func(r audit.Record) bool {
			return r.Level == "info" && !r.Phantom && r.PhantomUnchecked == "chroot"
		}},
		{"execveat", syntheticCall(t, unix.SYS_EXECVEAT, loader.FlagObsHasPath|loader.FlagObsPathTrunc|loader.FlagObsPathAtExit|
			loader.FlagObsHasObject|loader.FlagObsKPathTrunc, "bin", "/usr/bin", func(b []byte) {
			le.PutUint64(b[24:], 5)                                               // dirfd
			le.PutUint64(b[24+4*8:], unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW) // flags
		}), Literal, "", func(r audit.Record) bool {
			a := r.Args
			return a.Dirfd != nil && *a.Dirfd == 5 && a.Path == "bin" && a.PathTruncated && a.PathReadAtExit &&
				a.Flags == "AT_SYMLINK_NOFOLLOW|AT_EMPTY_PATH" && r.Ret == nil && r.Kernel.PathTruncated && r.Kernel.Path == "/usr/bin"
		}},
		{"openat2", syntheticCall(t, unix.SYS_OPENAT2, loader.FlagObsHasPath|loader.FlagObsHasHow|loader.FlagObsHasRet, "f", "", func(b []byte) {
			le.PutUint64(b[24:], uint64(0xffffff9c))
			le.PutUint64(b[88:], unix.O_CREAT|unix.O_WRONLY)
			le.PutUint64(b[96:], 0o640)
			le.PutUint64(b[104:], unix.RESOLVE_BENEATH)
			le.PutUint64(b[16:], uint64(0xfffffffe)|0xffffffff00000000) // -ENOENT
		}), Literal, "", func(r audit.Record) bool {
			a := r.Args
			return a.Flags == "O_WRONLY|O_CREAT" && a.Mode == "0640" && a.Resolve == "RESOLVE_BENEATH" &&
				r.Errno == "ENOENT" && r.Ret != nil && *r.Ret == -2 && r.LatencyUs == 4.321
		}},
		{"connect", syntheticCall(t, unix.SYS_CONNECT, loader.FlagObsSockaddr|loader.FlagObsHasPeer|loader.FlagObsHasRet, string(inet), "", func(b []byte) {
			le.PutUint64(b[24:], 7)
			le.PutUint16(b[200:], unix.AF_INET)
			le.PutUint16(b[202:], 80)
			copy(b[208:], []byte{127, 0, 0, 1})
		}), Literal, "", func(r audit.Record) bool {
			return r.Args.Fd != nil && *r.Args.Fd == 7 && r.Args.Addr == "127.0.0.1:80" && r.Kernel.Peer == "127.0.0.1:80"
		}},
		{"connect of another family", syntheticCall(t, unix.SYS_CONNECT, loader.FlagObsHasPeer, "", "", func(b []byte) {
			le.PutUint16(b[200:], unix.AF_NETLINK)
		}), Literal, "", func(r audit.Record) bool { return r.Kernel.Family == "16" }},
		{"unix connect", syntheticCall(t, unix.SYS_CONNECT, loader.FlagObsHasPeer, "", "", func(b []byte) {
			le.PutUint16(b[200:], unix.AF_UNIX)
		}), Literal, "", func(r audit.Record) bool { return r.Kernel.Family == "AF_UNIX" }},
		{"raw, with a capture error", syntheticCall(t, unix.SYS_GETPID, 0, "", "", func(b []byte) {
			le.PutUint64(b[24+8:], 9)
			le.PutUint32(b[176:], uint32(loader.ErrObsExitMissed))
		}), Literal, "", func(r audit.Record) bool {
			return len(r.Args.Raw) == 6 && r.Args.Raw[1] == 9 && r.CaptureError != "" && r.Kernel == nil
		}},
	} {
		line := o.appendRecord(nil, tc.c, tc.v, tc.why)
		r, err := audit.ParseRecord(line)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if r.Pid != 4242 || r.Tid == 0 || r.Comm != "workload" || r.Time.IsZero() || !tc.check(r) {
			t.Errorf("%s: %s", tc.name, line)
		}
	}
}
