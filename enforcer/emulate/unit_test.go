package emulate

import (
	"errors"
	"fmt"
	"reflect"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/notify"
)

// Tier 1: no privileges, no kernel features beyond a Linux build.

const sampleStatus = `Name:	sh
Umask:	0027
State:	S (sleeping)
Tgid:	4242
Pid:	4243
Uid:	100000	100001	100002	100003
Gid:	100010	100011	100012	100013
FDSize:	64
Groups:	4 24 27 100000 
NStgid:	4242	1
CapInh:	0000000000000000
CapPrm:	000001ffffffffff
CapEff:	000001fffeffffff
CapBnd:	000001ffffffffff
`

func TestParseStatusReadsFilesystemCredentials(t *testing.T) {
	c, err := parseStatus([]byte(sampleStatus))
	if err != nil {
		t.Fatal(err)
	}
	want := creds{Fsuid: 100003, Fsgid: 100013, Groups: []uint32{4, 24, 27, 100000}, Umask: 0o27, CapEff: 0x1fffeffffff}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("parseStatus = %+v, want %+v", c, want)
	}
	noGroups, err := parseStatus([]byte("Umask:\t0022\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\nCapEff:\t0\n"))
	if err != nil || len(noGroups.Groups) != 0 {
		t.Errorf("empty Groups: %+v, %v", noGroups, err)
	}
	for _, bad := range []string{
		"Uid:\t1\t2\t3\n",                      // three ids
		"Uid:\t1\t2\t3\tx\n",                   // not a number
		"Umask:\t0999\n",                       // not octal
		"CapEff:\tzz\n",                        // not hex
		"Gid:\t1\t2\t3\t99999999999\n",         // overflows uid_t
		"Groups:\t1 2x\n",                      // garbage
		"Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\n", // missing lines (pre-4.7: no Umask)
	} {
		if _, err := parseStatus([]byte(bad)); err == nil {
			t.Errorf("parseStatus(%q) accepted it", bad)
		}
	}
}

func TestParseStatusDoesNotAllocateBeyondGroups(t *testing.T) {
	b := []byte(sampleStatus)
	if n := testing.AllocsPerRun(100, func() { _, _ = parseStatus(b) }); n > 1 {
		t.Errorf("parseStatus allocates %v times per call, want at most 1 (the groups)", n)
	}
}

func TestIDMapTranslatesHostIDs(t *testing.T) {
	m, err := parseIDMap([]byte("         0     100000      65536\n     65536          0          1\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		host  uint32
		inner uint32
		ok    bool
	}{
		{100000, 0, true}, {165535, 65535, true}, {165536, 0, false}, {0, 65536, true}, {99999, 0, false},
	} {
		if got, ok := m.toInner(tc.host); got != tc.inner || ok != tc.ok {
			t.Errorf("toInner(%d) = %d, %v; want %d, %v", tc.host, got, ok, tc.inner, tc.ok)
		}
	}
	if got, ok := identityMap.toInner(4294967294); !ok || got != 4294967294 {
		t.Errorf("identity map: %d %v", got, ok)
	}
	if _, err := parseIDMap([]byte("0 1\n")); err == nil {
		t.Error("short id map line accepted")
	}
}

func TestParseLimit(t *testing.T) {
	b := []byte(`Limit                     Soft Limit           Hard Limit           Units     
Max file size             unlimited            unlimited            bytes     
Max open files            1024                 524288               files     
Max locked memory         8388608              8388608              bytes     
`)
	if l, err := parseLimit(b, "Max open files"); err != nil || l.Cur != 1024 || l.Max != 524288 {
		t.Errorf("Max open files = %+v, %v", l, err)
	}
	if l, err := parseLimit(b, "Max file size"); err != nil || l.Cur != unix.RLIM_INFINITY {
		t.Errorf("Max file size = %+v, %v", l, err)
	}
	if _, err := parseLimit(b, "Max open"); err == nil {
		t.Error("a label prefix matched another line")
	}
}

func TestSplitLastKeepsTrailingSlashes(t *testing.T) {
	for _, tc := range []struct{ in, dir, name string }{
		{"a", "", "a"},
		{"a/b", "a/", "b"},
		{"/a", "/", "a"},
		{"/a/b/", "/a/", "b/"},
		{"a//b//", "a//", "b//"},
		{"/", "/", "/"},
		{"///", "/", "/"},
		{"..", "", ".."},
		{"a/.", "a/", "."},
	} {
		if d, n := splitLast(tc.in); d != tc.dir || n != tc.name {
			t.Errorf("splitLast(%q) = %q, %q; want %q, %q", tc.in, d, n, tc.dir, tc.name)
		}
	}
}

func TestOpenHowFromFlagsIsBuildOpenHow(t *testing.T) {
	for _, tc := range []struct {
		flags int
		mode  uint32
		want  unix.OpenHow
	}{
		{unix.O_RDONLY, 0o644, unix.OpenHow{Flags: oLargefile}},
		{unix.O_CREAT | unix.O_WRONLY, 0o10644, unix.OpenHow{Flags: oLargefile | unix.O_CREAT | unix.O_WRONLY, Mode: 0o644}},
		{unix.O_TMPFILE | unix.O_RDWR, 0o600, unix.OpenHow{Flags: oLargefile | unix.O_TMPFILE | unix.O_RDWR, Mode: 0o600}},
		{unix.O_PATH | unix.O_RDWR | unix.O_NOFOLLOW | unix.O_CLOEXEC | unix.O_TRUNC, 0, unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC}},
		{unix.O_RDONLY | 1<<30, 0, unix.OpenHow{Flags: oLargefile}},
	} {
		if got := OpenHowFromFlags(tc.flags, tc.mode); got != tc.want {
			t.Errorf("OpenHowFromFlags(%#x, %o) = %+v, want %+v", tc.flags, tc.mode, got, tc.want)
		}
	}
}

