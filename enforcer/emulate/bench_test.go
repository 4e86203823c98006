package emulate_test

import (
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// Benchmarks of one emulated call for a watchee in its own user and mount
// namespaces, end to end on the supervisor's side: credentials and root from
// /proc, the worker round trips, the syscall, descriptors back. They exclude
// the seccomp notification itself (see enforcer's benchmarks).

func benchSetup(b testing.TB) (*emulate.Emulator, emulate.Caller, string) {
	return benchSetupNS(b, true)
}

// benchSetupNS starts the watchee in its own user and mount namespaces
// (served by a worker process) or in vigil's, as host uid hostBase (served
// by vigil's local thread).
func benchSetupNS(b testing.TB, userns bool) (*emulate.Emulator, emulate.Caller, string) {
	testenv.RequirePrivileged(b)
	_, work := workDir(b)
	if err := os.WriteFile(filepath.Join(work, "file"), []byte("hello\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	if err := os.Chown(filepath.Join(work, "file"), hostBase, hostBase); err != nil {
		b.Fatal(err)
	}
	o := childOpts{userns: true, dir: work}
	if !userns {
		o = childOpts{dir: work, cred: &syscall.Credential{Uid: hostBase, Gid: hostBase}}
	}
	w := startWatchee(b, o)
	e := newEmulator(b)
	c := caller(w)
	// Like the enforcer's notify loop, call from one locked thread.
	runtime.LockOSThread()
	b.Cleanup(runtime.UnlockOSThread)
	// Start the worker outside the timing.
	if got := emulatedOpen(b, e, c, "file", emulate.OpenHowFromFlags(unix.O_RDONLY, 0)); got != "ok" {
		b.Fatal(got)
	}
	return e, c, work
}

func benchOpen(b *testing.B, flags int) { benchOpenNS(b, flags, true) }

func benchOpenNS(b *testing.B, flags int, userns bool) {
	e, c, _ := benchSetupNS(b, userns)
	how := emulate.OpenHowFromFlags(flags, 0o644)
	for b.Loop() {
		p, err := e.PrepareOpen(c, unix.AT_FDCWD, "file", how)
		if err != nil {
			b.Fatal(err)
		}
		r, err := e.Open(p)
		p.Close()
		if err != nil || r.Errno != 0 {
			b.Fatal(err, r.Errno)
		}
		unix.Close(r.Fd)
	}
}

// BenchmarkEmulatedOpenat: an open without side effects (one round trip:
// phase A opens the vetted object already).
func BenchmarkEmulatedOpenat(b *testing.B) { benchOpen(b, unix.O_RDONLY) }

// BenchmarkEmulatedOpenatSameNS: the same for a watchee in vigil's own
// namespaces (vigil run without --userns): no worker process.
func BenchmarkEmulatedOpenatSameNS(b *testing.B) { benchOpenNS(b, unix.O_RDONLY, false) }

// BenchmarkEmulatedOpenatTrunc: O_WRONLY|O_CREAT|O_TRUNC of an existing file
// (two round trips: nothing is truncated before the caller vetted it).
func BenchmarkEmulatedOpenatTrunc(b *testing.B) {
	benchOpen(b, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC)
}

// BenchmarkEmulatedMkdirRmdir: two path calls, prepare and do each.
func BenchmarkEmulatedMkdirRmdir(b *testing.B) {
	e, c, _ := benchSetup(b)
	for b.Loop() {
		p, err := e.PrepareAt(c, unix.AT_FDCWD, "d", emulate.LookupParent)
		if err != nil {
			b.Fatal(err)
		}
		if r, err := e.Mkdirat(p, 0o755); err != nil || r.Errno != 0 {
			b.Fatal(err, r.Errno)
		}
		if r, err := e.Unlinkat(p, unix.AT_REMOVEDIR); err != nil || r.Errno != 0 {
			b.Fatal(err, r.Errno)
		}
		p.Close()
	}
}

// BenchmarkNativeOpenat is the floor: vigil opening the same file itself.
func BenchmarkNativeOpenat(b *testing.B) {
	_, _, work := benchSetup(b)
	p := filepath.Join(work, "file")
	for b.Loop() {
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		unix.Close(fd)
	}
}

// BenchmarkNativeMkdirRmdir is the floor for BenchmarkEmulatedMkdirRmdir.
func BenchmarkNativeMkdirRmdir(b *testing.B) {
	_, _, work := benchSetup(b)
	p := filepath.Join(work, "d")
	for b.Loop() {
		if err := unix.Mkdir(p, 0o755); err != nil {
			b.Fatal(err)
		}
		if err := unix.Rmdir(p); err != nil {
			b.Fatal(err)
		}
	}
}
