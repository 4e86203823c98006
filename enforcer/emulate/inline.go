package emulate

import (
	"errors"
	"fmt"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// inline runs requests on the calling goroutine's own OS thread, for watchees
// that share vigil's user and mount namespaces, root and umask — every
// watchee of `vigil run` without --userns, unless it chroots. No worker
// round trip: a request costs the syscalls it makes and nothing else, where a
// worker costs two process wake-ups (docs/design.md, emulation).
//
// The thread takes on the watchee's fsuid, fsgid, supplementary groups and
// effective capabilities — per-thread state, which x/sys/unix changes with
// raw per-thread syscalls — and gives vigil's own back before the call
// returns, while the goroutine is locked to it; a watchee with vigil's
// credentials costs no credential syscall at all. Root, cwd and umask are
// per process here (no private fs_struct), so the executor is only chosen
// when the watchee's equal vigil's (executorFor), and requests that need a
// cwd of /proc or set a process-wide limit go to a worker (inlineOp).
type inline struct {
	// self is vigil's own credential state, which every call ends in.
	self       threadState
	selfGroups []int
	perm       [2]uint32
	proc       int

	// broken is set when a thread could not be given vigil's credentials
	// back; later calls go to workers.
	mu     sync.Mutex
	broken bool

	states sync.Pool // *workerState
}

// newInline records vigil's credentials, root and umask as the state every
// inline call starts from and returns to.
func newInline(procfd int, buf []byte) (*inline, error) {
	b, err := readProcFile(procfd, "thread-self/status", buf)
	if err != nil {
		return nil, fmt.Errorf("reading vigil's own credentials: %w", err)
	}
	cr, err := parseStatus(b)
	if err != nil {
		return nil, fmt.Errorf("reading vigil's own credentials: %w", err)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return nil, fmt.Errorf("capget: %w", err)
	}
	root, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening /: %w", err)
	}
	rid, err := statRoot(root)
	unix.Close(root)
	if err != nil {
		return nil, fmt.Errorf("identifying vigil's root: %w", err)
	}
	x := &inline{
		self: threadState{
			valid: true, root: rid, fsuid: cr.Fsuid, fsgid: cr.Fsgid, umask: cr.Umask,
			capEff: uint64(data[0].Effective) | uint64(data[1].Effective)<<32,
			groups: groupsKey(cr.Groups),
		},
		selfGroups: hostGroups(cr.Groups),
		perm:       [2]uint32{data[0].Permitted, data[1].Permitted},
		proc:       procfd,
	}
	x.states.New = func() any {
		return &workerState{proc: procfd, perm: x.perm, inline: true, link: make([]byte, unix.PathMax)}
	}
	return x, nil
}

// serves reports whether a watchee in vigil's namespaces with this root and
// umask can be served inline.
func (x *inline) serves(root rootID, umask uint32) bool {
	if root != x.self.root || umask != x.self.umask {
		return false
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	return !x.broken
}

// inlineOp reports whether req can run on a thread that shares vigil's cwd
// and resource limits: truncate sets RLIMIT_FSIZE, which is per process, and
// the path-only xattr calls name the object relative to a cwd of /proc.
func inlineOp(req *request) bool {
	switch req.Op {
	case opTruncate:
		return false
	case opSetxattr, opRemovexattr:
		return req.Lookup == lookupFd
	}
	return true
}

// isSelf reports whether a caller with credentials c would pass every
// access check vigil's own thread passes: the same fsuid, fsgid, groups and
// effective capabilities.
func (x *inline) isSelf(c *creds) bool {
	return c.Fsuid == x.self.fsuid && c.Fsgid == x.self.fsgid && c.CapEff == x.self.capEff &&
		groupsKey(c.Groups) == x.self.groups
}

func (x *inline) maps() (idMap, idMap) { return identityMap, identityMap }

func (x *inline) setsGroups() bool { return true }

func (x *inline) call(req *request, in fdSet) (response, fdSet, error) {
	if !inlineOp(req) {
		return response{}, emptyFdSet(), fmt.Errorf("%w: op %d cannot run inline", errNotSent, req.Op)
	}
	w := x.states.Get().(*workerState)
	w.cur = x.self
	out := emptyFdSet()
	runtime.LockOSThread()
	resp := w.handle(req, &in, &out)
	if err := x.restore(w); err != nil {
		// The thread keeps a watchee's credentials: leave the goroutine
		// locked to it, so the thread ends with the goroutine instead of
		// serving Go code as someone else.
		x.mu.Lock()
		x.broken = true
		x.mu.Unlock()
		out.closeAll()
		return response{}, emptyFdSet(), fmt.Errorf("%w: giving vigil's credentials back to its thread: %w", ErrWorker, err)
	}
	runtime.UnlockOSThread()
	x.states.Put(w)
	return resp, out, nil
}

// restore gives the thread vigil's own credentials back, in the order enter
// takes them: full capabilities first (CAP_SETUID, CAP_SETGID), the ids, then
// vigil's effective set (setfsuid may have changed it).
func (x *inline) restore(w *workerState) error {
	if w.cur == x.self {
		return nil
	}
	w.cur.valid = false
	full := uint64(x.perm[0]) | uint64(x.perm[1])<<32
	if err := w.setCaps(full); err != nil {
		return fmt.Errorf("regaining capabilities: %w", err)
	}
	if err := unix.Setgroups(x.selfGroups); err != nil {
		return fmt.Errorf("setgroups: %w", err)
	}
	if err := setFsIDs(x.self.fsuid, x.self.fsgid); err != nil {
		return err
	}
	if err := w.setCaps(x.self.capEff); err != nil {
		return fmt.Errorf("restoring the effective capabilities: %w", err)
	}
	w.cur = x.self
	return nil
}

// errInlineUmask guards the one process-wide state enter would change.
var errInlineUmask = errors.New("an inline request asked for another umask")
