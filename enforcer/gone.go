package enforcer

import (
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/notify"
)

// validPoll is how often a wait vigil performs for a watchee checks that the
// watchee still waits for it. Nothing announces a notification the watchee
// abandoned for a signal it handles; its death is announced (whileWaiting).
const validPoll = 50 * time.Millisecond

// validWatch calls gone once notification id no longer waits.
type validWatch struct {
	l    notify.Answerer
	id   uint64
	poll time.Duration
	gone func()

	mu      sync.Mutex
	stopped bool
	t       *time.Timer
}

// check calls gone if the notification no longer waits, else looks again
// after the poll interval.
func (w *validWatch) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	if w.l.Valid(w.id) != nil {
		w.stopped = true
		w.gone()
		return
	}
	w.t.Reset(w.poll)
}

// stop returns once gone neither runs nor will run.
func (w *validWatch) stop() {
	w.mu.Lock()
	w.stopped = true
	w.t.Stop()
	w.mu.Unlock()
}

// whileValid calls gone once the notification id no longer waits (the
// watchee gave up on the call), checking every validPoll on a timer rather
// than a goroutine: the wait it guards usually ends long before the first
// check. stop returns once gone neither runs nor will run, so what gone
// touches may be released after it.
func whileValid(l notify.Answerer, id uint64, gone func()) (stop func()) {
	return newValidWatch(l, id, validPoll, gone).stop
}

// newValidWatch starts a validWatch that first checks after poll.
func newValidWatch(l notify.Answerer, id uint64, poll time.Duration, gone func()) *validWatch {
	w := &validWatch{l: l, id: id, poll: poll, gone: gone}
	w.mu.Lock()
	w.t = time.AfterFunc(poll, w.check)
	w.mu.Unlock()
	return w
}

// whileWaiting is whileValid for waits that may last, performed off the
// notify loop for thread tid of process tgid: it also looks at once when
// that thread exits. A killed watchee is how such a wait usually ends
// (timeout(1), ^C), and what vigil still holds open then is seen by others
// until it lets go: a FIFO's writer a reader would pair with, a connection a
// server would accept. The thread's pidfd (PIDFD_THREAD, Linux 6.9; else the
// process's) waits in the runtime's poller, at the cost of a pidfd and a
// poller registration per wait. A pidfd that names another task (the thread
// was gone and its id reused before it was opened) only delays the answer
// to the next poll: gone runs only when the notification no longer waits.
func whileWaiting(l notify.Answerer, id uint64, tgid, tid int, gone func()) (stop func()) {
	return watchWait(l, id, tgid, tid, validPoll, gone)
}

// watchWait is whileWaiting polling every poll.
func watchWait(l notify.Answerer, id uint64, tgid, tid int, poll time.Duration, gone func()) (stop func()) {
	w := newValidWatch(l, id, poll, gone)
	exit := exitFile(tgid, tid)
	if exit == nil {
		return w.stop
	}
	conn, err := exit.SyscallConn()
	if err != nil {
		exit.Close()
		return w.stop
	}
	go func() {
		waited := false
		// Read waits for the pidfd to be readable (the task exited)
		// between two calls of the function; Close ends the wait.
		if conn.Read(func(uintptr) bool { done := waited; waited = true; return done }) == nil {
			w.check()
		}
	}()
	return func() {
		w.stop()
		// Not under w.mu: Close waits for the goroutine's Read, and
		// the goroutine may be waiting for w.mu.
		exit.Close()
	}
}

// exitFile opens a pidfd that becomes readable when thread tid exits (the
// process tgid, where threads have no pidfd of their own), non-blocking so
// that the runtime's poller waits on it; nil if neither can be opened.
func exitFile(tgid, tid int) *os.File {
	fd, err := unix.PidfdOpen(tid, pidfdThread|unix.PIDFD_NONBLOCK)
	if err == unix.EINVAL && tgid > 0 {
		fd, err = unix.PidfdOpen(tgid, unix.PIDFD_NONBLOCK)
	}
	if err != nil {
		return nil
	}
	return os.NewFile(uintptr(fd), "pidfd")
}

// pidfdThread is PIDFD_THREAD (include/uapi/linux/pidfd.h, Linux 6.9),
// which equals O_EXCL; older kernels refuse it with EINVAL.
const pidfdThread = unix.O_EXCL