func TestWireRoundTrip(t *testing.T) {
	req := request{
		Op: opSetxattr, Lookup: LookupNoFollow, Flags: 1, Mode: 2, Resolve: 3, Dev: 4, Uid: -1, Gid: -2, Length: -3,
		Cred: wireCred{Fsuid: 5, Fsgid: 6, Umask: 0o22, CapEff: 7},
		Path: "a/b", Name2: "c", Str: "trusted.overlay.opaque", Value: []byte("y"), FdMask: fdRoot | fdObj,
	}
	var got request
	if err := got.decode(req.encode(nil)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, req) {
		t.Errorf("request round trip:\n got %+v\nwant %+v", got, req)
	}
	resp := response{Status: statusUnsupported, Errno: int32(unix.ELOOP), Val: -9, Exists: true, FdMask: fdOpen, Path: "/x", Name: "y", Msg: "why"}
	var gotResp response
	if err := gotResp.decode(resp.encode(nil)); err != nil {
		t.Fatal(err)
	}
	if gotResp != resp {
		t.Errorf("response round trip: got %+v want %+v", gotResp, resp)
	}
}

func TestWireRejectsMalformedMessages(t *testing.T) {
	full := (&request{Path: "p", Value: []byte("v")}).encode(nil)
	for i := 0; i < len(full); i++ {
		var r request
		if err := r.decode(full[:i]); err == nil {
			t.Errorf("request truncated to %d bytes decoded", i)
		}
	}
	var r request
	if err := r.decode(append(full, 0)); err == nil {
		t.Error("trailing byte accepted")
	}
	// op, lookup, seven u64 fields, the credentials (3 u32 + 1 u64), then
	// a path length of 2GiB.
	huge := make([]byte, 2+7*8+3*4+8)
	huge = append(huge, 0xff, 0xff, 0xff, 0x7f)
	if err := r.decode(huge); err == nil {
		t.Error("oversized length accepted")
	}
	resp := (&response{}).encode(nil)
	resp[0] = 99
	var rr response
	if err := rr.decode(resp); err == nil {
		t.Error("unknown status accepted")
	}
}

func FuzzWireDecode(f *testing.F) {
	f.Add((&request{Op: opOpen, Path: "x"}).encode(nil))
	f.Add((&response{Path: "/y"}).encode(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		var r request
		if r.decode(b) == nil {
			if again := r.encode(nil); string(again) != string(b) {
				t.Errorf("request re-encodes differently")
			}
		}
		var s response
		_ = s.decode(b)
	})
}

func TestFdSetAssignsByRole(t *testing.T) {
	s := emptyFdSet()
	s.assign(fdRoot|fdParent|fdOpen, []int{10, 11, 12})
	if s.root != 10 || s.parent != 11 || s.open != 12 || s.base != -1 || s.obj != -1 {
		t.Errorf("assign: %+v", s)
	}
	fds, mask := s.list()
	if !reflect.DeepEqual(fds, []int{10, 11, 12}) || mask != fdRoot|fdParent|fdOpen || fdCount(mask) != 3 {
		t.Errorf("list: %v %#x", fds, mask)
	}
}

func TestErrnoFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want unix.Errno
	}{
		{nil, 0},
		{unix.ENOENT, unix.ENOENT},
		{fmt.Errorf("wrapped: %w", unix.ESRCH), unix.ESRCH},
		{ErrUnsupported, unix.EPERM},
		{ErrWorker, unix.EPERM},
		{errors.New("anything"), unix.EPERM},
	} {
		if got := Errno(tc.err); got != tc.want {
			t.Errorf("Errno(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestOpensAsOpenerRefusesTerminalsAndBlockingFIFOsBlock(t *testing.T) {
	for _, tc := range []struct {
		mode, maj, min uint32
		flags          uint64
		refuse, block  bool
	}{
		{unix.S_IFCHR, 1, 3, unix.O_WRONLY, false, false},                   // /dev/null
		{unix.S_IFCHR, 5, 0, unix.O_RDWR | unix.O_NOCTTY, true, false},      // /dev/tty: the caller substitutes
		{unix.S_IFCHR, 136, 1, unix.O_RDWR, true, false},                    // a pty without O_NOCTTY, session unknown
		{unix.S_IFCHR, 136, 1, unix.O_RDWR | unix.O_NOCTTY, false, false},   // with it
		{unix.S_IFIFO, 0, 0, unix.O_RDONLY, false, true},                    // blocks for a writer
		{unix.S_IFIFO, 0, 0, unix.O_WRONLY, false, true},                    // blocks for a reader
		{unix.S_IFIFO, 0, 0, unix.O_RDONLY | unix.O_NONBLOCK, false, false}, // does not
		{unix.S_IFIFO, 0, 0, unix.O_RDWR, false, false},                     // never blocks
		{unix.S_IFCHR, 5, 0, unix.O_PATH, false, false},                     // O_PATH opens nothing
		{unix.S_IFREG, 0, 0, unix.O_RDONLY, false, false},
	} {
		p := &Prepared{Exists: true, Mode: tc.mode, tidfd: -1, how: unix.OpenHow{Flags: tc.flags}}
		p.st.Rdev = unix.Mkdev(tc.maj, tc.min)
		if got := p.opensAsOpener() != ""; got != tc.refuse {
			t.Errorf("mode %o %d:%d flags %#x: refused=%v, want %v", tc.mode, tc.maj, tc.min, tc.flags, got, tc.refuse)
		}
		if got := p.Blocking(); got != tc.block {
			t.Errorf("mode %o flags %#x: blocking=%v, want %v", tc.mode, tc.flags, got, tc.block)
		}
	}
}

func TestReplayReturnsTheWithdrawnResultOnlyForTheSameCall(t *testing.T) {
	r := NewReplay(2)
	d := notify.Data{Nr: unix.SYS_MKDIRAT, Arch: notify.AuditArchX86_64, InstructionPointer: 0x1234, Args: [6]uint64{1, 2, 3}}
	if _, _, ok := r.Take(7, &d, "k"); ok {
		t.Fatal("empty replay returned a result")
	}
	r.Withdrawn(7, &d, "k", Result{Val: 0, Fd: -1}, nil)
	other := d
	other.Args[1] = 99
	if _, _, ok := r.Take(7, &other, "k"); ok {
		t.Error("a different call by the same thread replayed")
	}
	if _, _, ok := r.Take(7, &d, "k"); ok {
		t.Error("the record survived a different call by its thread")
	}
	r.Withdrawn(7, &d, "k", Result{Errno: unix.EEXIST, Fd: -1}, nil)
	if res, _, ok := r.Take(8, &d, "k"); ok {
		t.Errorf("another thread got %v", res)
	}
	if _, _, ok := r.Take(7, &d, "other paths"); ok {
		t.Error("a restart with other argument bytes replayed")
	}
	r.Withdrawn(7, &d, "k", Result{Errno: unix.EEXIST, Fd: -1}, nil)
	if res, _, ok := r.Take(7, &d, "k"); !ok || res.Errno != unix.EEXIST {
		t.Errorf("restarted call: %v %v", res, ok)
	}
	// Descriptors held by records are closed when dropped.
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	r.Withdrawn(1, &d, "k", Result{Fd: fd}, nil)
	r.Withdrawn(2, &d, "k", Result{Fd: -1}, nil)
	r.Withdrawn(3, &d, "k", Result{Fd: -1}, nil) // evicts one of the two
	r.Forget(1)
	r.Close()
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != unix.EBADF {
		t.Errorf("the record's fd is still open: %v", err)
	}
}
