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

// TestStallCheckSleepsOnlyWhileNoReceiverIsBusy: the stall check stops
// ticking once no receiver is busy, and the next call a receiver starts
// wakes it, however that call's start and the check's last look
// interleave: a stalled call is never left without a check.
func TestStallCheckSleepsOnlyWhileNoReceiverIsBusy(t *testing.T) {
	r := &receiver{}
	p := &pool{receivers: []*receiver{r}, wake: make(chan struct{}, 1)}
	p.watching.Store(true)

	r.busy.Store(1)
	if p.quiesce() {
		t.Fatal("the check stopped while a receiver was busy")
	}
	if !p.watching.Load() {
		t.Fatal("watching was cleared while a receiver was busy")
	}
	r.busy.Store(0)
	if !p.quiesce() {
		t.Fatal("the check kept ticking with every receiver idle")
	}
	if p.watching.Load() {
		t.Fatal("watching stayed set after the check stopped")
	}

	// The next call wakes it, once.
	r.busy.Store(1)
	p.busy()
	p.busy()
	select {
	case <-p.wake:
	default:
		t.Fatal("a call that began while the check slept did not wake it")
	}
	select {
	case <-p.wake:
		t.Fatal("a second call woke the running check again")
	default:
	}

	// The interleaving quiesce guards against: a receiver becomes busy
	// after the first look and before watching is cleared, so it sees
	// watching set and sends nothing. quiesce's second look must keep the
	// check running.
	r.busy.Store(0)
	p.watching.Store(true)
	looks := 0
	p.lookHook = func() {
		looks++
		if looks == 1 {
			r.busy.Store(1)
			p.busy() // watching is still set: no wake
		}
	}
	if p.quiesce() {
		t.Fatal("the check stopped although a receiver became busy as it looked")
	}
	if !p.watching.Load() {
		t.Fatal("the check runs but watching is clear: the next call would wake it needlessly, and a stop would be missed")
	}
}
