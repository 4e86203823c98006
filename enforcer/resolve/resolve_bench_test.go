package resolve

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func BenchmarkResolveAbsolute(b *testing.B) {
	r, err := New()
	if err != nil {
		b.Fatal(err)
	}
	tid := unix.Gettid()
	req := Request{Tid: tid, Tgid: os.Getpid(), Dirfd: unix.AT_FDCWD, Path: "/etc/hostname", Follow: true}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := r.Resolve(req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpenProcRoot(b *testing.B) {
	r, _ := New()
	tid := unix.Gettid()
	for i := 0; i < b.N; i++ {
		fd, err := r.openProc(tid, "root")
		if err != nil {
			b.Fatal(err)
		}
		unix.Close(fd)
	}
}
