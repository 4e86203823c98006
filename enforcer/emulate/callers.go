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
	epoch Epoch
	tid   int
	// tidfd is /proc/<tid> (O_PATH), root the thread's root (O_PATH).
	tidfd, root int
	cred        creds
	user, mnt   nsID
	// rid is root's identity, read only when the thread shares vigil's
	// namespaces (the inline executor's test); ridOK says it was.
	rid   rootID
	ridOK bool

	// refs counts holders: the cache (while the snapshot is in it) and
	// each Prepared using it. The descriptors close with the last.
	refs int
}

// maxSnapshots bounds the snapshots kept: each holds two descriptors.
const maxSnapshots = 256

// snapshots caches one snapshot per thread, for the epoch it was read at,
// and one pidfd per thread (pidfds) the same way.
type snapshots struct {
	mu     sync.Mutex
	m      map[int]*snapshot
	pidfds map[int]*heldPidfd
}

// heldPidfd is a thread's pidfd (getFd), kept for the epoch it was opened
// at: the thread ids it could name again are new threads, whose clone moved
// the epoch. refs counts the cache and each caller using it.
type heldPidfd struct {
	epoch Epoch
	fd    int
	refs  int
}

// pidfd returns c's cached pidfd, held, or nil.
func (ss *snapshots) pidfd(c Caller) *heldPidfd {
	if c.Changes.Source == 0 {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	h := ss.pidfds[c.Tid]
	if h == nil {
		return nil
	}
	if h.epoch != c.Changes {
		delete(ss.pidfds, c.Tid)
		ss.unrefPidfdLocked(h)
		return nil
	}
	h.refs++
	return h
}

// putPidfd caches h, which its caller holds, when c has a change counter.
func (ss *snapshots) putPidfd(c Caller, h *heldPidfd) {
	if c.Changes.Source == 0 {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.pidfds == nil {
		ss.pidfds = make(map[int]*heldPidfd)
	}
	for tid, o := range ss.pidfds {
		if len(ss.pidfds) < maxSnapshots {
			break
		}
		delete(ss.pidfds, tid)
		ss.unrefPidfdLocked(o)
	}
	if o := ss.pidfds[c.Tid]; o != nil {
		ss.unrefPidfdLocked(o)
	}
	h.refs++
	ss.pidfds[c.Tid] = h
}

func (ss *snapshots) releasePidfd(h *heldPidfd) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.unrefPidfdLocked(h)
}

func (ss *snapshots) unrefPidfdLocked(h *heldPidfd) {
	h.refs--
	if h.refs == 0 && h.fd >= 0 {
		unix.Close(h.fd)
		h.fd = -1
	}
}

// get returns c's snapshot of epoch c.Changes, held, or nil.
func (ss *snapshots) get(c Caller) *snapshot {
	if c.Changes.Source == 0 {
		return nil
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	s := ss.m[c.Tid]
	if s == nil {
		return nil
	}
	if s.epoch != c.Changes {
		delete(ss.m, c.Tid)
		ss.unrefLocked(s)
		return nil
	}
	s.refs++
	return s
}

// put caches s, which its caller holds, when c has a change counter. Every
// snapshot of an older epoch goes: none can be used again.
func (ss *snapshots) put(c Caller, s *snapshot) {
	if c.Changes.Source == 0 {
		return
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.m == nil {
		ss.m = make(map[int]*snapshot)
	}
	if len(ss.m) >= maxSnapshots {
		for tid, o := range ss.m {
			if o.epoch != c.Changes || len(ss.m) >= maxSnapshots {
				delete(ss.m, tid)
				ss.unrefLocked(o)
			}
		}
	}
	if o := ss.m[c.Tid]; o != nil {
		ss.unrefLocked(o)
	}
	s.refs++
	ss.m[c.Tid] = s
}

// release drops a holder's reference.
func (ss *snapshots) release(s *snapshot) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.unrefLocked(s)
}

// clear drops every cached snapshot (Close).
func (ss *snapshots) clear() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for tid, s := range ss.m {
		delete(ss.m, tid)
		ss.unrefLocked(s)
	}
	for tid, h := range ss.pidfds {
		delete(ss.pidfds, tid)
		ss.unrefPidfdLocked(h)
	}
}

func (ss *snapshots) unrefLocked(s *snapshot) {
	s.refs--
	if s.refs == 0 {
		s.close()
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
	s := &snapshot{epoch: c.Changes, tid: c.Tid, tidfd: -1, root: -1, refs: 1}
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
