package emulate

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// offMainThread runs f on a goroutine locked to an OS thread other than the
// process's main thread, and returns when f has. That thread is never given
// back to the Go runtime (the goroutine exits locked, and the runtime ends
// the thread), so f may leave it in any state: a private fs_struct, a
// chroot, another mount namespace.
//
// The main thread is the exception because the runtime does not end it: it
// parks it instead, in whatever state f left. And it is the thread group
// leader, which /proc/self names: a chroot or mount namespace left there
// would be what vigil's own reads of /proc/self/root and
// /proc/self/mountinfo see (they gave the reference view the wrong mounts,
// and readers of atomically replaced files were killed). A goroutine that
// lands on the main thread keeps it locked, so that the runtime cannot give
// it to f, and runs f from another goroutine.
func offMainThread(f func()) {
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		if unix.Gettid() == unix.Getpid() {
			offMainThread(f)
			close(done)
			runtime.UnlockOSThread()
			return
		}
		f()
		close(done)
	}()
	<-done
}
