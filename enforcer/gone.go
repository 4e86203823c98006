package enforcer

import (
	"bytes"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/emulate"
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

	// signals, when set, is the watchee thread's /proc status, read at
	// every check; interrupted runs when it shows a signal that would
	// have ended the wait alone (signalInterrupts).
	signals     *threadSignals
	interrupted func()

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
	if w.signals != nil && w.signals.interrupt() {
		w.stopped = true
		w.interrupted()
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
	return newValidWatch(l, id, validPoll, gone, nil, nil).stop
}

// newValidWatch starts a validWatch that first checks after poll.
func newValidWatch(l notify.Answerer, id uint64, poll time.Duration, gone func(), sig *threadSignals, interrupted func()) *validWatch {
	w := &validWatch{l: l, id: id, poll: poll, gone: gone, signals: sig, interrupted: interrupted}
	w.mu.Lock()
	w.t = time.AfterFunc(poll, w.check)
	w.mu.Unlock()
	return w
}

// whileWaiting is whileValid for waits that may last, performed off the
// notify loop for thread tid of process tgid. It also looks at once when
// that thread exits: a killed watchee is how such a wait usually ends
// (timeout(1), ^C), and what vigil still holds open then is seen by others
// until it lets go — a FIFO's end a reader would pair with, a connection a
// server would accept. The thread's pidfd (PIDFD_THREAD, Linux 6.9; else the
// process's) waits in the runtime's poller, at the cost of a pidfd and a
// poller registration per wait. A pidfd that names another task (the thread
// was gone and its id reused before it was opened) only delays the answer
// to the next poll: gone runs only when the notification no longer waits,
// and says whether the thread exited (or whether that is unknown) or is
// alive (the kernel withdrew the call for a signal: a listener without
// WAIT_KILLABLE_RECV).
//
// With interrupted set, it also checks every signalPoll whether the thread
// has a signal that would have ended its wait alone (signalInterrupts), and
// then runs interrupted instead of gone. Under WAIT_KILLABLE_RECV the
// kernel no longer wakes the watchee for one once vigil received the call
// (docs/design.md §2 rule 8): vigil answers ERESTARTSYS for it, and the
// signal's delivery on the way out restarts the call or fails it with EINTR
// as the kernel's own interrupted wait would.
func whileWaiting(l notify.Answerer, id uint64, tgid, tid int, gone func(exited bool), interrupted func()) (stop func()) {
	poll := validPoll
	if interrupted != nil {
		poll = signalPoll
	}
	return watchWait(l, id, tgid, tid, poll, gone, interrupted)
}

// errRestartSys is ERESTARTSYS (include/linux/errno.h), what the kernel's
// own wait answers when a signal interrupts it. The signal's delivery on the
// way back to user space turns it into a restart of the call (SA_RESTART, or
// no handler: a stop) or EINTR; it is only answered for a thread that has a
// signal to handle (signalInterrupts).
const errRestartSys = unix.Errno(512)

// signalPoll is how often a wait that answers signals looks for one: what
// a handled signal waits for beyond the kernel's own delivery.
const signalPoll = 10 * time.Millisecond

// watchWait is whileWaiting polling every poll.
func watchWait(l notify.Answerer, id uint64, tgid, tid int, poll time.Duration, gone func(exited bool), interrupted func()) (stop func()) {
	var sig *threadSignals
	if interrupted != nil {
		sig = openThreadSignals(tgid, tid)
	}
	exit, exitFd := exitFile(tgid, tid)
	w := newValidWatch(l, id, poll, func() { gone(exitFd < 0 || exited(exitFd)) }, sig, interrupted)
	release := func() {
		w.stop()
		if sig != nil {
			sig.close()
		}
	}
	if exit == nil {
		return release
	}
	conn, err := exit.SyscallConn()
	if err != nil {
		exit.Close()
		return release
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
		release()
		// Not under w.mu: Close waits for the goroutine's Read, and
		// the goroutine may be waiting for w.mu.
		exit.Close()
	}
}

// threadSignals reads a watchee thread's signal masks from its /proc status.
type threadSignals struct {
	fd     int
	leader bool
	buf    [4096]byte
}

// openThreadSignals opens thread tid's status; nil if it cannot.
func openThreadSignals(tgid, tid int) *threadSignals {
	fd, err := unix.Open("/proc/"+strconv.Itoa(tid)+"/status", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil
	}
	return &threadSignals{fd: fd, leader: tid == tgid}
}

// interrupt reports whether the thread has a signal that would have ended
// its wait alone; a status that cannot be read reports none.
func (t *threadSignals) interrupt() bool {
	n, err := unix.Pread(t.fd, t.buf[:], 0)
	if err != nil || n <= 0 {
		return false
	}
	return signalInterrupts(t.buf[:n], t.leader)
}

func (t *threadSignals) close() { unix.Close(t.fd) }

// signalInterrupts reports, from a thread's /proc status, whether a signal
// is pending that the kernel has made the thread's own to handle: one sent
// to the thread (SigPnd), or, for the thread group's leader, one sent to the
// process (ShdPnd) — the kernel hands a process's signal to its leader first
// when it takes it (complete_signal), and a leader that does not take it
// already has one pending. A process's signal pending in another thread's
// view is left alone: another thread may take it, and the ERESTARTSYS of a
// thread that has no signal to handle would reach the program as errno 512.
// Blocked and ignored signals interrupt nothing.
func signalInterrupts(status []byte, leader bool) bool {
	var pnd, shd, blk, ign uint64
	for len(status) > 0 {
		line := status
		if i := bytes.IndexByte(status, '\n'); i >= 0 {
			line, status = status[:i], status[i+1:]
		} else {
			status = nil
		}
		name, val, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		var dst *uint64
		switch string(name) {
		case "SigPnd":
			dst = &pnd
		case "ShdPnd":
			dst = &shd
		case "SigBlk":
			dst = &blk
		case "SigIgn":
			dst = &ign
		default:
			continue
		}
		v, err := strconv.ParseUint(string(bytes.TrimSpace(val)), 16, 64)
		if err != nil {
			return false
		}
		*dst = v
	}
	if leader {
		pnd |= shd
	}
	return pnd&^blk&^ign != 0
}

// exitFile opens a pidfd that becomes readable when thread tid exits (the
// process tgid, where threads have no pidfd of their own), non-blocking so
// that the runtime's poller waits on it, and returns it with its descriptor
// (valid until the file is closed); nil and -1 if neither can be opened.
func exitFile(tgid, tid int) (*os.File, int) {
	fd, _, err := emulate.OpenPidfd(tgid, tid, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, -1
	}
	return os.NewFile(uintptr(fd), "pidfd"), fd
}

// exited reports whether the task of pidfd fd has exited (the pidfd is
// readable), without waiting.
func exited(fd int) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 0)
	return err == nil && n > 0 && fds[0].Revents&(unix.POLLIN|unix.POLLHUP) != 0
}

// threadExited reports whether thread tid of process tgid has exited (or
// is a zombie), from /proc: where no pidfd was opened for the wait, it tells
// the watchee's death from a call the kernel withdrew for a signal.
func threadExited(tgid, tid int) bool {
	var buf [512]byte
	fd, err := unix.Open("/proc/"+strconv.Itoa(tgid)+"/task/"+strconv.Itoa(tid)+"/stat", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return true
	}
	defer unix.Close(fd)
	n, err := unix.Read(fd, buf[:])
	if err != nil || n <= 0 {
		return true
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	i := bytes.LastIndexByte(buf[:n], ')')
	if i < 0 || i+2 >= n {
		return true
	}
	return buf[i+2] == 'Z' || buf[i+2] == 'X'
}
