package emulate

import (
	"errors"
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// local runs requests on one dedicated OS thread of vigil itself, with the
// same handler as a worker process. It performs the calls that lend vigil's
// host privilege (a lent mknod), which must run in the initial user namespace
// with host ids, whatever the watchee's namespaces. Those are rare; ordinary
// calls go to workers, which are faster to reach (see executorFor).
//
// Credentials, and after unshare(CLONE_FS) the root, cwd and umask, are per
// thread; x/sys/unix issues setfsuid, setfsgid, setgroups and capset as raw
// per-thread syscalls (unlike the syscall package, whose Setgroups is
// process-wide). The goroutine stays locked to its thread for its whole life
// and exits locked, so Go destroys the thread rather than reusing it, and new
// runtime threads are cloned from Go's template thread, never from this one.
type local struct {
	reqs chan localReq
	stop chan struct{}
	done chan struct{}
}

type localReq struct {
	req *request
	in  fdSet
	res chan localRes
}

type localRes struct {
	resp response
	out  fdSet
}

func (e *Emulator) localExecutor() (*local, error) {
	e.localOnce.Do(func() {
		l := &local{reqs: make(chan localReq), stop: make(chan struct{}), done: make(chan struct{})}
		ready := make(chan error)
		// Not on the main thread: run chroots its thread per request.
		go offMainThread(func() { l.run(e.procfd, ready) })
		if err := <-ready; err != nil {
			e.localErr = err
			return
		}
		e.mu.Lock()
		closed := e.closed
		if !closed {
			e.local = l
		}
		e.mu.Unlock()
		if closed {
			l.close()
			e.localErr = ErrClosed
		}
	})
	if e.localErr != nil {
		return nil, e.localErr
	}
	return e.local, nil
}

func (l *local) run(procfd int, ready chan<- error) {
	runtime.LockOSThread()
	// Never unlocked: see the type's comment.
	defer close(l.done)
	w := &workerState{proc: procfd, link: make([]byte, unix.PathMax)}
	if err := w.setup(); err != nil {
		ready <- fmt.Errorf("preparing vigil's emulation thread: %w", err)
		return
	}
	ready <- nil
	for {
		select {
		case r := <-l.reqs:
			out := emptyFdSet()
			resp := w.handle(r.req, &r.in, &out)
			r.res <- localRes{resp: resp, out: out}
		case <-l.stop:
			return
		}
	}
}

func (l *local) close() {
	close(l.stop)
	<-l.done
}

func (l *local) call(req *request, in fdSet) (response, fdSet, error) {
	res := make(chan localRes, 1)
	select {
	case l.reqs <- localReq{req: req, in: in, res: res}:
	case <-l.done:
		return response{}, emptyFdSet(), errors.New("vigil's emulation thread is gone")
	}
	r := <-res
	return r.resp, r.out, nil
}

// identity maps: the local thread is in vigil's user namespace.
var identityMap = idMap{{Inner: 0, Outer: 0, Count: ^uint32(0)}}

func (l *local) maps() (idMap, idMap) { return identityMap, identityMap }

func (l *local) setsGroups() bool { return true }
