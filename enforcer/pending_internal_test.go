package enforcer

import (
	"slices"
	"testing"
	"time"

	"github.com/rs/zerolog"
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
