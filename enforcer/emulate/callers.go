package emulate

import (
	"fmt"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// snapshot is what the emulator reads of a calling thread before it acts for
// it: credentials, root, user and mount namespaces, through one descriptor
// of /proc/<tid> (reads through it fail once the thread is gone, even if its
// id is reused). Reading it costs ten syscalls, more than the emulated call
// itself; with an eBPF change counter (Caller.Changes) it is taken once per
// thread and epoch and reused while the counter stays put, since every
// syscall that could change it moves the counter (bpf/vigil.bpf.c,
// changes_view) — docs/design.md §2, rule 9.
type snapshot struct {
	held
	tid int
	// tidfd is /proc/<tid> (O_PATH), root the thread's root (O_PATH).
	tidfd, root int
	cred        creds
	user, mnt   nsID
	// rid is root's identity, read only when the thread shares vigil's
	// namespaces (the inline executor's test); ridOK says it was.
	rid   rootID
	ridOK bool
}

// heldPidfd is a thread's pidfd (getFd), kept the same way: the thread ids
// it could name again are new threads, whose clone moved the epoch.
type heldPidfd struct {
	held
	fd int
}

// held is what a per-thread cache keeps with each value: the epoch it was
// read at, and its holders — the cache while it keeps it, and each user.
// The value's descriptors close with the last holder.
type held struct {
	epoch Epoch
	refs  int
}

func (h *held) base() *held { return h }

// cachedValue is a value threadCache keeps: *snapshot or *heldPidfd.
type cachedValue interface {
	base() *held
	close()
}

// maxSnapshots bounds the values a threadCache keeps: each holds
// descriptors.
const maxSnapshots = 256

// threadCache keeps one value per thread for the epoch it was read at, for
// callers with a change counter (Caller.Changes); others get nothing kept.
type threadCache[T cachedValue] struct {
	mu sync.Mutex
	m  map[int]T
}

// get returns c's value of epoch c.Changes, held, or the zero T; a value of
// another epoch goes (it can never be used again).
func (tc *threadCache[T]) get(c Caller) T {
	var none T
	if c.Changes.Source == 0 {
		return none
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	v, ok := tc.m[c.Tid]
	if !ok {
		return none
	}
	if v.base().epoch != c.Changes {
		delete(tc.m, c.Tid)
		unref(v)
		return none
	}
	v.base().refs++
	return v
}

// put keeps v, which its caller holds, for c's thread.
func (tc *threadCache[T]) put(c Caller, v T) {
	if c.Changes.Source == 0 {
		return
	}
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.m == nil {
		tc.m = make(map[int]T)
	}
	for t, o := range tc.m {
		if len(tc.m) < maxSnapshots {
			break
		}
		delete(tc.m, t)
		unref(o)
	}
	if o, ok := tc.m[c.Tid]; ok {
		unref(o)
	}
	v.base().refs++
	tc.m[c.Tid] = v
}

// release drops a holder's reference to v.
func (tc *threadCache[T]) release(v T) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	unref(v)
}

// clear drops every kept value (Close).
func (tc *threadCache[T]) clear() {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for t, v := range tc.m {
		delete(tc.m, t)
		unref(v)
	}
}

func unref[T cachedValue](v T) {
	h := v.base()
	h.refs--
	if h.refs == 0 {
		v.close()
	}
}

func (h *heldPidfd) close() {
	if h.fd >= 0 {
		unix.Close(h.fd)
		h.fd = -1
	}
}

func (s *snapshot) close() {
	for _, fd := range []*int{&s.tidfd, &s.root} {
		if *fd >= 0 {
			unix.Close(*fd)
			*fd = -1
		}
	}
}

// closeTid closes /proc/<tid> of a snapshot no one else holds, once its
// holder no longer needs it.
func (s *snapshot) closeTid() {
	if s.tidfd >= 0 {
		unix.Close(s.tidfd)
		s.tidfd = -1
	}
}

// takeSnapshot reads c's snapshot, held once by its caller. Errors are
// ESRCH (the thread is gone) or say what could not be read.
func (e *Emulator) takeSnapshot(c Caller) (*snapshot, error) {
	s := &snapshot{held: held{epoch: c.Changes, refs: 1}, tid: c.Tid, tidfd: -1, root: -1}
	var err error
	if s.tidfd, err = unix.Openat(e.procfd, strconv.Itoa(c.Tid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		return nil, unix.ESRCH
	}
	bp := e.bufs.Get().(*[]byte)
	b, err := readProcRecord(s.tidfd, "status", *bp)
	if err == nil {
		s.cred, err = parseStatus(b)
		if err != nil {
			err = fmt.Errorf("reading credentials of %d: %w", c.Tid, err)
		}
	} else {
		err = unix.ESRCH
	}
	e.bufs.Put(bp)
	if err == nil {
		if s.root, err = unix.Openat(s.tidfd, "root", unix.O_PATH|unix.O_CLOEXEC, 0); err != nil {
			err = unix.ESRCH
		}
	}
	if err == nil {
		if s.user, err = statNS(s.tidfd, "ns/user"); err != nil {
			err = unix.ESRCH
		}
	}
	if err == nil {
		if s.mnt, err = statNS(s.tidfd, "ns/mnt"); err != nil {
			err = unix.ESRCH
		}
	}
	if err == nil && e.inline != nil && s.user == e.selfUser && s.mnt == e.selfMnt {
		if s.rid, err = statRoot(s.root); err != nil {
			err = unix.ESRCH
		}
		s.ridOK = err == nil
	}
	if err != nil {
		s.close()
		return nil, err
	}
	return s, nil
}

// snapshotOf returns c's snapshot, held: the cached one of c's epoch, or a
// new one, cached when c has a change counter.
func (e *Emulator) snapshotOf(c Caller) (*snapshot, error) {
	if s := e.snaps.get(c); s != nil {
		return s, nil
	}
	s, err := e.takeSnapshot(c)
	if err != nil {
		return nil, err
	}
	e.snaps.put(c, s)
	return s, nil
}
