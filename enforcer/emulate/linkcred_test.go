package emulate

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/testenv"
)

// TestCredIterSeesWhoseCredentialsOpenedAFile opens files in this test
// process, whose threads share one struct cred: the iterator must report its
// own descriptors as opened with its current credentials until a credential
// change (capset, which commits a new struct cred even when nothing changes
// in value) makes every earlier descriptor foreign, and EBADF for a closed
// descriptor.
func TestCredIterSeesWhoseCredentialsOpenedAFile(t *testing.T) {
	testenv.RequirePrivileged(t)
	it, err := loadCredIter()
	if err != nil {
		t.Fatalf("loading the f_cred iterator: %v", err)
	}
	defer it.close()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tid := unix.Gettid()
	same, err := it.openedWithCurrentCreds(tid, int(f.Fd()))
	if err != nil || !same {
		t.Fatalf("own descriptor: same=%v err=%v, want true", same, err)
	}
	if _, err := it.openedWithCurrentCreds(tid, 1<<20); err != unix.EBADF {
		t.Fatalf("closed descriptor: %v, want EBADF", err)
	}
	// A locked thread that changes its credentials gets a struct cred of
	// its own (capset is per thread): the descriptor is foreign to it.
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with its odd credentials
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			done <- err
			return
		}
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			done <- err
			return
		}
		same, err := it.openedWithCurrentCreds(unix.Gettid(), int(f.Fd()))
		if err == nil && same {
			err = os.ErrExist
		}
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatalf("after capset on another thread: %v (want the descriptor reported as foreign)", err)
	}
}
