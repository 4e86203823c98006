package args

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestNoAllocations holds the hot-path promise: reading and decoding any
// argument, successfully or not, allocates nothing (AF_UNIX paths aside).
func TestNoAllocations(t *testing.T) {
	r := mapRegion(t, "RRG")
	path := r.put(0, []byte("/etc/passwd\x00"))
	long := r.addr(PageSize) // a full page of 'a' up to the guard page
	r.fill(PageSize, "a")
	name := r.put(100, []byte("trusted.overlay.opaque\x00"))
	how := r.put(200, openHowBytes())
	clone := make([]byte, CloneArgsSizeLatest)
	hostEndian.PutUint64(clone[0:], unix.CLONE_NEWUSER)
	hostEndian.PutUint64(clone[32:], uint64(unix.SIGCHLD))
	cargs := r.put(300, clone)
	sa := r.put(400, sin("10.0.0.1", 80, 16))
	s := new(Scratch)
	v4, v6 := sin("10.0.0.1", 80, 16), sin6("fe80::1", 22, 2, 28)
	howBytes, cloneBytes := openHowBytes(), clone
	flagBuf := make([]byte, 0, 256)

	cases := []struct {
		name string
		fn   func()
	}{
		{"ReadPath", func() { ReadPath(self, path, s.Path[:]) }},
		{"ReadPath ENAMETOOLONG", func() { ReadPath(self, long, s.Path2[:]) }},
		{"ReadPath EFAULT", func() { ReadPath(self, long+PageSize-10, s.Path[:]) }},
		{"ReadPath ESRCH", func() { ReadPath(1<<30, path, s.Path[:]) }},
		{"ReadXattrName", func() { ReadXattrName(self, name, s.XattrName[:]) }},
		{"ReadXattrValue", func() { ReadXattrValue(self, long, 4096, s.XattrValue[:]) }},
		{"ReadSockaddr", func() { ReadSockaddr(self, sa, 16, s.Sockaddr[:]) }},
		{"ReadStruct with tail", func() { ReadStruct(self, how, 200, OpenHowSizeLatest, s.Struct[:]) }},
		{"ReadOpenHow", func() { ReadOpenHow(self, how, OpenHowSizeVer0, s.Struct[:]) }},
		{"ReadCloneArgs", func() { ReadCloneArgs(self, cargs, CloneArgsSizeVer2, s.Struct[:]) }},
		{"DecodeSockaddr inet", func() { DecodeSockaddr(v4) }},
		{"DecodeSockaddr inet6", func() { DecodeSockaddr(v6) }},
		{"DecodeSockaddr EINVAL", func() { DecodeSockaddr(v4[:8]) }},
		{"DecodeOpenHow", func() { DecodeOpenHow(howBytes) }},
		{"DecodeCloneArgs", func() { DecodeCloneArgs(cloneBytes) }},
		{"DecodeDev", func() { DecodeDev(unix.S_IFCHR, unix.Mkdev(1, 3)) }},
		{"AppendOpenFlags", func() { AppendOpenFlags(flagBuf[:0], unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|1<<40) }},
		{"AppendCloneFlags", func() { AppendCloneFlags(flagBuf[:0], unix.CLONE_NEWUSER|unix.CLONE_NEWNS|1<<40) }},
		{"AppendLegacyCloneFlags", func() { AppendLegacyCloneFlags(flagBuf[:0], unix.CLONE_NEWUSER|17) }},
		{"AppendResolve", func() { AppendResolve(flagBuf[:0], 0x18) }},
		{"Errno", func() { Errno(ErrNameTooLong) }},
		{"process_vm_readv EPERM", func() { Errno(mapReadErr(unix.EPERM)) }},
	}
	for _, c := range cases {
		if n := testing.AllocsPerRun(100, c.fn); n != 0 {
			t.Errorf("%s: %v allocations per call, want 0", c.name, n)
		}
	}
}
