package enforcer

import (
	"bytes"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigilsec/vigil/enforcer/notify"
)

// fakeWait is a notification that waits until its watchee dies.
type fakeWait struct {
	notify.Answerer
	cmd    *exec.Cmd
	checks atomic.Int32
}

func (f *fakeWait) Valid(uint64) error {
	f.checks.Add(1)
	// A dead watchee is a zombie until the test reaps it.
	b, err := os.ReadFile("/proc/" + strconv.Itoa(f.cmd.Process.Pid) + "/stat")
	if err != nil {
		return notify.ErrGone
	}
	if i := bytes.LastIndexByte(b, ')'); i < 0 || i+2 >= len(b) || b[i+2] == 'Z' {
		return notify.ErrGone
	}
	return nil
}

// TestWhileWaitingAnswersAtTheWatcheesExit: a wait vigil performs for a
// watchee ends when the watchee dies, not at the next poll — with an hour
// between polls, gone still runs once the process is killed (the pidfd in
// the runtime's poller), and only then.
func TestWhileWaitingAnswersAtTheWatcheesExit(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f := &fakeWait{cmd: cmd}
	gone := make(chan struct{})
	pid := cmd.Process.Pid
	stop := watchWait(f, 1, pid, pid, time.Hour, func(exited bool) {
		if !exited {
			t.Error("gone says the killed watchee is alive")
		}
		close(gone)
	}, nil)
	defer stop()
	select {
	case <-gone:
		t.Fatal("gone ran while the watchee still waits")
	case <-time.After(100 * time.Millisecond):
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gone:
	case <-time.After(20 * time.Second):
		t.Fatalf("the watchee died and gone did not run (%d checks)", f.checks.Load())
	}
	_ = cmd.Wait()
}

// TestWhileWaitingStopsCleanly: stop returns with the pidfd's wait pending,
// and gone never runs after it.
func TestWhileWaitingStopsCleanly(t *testing.T) {
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	f := &fakeWait{cmd: cmd}
	var ran atomic.Bool
	pid := cmd.Process.Pid
	stop := watchWait(f, 1, pid, pid, time.Hour, func(bool) { ran.Store(true) }, nil)
	stop()
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	time.Sleep(50 * time.Millisecond)
	if ran.Load() {
		t.Fatal("gone ran after stop")
	}
}

// TestSignalInterruptsReadsTheThreadsOwnSignals: a pending signal counts
// when it is the thread's to handle — sent to it, or to the process when
// the thread is the leader — and neither blocked nor ignored.
func TestSignalInterruptsReadsTheThreadsOwnSignals(t *testing.T) {
	status := func(pnd, shd, blk, ign string) []byte {
		return []byte("Name:\tpython3\nState:\tD (disk sleep)\nSigQ:\t1/94555\nSigPnd:\t" + pnd +
			"\nShdPnd:\t" + shd + "\nSigBlk:\t" + blk + "\nSigIgn:\t" + ign + "\nSigCgt:\t0000000000002002\n")
	}
	const none, alrm, term = "0000000000000000", "0000000000002000", "0000000000004000"
	for _, tc := range []struct {
		name                string
		pnd, shd, blk, ign  string
		leader, interrupted bool
	}{
		{"nothing pending", none, none, none, none, true, false},
		{"sent to the thread", alrm, none, none, none, false, true},
		{"sent to the process, leader", none, alrm, none, none, true, true},
		{"sent to the process, another thread may take it", none, alrm, none, none, false, false},
		{"blocked", alrm, alrm, alrm, none, true, false},
		{"ignored", term, none, none, term, true, false},
		{"one of two blocked", none, "0000000000006000", alrm, none, true, true},
	} {
		got := signalInterrupts(status(tc.pnd, tc.shd, tc.blk, tc.ign), tc.leader)
		if got != tc.interrupted {
			t.Errorf("%s: interrupted %v, want %v", tc.name, got, tc.interrupted)
		}
	}
	if signalInterrupts([]byte("SigPnd:\tzz\n"), true) {
		t.Error("an unreadable mask interrupted")
	}
}

// FuzzSignalInterrupts: any status text gives an answer, never a panic, and
// a status without pending signals never interrupts.
func FuzzSignalInterrupts(f *testing.F) {
	f.Add([]byte("SigPnd:\t0000000000002000\nShdPnd:\t0000000000000000\nSigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"), true)
	f.Add([]byte("SigPnd:\tzz\n"), false)
	f.Add([]byte("ShdPnd:"), true)
	f.Fuzz(func(t *testing.T, status []byte, leader bool) {
		got := signalInterrupts(status, leader)
		if got && !bytes.Contains(status, []byte("Pnd:")) {
			t.Fatalf("interrupted without a pending mask in %q", status)
		}
	})
}
