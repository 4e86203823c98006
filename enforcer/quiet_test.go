package enforcer_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// TestReceiversBlockSignalsOnlyWhereRecvEndsWithoutThem checks the signal
// mask of the thread that answers a call. From Linux 6.6 (synchronous
// wake-up, and a blocked RECV that returns when the filter loses its last
// user) a receiver blocks every signal while it serves, so no ADDFD needs
// its own mask changes; before 6.6 the receivers must take SIGURG, which is
// how vigil wakes them when the listener hangs up, or vigil would never
// notice its watchees are gone.
func TestReceiversBlockSignalsOnlyWhereRecvEndsWithoutThem(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	f := newFixture(t)
	var mask atomic.Uint64
	var seen atomic.Bool
	read := withBeforeAnswer(func(n *notify.Notif, path string) {
		if isOpen(n) && path == f.public && !seen.Load() {
			m, err := threadSigBlk()
			if err != nil {
				t.Error(err)
				return
			}
			mask.Store(m)
			seen.Store(true)
		}
	})
	r := supervise(t, f.pol, []string{probe, "open", f.public}, read)
	if r.code != 0 {
		t.Fatalf("probe exited %d: %s", r.code, r.stdout)
	}
	if !seen.Load() {
		t.Fatal("the open of the public file never reached a receiver")
	}
	const sigurg = uint64(1) << (unix.SIGURG - 1)
	const sigint = uint64(1) << (unix.SIGINT - 1)
	blocked := mask.Load()
	if kernelAtLeast(t, 6, 6) {
		if blocked&sigurg == 0 || blocked&sigint == 0 {
			t.Fatalf("receiver's SigBlk %016x: want every signal blocked on this kernel", blocked)
		}
	} else if blocked&sigurg != 0 {
		t.Fatalf("receiver's SigBlk %016x blocks SIGURG, which wakes it at hang-up on this kernel", blocked)
	}
}

// TestEmulationWorkersStartWithNoSignalBlocked: a worker is forked when a
// receiver first needs one, and Go's fork gives the child the forking
// thread's mask; a quiet receiver's would leave the worker deaf to every
// signal it relies on. Workers come from a thread that blocks none.
func TestEmulationWorkersStartWithNoSignalBlocked(t *testing.T) {
	testenv.RequirePrivileged(t)
	probe := testenv.Bin(t, "probe")
	dir := userNSDir(t)
	// mknod in a user namespace is lent by a worker in that namespace.
	r := supervise(t, mustPolicy(t, lendPolicy), []string{probe, "mknod", filepath.Join(dir, "null"), "c", "1", "3"}, inUserNS())
	if got := strings.TrimSpace(r.stdout); got != "ok" {
		t.Fatalf("mknod c 1 3 under vigil: %q", got)
	}
	workers := testEmulator(t).Workers()
	if len(workers) == 0 {
		t.Fatal("no emulation worker is running after a lent mknod")
	}
	for _, pid := range workers {
		blocked, err := sigBlk(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		if blocked != 0 {
			t.Errorf("worker %d starts with SigBlk %016x, want none blocked", pid, blocked)
		}
	}
}

// threadSigBlk reads the calling thread's blocked-signal mask.
func threadSigBlk() (uint64, error) { return sigBlk("/proc/thread-self/status") }

// sigBlk reads the blocked-signal mask from a status file of /proc.
func sigBlk(status string) (uint64, error) {
	b, err := os.ReadFile(status)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "SigBlk:"); ok {
			return strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		}
	}
	return 0, fmt.Errorf("no SigBlk line in %s", status)
}

// kernelAtLeast reports whether the running kernel is major.minor or newer.
func kernelAtLeast(t *testing.T, major, minor int) bool {
	t.Helper()
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	rel := unix.ByteSliceToString(u.Release[:])
	var ma, mi int
	if _, err := fmt.Sscanf(rel, "%d.%d", &ma, &mi); err != nil {
		t.Fatalf("kernel release %q: %v", rel, err)
	}
	return ma > major || ma == major && mi >= minor
}
