package enforcer

import (
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigilsec/vigil/loader"
)

// TestPendingQueueKeepsOrderAndTail: a thread's bound decisions wait in
// call order while the event reader lags (hundreds of them when events are
// batched), and each change to the queue — a confirmation taking the oldest
// for its syscall, a withdrawn CONTINUE dropping the newest, the sweep
// dropping old ones — leaves the head's tail at the last decision, where
// the next one is appended.
func TestPendingQueueKeepsOrderAndTail(t *testing.T) {
	k := newKernel(newFakeMaps(), zerolog.Nop())
	t.Cleanup(func() { _ = k.Close() })
	const tid, tgid = 4242, 4242
	audit := zerolog.Nop()
	expect := func(nrs ...int) {
		for _, nr := range nrs {
			k.expect(tid, nr, decision{}, &audit)
		}
	}
	queue := func() []int {
		t.Helper()
		k.mu.Lock()
		defer k.mu.Unlock()
		head := k.pending[tid]
		var nrs []int
		var last *pendingDecision
		for p := head; p != nil; p = p.next {
			nrs, last = append(nrs, p.nr), p
			if len(nrs) > 64 {
				t.Fatalf("the queue loops: %v...", nrs[:8])
			}
			if p != head && p.tail != nil {
				t.Errorf("decision %d inside the queue has a tail", p.nr)
			}
		}
		if head != nil && head.tail != last {
			t.Errorf("the head's tail is %p, want the last decision (%d, %p)", head.tail, last.nr, last)
		}
		return nrs
	}
	want := func(nrs ...int) {
		t.Helper()
		if got := queue(); !slices.Equal(got, nrs) {
			t.Fatalf("queue %v, want %v", got, nrs)
		}
	}

	expect(100, 101, 102)
	want(100, 101, 102)
	// The event of 101: 100's record is written as unconfirmed.
	p, stale := k.take(tid, tgid, 101)
	if p == nil || p.nr != 101 || len(stale) != 1 || stale[0].nr != 100 {
		t.Fatalf("take 101: %+v, stale %d", p, len(stale))
	}
	k.release(p)
	k.unconfirmed(stale)
	want(102)
	expect(103, 104)
	want(102, 103, 104)
	k.withdraw(tid) // 104's CONTINUE did not reach the watchee
	want(102, 103)
	expect(105)
	want(102, 103, 105)

	// The sweep drops what waited since before the cutoff.
	k.mu.Lock()
	k.pending[tid].since = time.Now().Add(-time.Hour)
	k.mu.Unlock()
	k.sweep(time.Now().Add(-time.Minute))
	want(103, 105)
	expect(106)
	want(103, 105, 106)

	// Taking the last one empties the queue; the next starts a new one.
	for _, nr := range []int{103, 105, 106} {
		p, stale := k.take(tid, tgid, nr)
		if p == nil || len(stale) != 0 {
			t.Fatalf("take %d: %+v, stale %d", nr, p, len(stale))
		}
		k.release(p)
	}
	want()
	expect(107)
	want(107)
	k.withdraw(tid)
	want()
}

// TestConfirmationsAreFlushedOnlyWhileRecordsWait: the programs commit a
// bound call's confirmation without waking the reader, which waits
// without polling (loader.Options.NoPoll), so a parked record must make
// the sweep flush the ring buffer until nothing waits, and then stop: an
// idle vigil is not woken for nothing.
func TestConfirmationsAreFlushedOnlyWhileRecordsWait(t *testing.T) {
	m := newFakeMaps()
	k := newKernel(m, zerolog.Nop())
	t.Cleanup(func() { _ = k.Close() })
	const tid = 4343
	audit := zerolog.Nop()
	flushing := func() bool {
		k.mu.Lock()
		defer k.mu.Unlock()
		return k.flushing
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("gave up waiting: %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	if flushing() || m.flushes.Load() != 0 {
		t.Fatal("the sweep flushes although no record waits")
	}
	for round := 1; round <= 2; round++ {
		k.expect(tid, 2, decision{}, &audit)
		before := m.flushes.Load()
		waitFor("a flush while a record waits", func() bool { return m.flushes.Load() >= before+2 })
		k.withdraw(tid)
		waitFor("the flushing to stop once no record waits", func() bool { return !flushing() })
		stopped := m.flushes.Load()
		time.Sleep(3 * loader.PollInterval)
		if n := m.flushes.Load(); n > stopped+1 {
			t.Fatalf("round %d: %d flushes after no record waited", round, n-stopped)
		}
	}
}
