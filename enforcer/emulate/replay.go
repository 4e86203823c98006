package emulate

import (
	"sync"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/notify"
)

// Replay detects repeated syscalls, so that an emulation whose answer never
// reached the watchee is not performed twice.
//
// vigil installs filters with SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (Linux
// 5.19): once vigil has received a notification, only a fatal signal ends the
// watchee's wait, and then the watchee is gone and nothing repeats. Without
// the flag (older kernels), a signal can interrupt the wait after vigil
// performed the call but before it answered; the kernel returns -ERESTARTSYS
// and, under SA_RESTART, the watchee makes the same call again, which a
// second emulation would turn into EEXIST (mkdir, mknod, link, symlink,
// O_CREAT|O_EXCL), ENOENT (unlink, rename) or a second file. Most other
// emulations are idempotent (chmod, chown, truncate, setxattr, an open
// without O_EXCL), and connect reports EALREADY or EISCONN as the kernel
// would for a restarted connect.
//
// The caller records a result with Withdrawn when answering failed with
// notify.ErrGone after the emulation took effect, and consults Take before
// emulating: a restarted call arrives from the same thread with the same
// syscall number, arguments and instruction pointer.
type Replay struct {
	mu  sync.Mutex
	m   map[int]replayEntry
	max int
}

type replayEntry struct {
	data notify.Data
	key  string
	res  Result
	tag  any
}

// NewReplay returns a Replay holding at most max unanswered results (one
// per thread); the oldest are dropped beyond it.
func NewReplay(max int) *Replay {
	if max <= 0 {
		max = 1024
	}
	return &Replay{m: make(map[int]replayEntry), max: max}
}

// Withdrawn records the result of tid's call d, whose answer was not
// delivered. key is the caller's copy of the call's pointer arguments (the
// paths it read): a restart must carry the same bytes, not only the same
// registers. tag is the caller's, returned by Take. The Replay owns res.Fd
// from now on.
func (r *Replay) Withdrawn(tid int, d *notify.Data, key string, res Result, tag any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.m[tid]; ok {
		closeResult(old.res)
	}
	if len(r.m) >= r.max {
		for k, v := range r.m {
			closeResult(v.res)
			delete(r.m, k)
			break
		}
	}
	r.m[tid] = replayEntry{data: *d, key: key, res: res, tag: tag}
}

// Has reports whether tid has a recorded result (cheap: check it before
// decoding what Take compares).
func (r *Replay) Has(tid int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.m[tid]
	return ok
}

// Take returns the recorded result and tag if tid's call d, with argument
// copy key, repeats the withdrawn one; the caller then owns its Fd. Any
// other call by tid drops the record: the watchee moved on.
func (r *Replay) Take(tid int, d *notify.Data, key string) (Result, any, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e, ok := r.m[tid]
	if !ok {
		return Result{}, nil, false
	}
	delete(r.m, tid)
	if e.data != *d || e.key != key {
		closeResult(e.res)
		return Result{}, nil, false
	}
	return e.res, e.tag, true
}

// Forget drops tid's record (the thread exited).
func (r *Replay) Forget(tid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.m[tid]; ok {
		closeResult(e.res)
		delete(r.m, tid)
	}
}

// Close drops every record.
func (r *Replay) Close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k, e := range r.m {
		closeResult(e.res)
		delete(r.m, k)
	}
}

func closeResult(res Result) {
	if res.Fd >= 0 {
		unix.Close(res.Fd)
	}
}
