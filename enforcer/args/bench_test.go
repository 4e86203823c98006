package args

import (
	"testing"

	"golang.org/x/sys/unix"
)

// benchRegion maps memory for a benchmark and returns the address of data
// placed at off.
func benchRegion(b *testing.B, layout string, off int, data []byte) uint64 {
	return mapRegion(b, layout).put(off, data)
}

// BenchmarkProcessVMReadv is the floor: one process_vm_readv of a page tail.
func BenchmarkProcessVMReadv(b *testing.B) {
	addr := benchRegion(b, "R", 0, []byte("/etc/passwd\x00"))
	var buf [PageSize]byte
	for b.Loop() {
		readOnce(self, addr, buf[:])
	}
}

func BenchmarkReadPathShort(b *testing.B) {
	addr := benchRegion(b, "R", 128, []byte("/etc/passwd\x00"))
	s := new(Scratch)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadPath(self, addr, s.Path[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadPathAcrossPages(b *testing.B) {
	addr := benchRegion(b, "RR", PageSize-6, []byte("/etc/passwd\x00"))
	s := new(Scratch)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadPath(self, addr, s.Path[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadOpenHow(b *testing.B) {
	addr := benchRegion(b, "R", 64, openHowBytes())
	s := new(Scratch)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ReadOpenHow(self, addr, OpenHowSizeVer0, s.Struct[:]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeSockaddrInet(b *testing.B) {
	sa := sin("10.0.0.1", 80, 16)
	b.ReportAllocs()
	for b.Loop() {
		DecodeSockaddr(sa)
	}
}

func BenchmarkDecodeSockaddrInet6(b *testing.B) {
	sa := sin6("fe80::1", 22, 2, 28)
	b.ReportAllocs()
	for b.Loop() {
		DecodeSockaddr(sa)
	}
}

func BenchmarkDecodeSockaddrUnix(b *testing.B) {
	sa := sun("/run/docker.sock\x00")
	b.ReportAllocs()
	for b.Loop() {
		DecodeSockaddr(sa)
	}
}

func BenchmarkDecodeOpenHow(b *testing.B) {
	how := openHowBytes()
	b.ReportAllocs()
	for b.Loop() {
		DecodeOpenHow(how)
	}
}

func BenchmarkDecodeCloneArgs(b *testing.B) {
	c := make([]byte, CloneArgsSizeLatest)
	hostEndian.PutUint64(c[0:], unix.CLONE_NEWUSER)
	hostEndian.PutUint64(c[32:], uint64(unix.SIGCHLD))
	b.ReportAllocs()
	for b.Loop() {
		DecodeCloneArgs(c)
	}
}

func BenchmarkDecodeDev(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		DecodeDev(unix.S_IFCHR|0o666, unix.Mkdev(1, 3))
	}
}

func BenchmarkAppendOpenFlags(b *testing.B) {
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendOpenFlags(buf[:0], unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC)
	}
}
