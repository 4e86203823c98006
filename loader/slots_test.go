package loader

import (
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// collider is a thread id that shares tid's slot and is no thread: above
// any pid_max (at most 1<<22), and BindSlots divides 1<<30.
func collider(tid int) int { return tid + 1<<30 }

// TestCollidingBindingGoesToTheHash: when another thread's pending binding
// holds a thread's slot, the thread's binding goes to the bindings hash and
// is checked all the same (a wrong inode kills, the right one holds), the
// other binding stays in the slot and never applies to the thread.
func TestCollidingBindingGoesToTheHash(t *testing.T) {
	l, s := loadForTest(t)
	path := tempFile(t, t.TempDir())
	st := statOf(t, path)
	hold := func(tid int) {
		other := fileBinding(path, st)
		other.Ino++ // would kill the thread if it applied to it
		if err := l.Bind(collider(tid), other); err != nil {
			t.Fatalf("Bind of the colliding thread: %v", err)
		}
	}
	for _, c := range []struct {
		name  string
		wrong bool
	}{{"wrong inode", true}, {"right inode", false}} {
		t.Run(c.name, func(t *testing.T) {
			var tid int
			o := runHelper(t, l, "open", path, func(t0 int) *Binding {
				tid = t0
				hold(tid)
				b := fileBinding(path, st)
				if c.wrong {
					b.Ino++
				}
				return b
			})
			defer l.Unbind(collider(tid))
			if len(l.hashedTids) == 0 {
				t.Error("the thread's binding did not go to the hash")
			}
			if c.wrong {
				if o.signal != syscall.SIGKILL {
					t.Fatalf("watchee: signal %v, report %q; want SIGKILL", o.signal, o.report)
				}
				s.wait(t, "VIOLATION", func(ev *Event) bool { return ev.Tid == o.tid && ev.Type == EventViolation })
				return
			}
			if o.signal != 0 || !strings.HasPrefix(o.report, "ok ") {
				t.Fatalf("watchee: signal %v, report %q", o.signal, o.report)
			}
			ev := s.wait(t, "EXIT", func(ev *Event) bool { return ev.Tid == o.tid && ev.Flags.Has(FlagBound) })
			if ev.Type != EventExit || ev.Reason != ReasonOK {
				t.Fatalf("got %+v, want a clean EXIT", ev)
			}
			if k := loadKey(l.slot(uint32(tid))); uint32(k) != uint32(collider(tid)) || k>>32 != slotPublished {
				t.Errorf("slot key %#x, want the colliding thread's, published", k)
			}
		})
	}
}

// TestOtherThreadsSlotIsNoBinding: a published binding of another thread
// in a thread's slot is not the thread's: its open runs unchecked by it.
func TestOtherThreadsSlotIsNoBinding(t *testing.T) {
	l, _ := loadForTest(t)
	path := tempFile(t, t.TempDir())
	st := statOf(t, path)
	var tid int
	o := runHelper(t, l, "open", path, func(t0 int) *Binding {
		tid = t0
		other := fileBinding(path, st)
		other.Ino++
		if err := l.Bind(collider(tid), other); err != nil {
			t.Fatalf("Bind: %v", err)
		}
		return nil
	})
	defer l.Unbind(collider(tid))
	if o.signal != 0 || !strings.HasPrefix(o.report, "ok ") {
		t.Fatalf("watchee: signal %v, report %q; another thread's binding applied", o.signal, o.report)
	}
}

// TestUnbindFreesSlotAndHash: Unbind withdraws a binding from its slot and
// from the hash, and frees the slot for another thread.
func TestUnbindFreesSlotAndHash(t *testing.T) {
	l, _ := loadForTest(t)
	b := &Binding{Nr: unix.SYS_OPENAT, Kind: BindFile, ArgIndex: 1, Arg: []byte("/x"), Dev: unix.Mkdev(1, 2), Ino: 3}
	const tid = 0x3ffffff1
	if err := l.Bind(tid, b); err != nil {
		t.Fatal(err)
	}
	if err := l.Bind(collider(tid), b); err != nil { // to the hash
		t.Fatal(err)
	}
	if *l.hashed() != 1 {
		t.Errorf("hashed = %d, want 1", *l.hashed())
	}
	if err := l.Unbind(collider(tid)); err != nil {
		t.Fatal(err)
	}
	if err := l.Unbind(tid); err != nil {
		t.Fatal(err)
	}
	if k := loadKey(l.slot(tid)); k != 0 {
		t.Errorf("slot key %#x after Unbind, want 0", k)
	}
	if *l.hashed() != 0 {
		t.Errorf("hashed = %d after Unbind, want 0", *l.hashed())
	}
	if err := l.Bind(collider(tid), b); err != nil {
		t.Fatal(err)
	}
	if k := loadKey(l.slot(tid)); uint32(k) != uint32(collider(tid)) {
		t.Errorf("slot key %#x, want the freed slot taken", k)
	}
	l.Unbind(collider(tid))
}

// TestQuietBindingSendsOnlyViolations: a quiet binding that holds sends no
// event (the ring buffer keeps order, so a later call's EXIT proves none
// came); one that does not hold still kills and sends its VIOLATION.
func TestQuietBindingSendsOnlyViolations(t *testing.T) {
	l, s := loadForTest(t)
	path := tempFile(t, t.TempDir())
	st := statOf(t, path)
	quiet := runHelper(t, l, "open", path, func(int) *Binding {
		b := fileBinding(path, st)
		b.Quiet = true
		return b
	})
	if quiet.signal != 0 || !strings.HasPrefix(quiet.report, "ok ") {
		t.Fatalf("quiet watchee: signal %v, report %q", quiet.signal, quiet.report)
	}
	marker := runHelper(t, l, "open", path, func(int) *Binding { return fileBinding(path, st) })
	s.wait(t, "EXIT", func(ev *Event) bool { return ev.Tid == marker.tid && ev.Type == EventExit })
	s.mu.Lock()
	for _, ev := range s.events {
		if ev.Tid == quiet.tid {
			t.Errorf("quiet binding that held sent %+v", ev)
		}
	}
	s.mu.Unlock()

	killed := runHelper(t, l, "open", path, func(int) *Binding {
		b := fileBinding(path, st)
		b.Quiet, b.Ino = true, b.Ino+1
		return b
	})
	if killed.signal != syscall.SIGKILL {
		t.Fatalf("quiet watchee with a wrong inode: signal %v, report %q; want SIGKILL", killed.signal, killed.report)
	}
	ev := s.wait(t, "VIOLATION", func(ev *Event) bool { return ev.Tid == killed.tid && ev.Type == EventViolation })
	if ev.Reason != ReasonObjectMismatch || !ev.Flags.Has(FlagKilled|FlagBound) {
		t.Errorf("got %+v, want a killing OBJECT_MISMATCH", ev)
	}
}

// TestBindAfterCloseFails: once the slots are unmapped, Bind fails (no
// CONTINUE may follow) and Unbind does nothing, instead of writing to
// memory that is gone.
func TestBindAfterCloseFails(t *testing.T) {
	l, _ := loadForTest(t)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b := &Binding{Nr: unix.SYS_OPENAT, Kind: BindFile, ArgIndex: 1, Arg: []byte("/x"), Dev: unix.Mkdev(1, 2), Ino: 3}
	if err := l.Bind(0x3ffffff1, b); err == nil {
		t.Fatal("Bind after Close succeeded")
	}
	if err := l.Unbind(0x3ffffff1); err != nil {
		t.Fatalf("Unbind after Close: %v", err)
	}
}
