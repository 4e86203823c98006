package enforcer

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestPOLLERRAloneIsNoHangUp: seccomp's poll reports POLLERR when a signal
// interrupts its wait for the filter's lock, while the watchees still wait
// for answers; only POLLHUP (no users left) or POLLNVAL ends a listener. A
// pipe's write end with no reader polls POLLERR without POLLHUP, the same
// event set.
func TestPOLLERRAloneIsNoHangUp(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	unix.Close(p[0])
	fds := []unix.PollFd{{Fd: int32(p[1]), Events: 0}}
	if _, err := unix.Poll(fds, 0); err != nil || fds[0].Revents&unix.POLLERR == 0 || fds[0].Revents&unix.POLLHUP != 0 {
		t.Fatalf("pipe write end without a reader polls %#x (%v): want POLLERR alone", fds[0].Revents, err)
	}
	if hungUp(p[1]) {
		t.Fatal("POLLERR alone was taken for a hang-up")
	}

	// A real hang-up: the read end of a pipe whose writer closed polls
	// POLLHUP.
	var q [2]int
	if err := unix.Pipe2(q[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(q[0])
	unix.Close(q[1])
	if !hungUp(q[0]) {
		t.Fatal("POLLHUP was not taken for a hang-up")
	}
}
