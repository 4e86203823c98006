package emulate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/reexec"
)

// Log fields of this package; the shared ones come from package audit.
const (
	fieldWorkerPid = "worker_pid"
	fieldJoined    = "joined_ns" // "u" user, "m" mount, "-" none
)

// workerRole is the worker's reexec role: argv[0] is reexec.Arg0(workerRole),
// which nsenter.c compares before Go starts. Keep in sync with
// VIGIL_WORKER_ARG0 there (TestNsenterAgreesWithGo).
const workerRole = "emulate"

// Descriptors a worker inherits (os/exec ExtraFiles start at 3). Keep in sync
// with nsenter.c (TestNsenterAgreesWithGo).
const (
	fdUserns = 3
	fdMntns  = 4
	fdCtl    = 5
	fdProc   = 6
)

// workerKey selects a worker: the namespaces it joined and the supplementary
// groups it was started with (fixed per worker, see nsenter.c).
type workerKey struct {
	user, mnt nsID
	groups    string
}

// executor runs requests with a watchee's credentials: a worker process in
// the watchee's namespaces, or vigil's own local thread (local.go) for
// watchees that share vigil's user and mount namespaces.
type executor interface {
	// call runs req with the descriptors of in, which stay the caller's,
	// and returns the response and the descriptors it carries, which
	// become the caller's. errNotSent means nothing happened.
	call(req *request, in fdSet) (response, fdSet, error)
	// maps translates host ids into the executor's user namespace.
	maps() (uid, gid idMap)
	// setsGroups reports whether supplementary groups travel with each
	// request (the local thread); a worker's are fixed when it starts.
	setsGroups() bool
}

// worker is the supervisor's handle on one worker process.
type worker struct {
	key    workerKey
	uidMap idMap
	gidMap idMap
	cmd    *exec.Cmd
	done   chan struct{} // closed once the process is reaped

	mu   sync.Mutex // one round trip at a time
	ctl  int
	dead bool
	// tid is the worker's serving thread and cpu the CPU it is kept on.
	tid     int
	cpu     int
	lastUse uint64
	send    []byte
	recv    []byte
	oob     []byte
}

func (w *worker) pid() int { return w.cmd.Process.Pid }

func (w *worker) maps() (idMap, idMap) { return w.uidMap, w.gidMap }

func (w *worker) setsGroups() bool { return false }

// executorFor returns what serves the watchee snapshot s describes: vigil's
// calling thread itself (inline.go)
// when the watchee shares vigil's namespaces, root and umask, otherwise the
// worker for its namespaces and groups, started if needed. The worker's key
// comes back either way, for requests the inline executor hands on.
//
// vigil's local thread serves neither: handing a request to a goroutine
// locked to another OS thread and back costs the Go scheduler about four
// futex wake-ups, measured at ~45µs per call on a 2-vCPU VM against ~12µs
// for a worker round trip and nothing for the calling thread.
func (e *Emulator) executorFor(c Caller, s *snapshot) (executor, workerKey, error) {
	key := workerKey{user: s.user, mnt: s.mnt, groups: groupsKey(s.cred.Groups)}
	if e.inline != nil && s.ridOK && e.inline.serves(s.rid, s.cred.Umask) {
		return e.inline, key, nil
	}
	w, err := e.workerFor(c, key)
	return w, key, err
}

// workerFor returns the worker for key, starting one if needed.
func (e *Emulator) workerFor(c Caller, key workerKey) (*worker, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, ErrClosed
	}
	e.clock++
	if w := e.workers[key]; w != nil && !w.isDead() {
		w.lastUse = e.clock
		e.mu.Unlock()
		if !w.unmapped() || !e.mapsWritten(c.Tid) {
			return w, nil
		}
		e.retire(w)
	} else {
		e.mu.Unlock()
	}

	// Start outside the lock: it takes a few milliseconds.
	w, err := e.startWorker(c, key)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		_ = w.stop()
		return nil, ErrClosed
	}
	if old := e.workers[key]; old != nil && !old.isDead() {
		// Another goroutine won the race.
		e.mu.Unlock()
		_ = w.stop()
		return old, nil
	}
	e.workers[key] = w
	w.lastUse = e.clock
	var evict []*worker
	for len(e.workers) > e.maxWorkers && e.maxWorkers > 0 {
		var lru workerKey
		min := ^uint64(0)
		for k, v := range e.workers {
			if v.lastUse < min {
				lru, min = k, v.lastUse
			}
		}
		evict = append(evict, e.workers[lru])
		delete(e.workers, lru)
	}
	e.mu.Unlock()
	for _, v := range evict {
		e.log.Debug().Int(fieldWorkerPid, v.pid()).Msg("stopping least recently used emulation worker")
		_ = v.stop()
	}
	return w, nil
}

// unmapped reports whether the worker started before its user namespace had
// both id maps. A namespace's maps are written once (user_namespaces(7)), so
// a worker with both is good for the namespace's life; one without them
// (unshare(1) makes emulated calls between unshare(2) and writing its maps)
// would translate nothing once the maps exist.
func (w *worker) unmapped() bool { return len(w.uidMap) == 0 || len(w.gidMap) == 0 }

// mapsWritten reports whether thread tid's user namespace now has both maps.
func (e *Emulator) mapsWritten(tid int) bool {
	bp := e.bufs.Get().(*[]byte)
	defer e.bufs.Put(bp)
	um, gm, err := e.readMaps(tid, *bp)
	return err == nil && len(um) > 0 && len(gm) > 0
}

// retire stops a worker whose maps are out of date; the next call starts
// another, which reads them afresh.
func (e *Emulator) retire(w *worker) {
	e.mu.Lock()
	if e.workers[w.key] == w {
		delete(e.workers, w.key)
	}
	e.mu.Unlock()
	e.log.Debug().Int(fieldWorkerPid, w.pid()).Msg("replacing an emulation worker started before its user namespace's id maps")
	_ = w.stop()
}

// forget drops a failed worker from the cache; the next call for its
// namespaces starts a new one.
func (e *Emulator) forget(x executor, cause error) {
	w, ok := x.(*worker)
	if !ok {
		return
	}
	e.log.Warn().Err(cause).Int(fieldWorkerPid, w.pid()).Msg("emulation worker failed; a new one will serve its namespaces")
	e.mu.Lock()
	if e.workers[w.key] == w {
		delete(e.workers, w.key)
	}
	e.mu.Unlock()
}

// startWorker re-executes vigil as a worker in the namespaces of c.Tid.
func (e *Emulator) startWorker(c Caller, key workerKey) (*worker, error) {
	ns, err := e.openWorkerNS(c.Tid, key)
	if err != nil {
		return nil, err
	}
	defer ns.close()
	join := e.joinFor(key)
	w, err := e.spawnWorker(key, ns, join)
	if err != nil {
		return nil, err
	}
	if err := w.awaitGreeting(e.timeout); err != nil {
		_ = w.stop()
		return nil, err
	}
	e.log.Debug().Int(fieldWorkerPid, w.pid()).Int(audit.FieldPid, c.Pid).Str(fieldJoined, join).
		Msg("emulation worker started")
	return w, nil
}

// workerNS is what a new worker needs of the watchee's namespaces: the
// namespaces to join and its user namespace's id maps.
type workerNS struct {
	user, mnt      *os.File
	uidMap, gidMap idMap
}

func (ns *workerNS) close() {
	ns.user.Close()
	ns.mnt.Close()
}

// openWorkerNS opens the namespaces of key through thread tid and reads the
// maps of its user namespace.
func (e *Emulator) openWorkerNS(tid int, key workerKey) (*workerNS, error) {
	userf, err := e.openNS(tid, "user", key.user)
	if err != nil {
		return nil, err
	}
	mntf, err := e.openNS(tid, "mnt", key.mnt)
	if err != nil {
		userf.Close()
		return nil, err
	}
	ns := &workerNS{user: userf, mnt: mntf}
	buf := make([]byte, 4096)
	if ns.uidMap, ns.gidMap, err = e.readMaps(tid, buf); err != nil {
		ns.close()
		return nil, err
	}
	// The maps must belong to the namespace we opened: the thread could
	// have exited and its id been reused in between.
	if now, err := statNS(e.procfd, tidPath(tid, "ns/user")); err != nil || now != key.user {
		ns.close()
		return nil, unix.ESRCH
	}
	return ns, nil
}

// joinFor says which namespaces of key a worker joins (see nsenter.c): only
// those vigil does not share, "-" for none.
func (e *Emulator) joinFor(key workerKey) string {
	join := ""
	if key.user != e.selfUser {
		join += "u"
	}
	if key.mnt != e.selfMnt {
		join += "m"
	}
	if join == "" {
		join = "-"
	}
	return join
}

// spawnWorker starts the worker process; it has not yet said whether it
// joined the namespaces.
func (e *Emulator) spawnWorker(key workerKey, ns *workerNS, join string) (*worker, error) {
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("creating worker socketpair: %w", err)
	}
	child := os.NewFile(uintptr(pair[1]), "vigil-emulate-ctl")
	defer child.Close()
	cmd := reexec.Command(e.exe, workerRole, join, key.groups)
	// vigil's environment stays out of the watchee's namespaces. The
	// worker serves one request at a time on one thread: one P is enough,
	// and an explicit GOMAXPROCS also stops the runtime from watching
	// cgroup CPU limits with descriptors of its own.
	cmd.Env = []string{"GOMAXPROCS=1"}
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = []*os.File{ns.user, ns.mnt, child, e.proc}
	// The worker must not outlive vigil. Its credential changes clear the
	// parent-death signal (commit_creds), so it also exits when the control
	// socket hangs up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := reexec.Start(cmd); err != nil {
		unix.Close(pair[0])
		return nil, fmt.Errorf("starting emulation worker: %w", err)
	}
	w := &worker{
		key: key, uidMap: ns.uidMap, gidMap: ns.gidMap, cmd: cmd, ctl: pair[0], cpu: -1,
		done: make(chan struct{}),
		send: make([]byte, 0, 4096), recv: make([]byte, maxMessage), oob: make([]byte, unix.CmsgSpace(4*maxFds)),
	}
	go func() {
		_ = cmd.Wait()
		close(w.done)
	}()
	return w, nil
}

// awaitGreeting waits for the worker's first message: 'R' and its serving
// thread from the worker's Go side, or 'E' and a reason from nsenter.c. The
// caller stops the worker on error.
func (w *worker) awaitGreeting(timeout time.Duration) error {
	tv := unix.Timeval{Sec: int64(timeout / time.Second), Usec: int64(timeout%time.Second) / 1000}
	if err := unix.SetsockoptTimeval(w.ctl, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("setting worker timeout: %w", err)
	}
	n, err := recvRetry(w.ctl, w.recv)
	switch {
	case err != nil:
		return fmt.Errorf("%w: waiting for worker to start: %v", ErrWorker, err)
	case n == 0:
		return fmt.Errorf("%w: worker exited during start", ErrWorker)
	case w.recv[0] == 'E':
		return fmt.Errorf("%w: worker could not start: %s", ErrWorker, w.recv[1:n])
	case w.recv[0] != 'R' || n != 5:
		return fmt.Errorf("%w: unexpected worker greeting %q", ErrWorker, w.recv[:n])
	}
	w.tid = int(binary.LittleEndian.Uint32(w.recv[1:5]))
	return nil
}

// openNS opens /proc/<tid>/ns/<typ> and checks it is the namespace the key
// was computed for.
func (e *Emulator) openNS(tid int, typ string, want nsID) (*os.File, error) {
	fd, err := unix.Openat(e.procfd, tidPath(tid, "ns/"+typ), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, unix.ESRCH
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || (nsID{st.Dev, st.Ino}) != want {
		unix.Close(fd)
		return nil, unix.ESRCH
	}
	return os.NewFile(uintptr(fd), "ns/"+typ), nil
}

func (e *Emulator) readMaps(tid int, buf []byte) (idMap, idMap, error) {
	b, err := readProcFile(e.procfd, tidPath(tid, "uid_map"), buf)
	if err != nil {
		return nil, nil, unix.ESRCH
	}
	um, err := parseIDMap(b)
	if err != nil {
		return nil, nil, err
	}
	b, err = readProcFile(e.procfd, tidPath(tid, "gid_map"), buf)
	if err != nil {
		return nil, nil, unix.ESRCH
	}
	gm, err := parseIDMap(b)
	if err != nil {
		return nil, nil, err
	}
	return um, gm, nil
}

func (w *worker) isDead() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.dead
}

// stop hangs up on the worker (it exits on EOF) and reaps it, killing it if
// it does not go within a second.
func (w *worker) stop() error {
	w.mu.Lock()
	if w.ctl >= 0 {
		unix.Close(w.ctl)
		w.ctl = -1
	}
	w.dead = true
	w.mu.Unlock()
	select {
	case <-w.done:
		return nil
	case <-time.After(time.Second):
	}
	_ = w.cmd.Process.Kill()
	<-w.done
	return nil
}

// call sends req with the descriptors of in over the control socket. A
// failure to send means nothing happened and is retried by the caller with a
// new worker (errNotSent); any later failure kills the worker and is
// ErrWorker.
func (w *worker) call(req *request, in fdSet) (response, fdSet, error) {
	fds, mask := in.list()
	req.FdMask = mask
	resp, rfds, err := w.roundTrip(req, fds)
	out := emptyFdSet()
	if err == nil {
		out.assign(resp.FdMask, rfds)
	}
	return resp, out, err
}

func (w *worker) roundTrip(req *request, fds []int) (response, []int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.dead {
		return response{}, nil, errNotSent
	}
	w.follow()
	w.send = req.encode(w.send)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	for {
		err := unix.Sendmsg(w.ctl, w.send, oob, nil, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			w.kill()
			return response{}, nil, fmt.Errorf("%w: %w: %v", errNotSent, ErrWorker, err)
		}
		break
	}
	var resp response
	for {
		n, oobn, flags, _, err := unix.Recvmsg(w.ctl, w.recv, w.oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			// SO_RCVTIMEO makes signals interrupt recvmsg despite SA_RESTART.
			continue
		}
		if err != nil {
			w.kill()
			if err == unix.EAGAIN {
				return response{}, nil, fmt.Errorf("%w: no answer within the timeout (worker killed)", ErrWorker)
			}
			return response{}, nil, fmt.Errorf("%w: receiving: %v", ErrWorker, err)
		}
		rfds, perr := parseRights(w.oob[:oobn])
		if n == 0 && oobn == 0 {
			w.kill()
			return response{}, nil, fmt.Errorf("%w: worker exited", ErrWorker)
		}
		if perr == nil && flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
			perr = errors.New("message truncated")
		}
		if perr == nil {
			perr = resp.decode(w.recv[:n])
		}
		if perr == nil && fdCount(resp.FdMask) != len(rfds) {
			perr = fmt.Errorf("response announces %d fds but carries %d", fdCount(resp.FdMask), len(rfds))
		}
		if perr != nil {
			closeAll(rfds)
			w.kill()
			return response{}, nil, fmt.Errorf("%w: %v", ErrWorker, perr)
		}
		return resp, rfds, nil
	}
}

// follow keeps the worker's serving thread on the caller's CPU. A round
// trip is synchronous — the caller only waits — so nothing runs in parallel
// that this could slow down, while waking a thread on another, idle CPU is the
// dominant cost: measured on a 2-vCPU VM, a socketpair round trip between two
// processes took ~50µs across CPUs and ~4.5µs on one. It is what
// SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP does for notifications. Called with
// w.mu held; a failure only costs speed.
func (w *worker) follow() {
	cpu := currentCPU()
	if cpu < 0 || cpu == w.cpu {
		return
	}
	var set unix.CPUSet
	set.Set(cpu)
	if unix.SchedSetaffinity(w.tid, &set) == nil {
		w.cpu = cpu
	}
}

// kill ends a worker whose protocol state is unknown. Called with w.mu held.
func (w *worker) kill() {
	w.dead = true
	if w.ctl >= 0 {
		unix.Close(w.ctl)
		w.ctl = -1
	}
	_ = w.cmd.Process.Kill()
}

// errNotSent marks a request that never reached the worker.
var errNotSent = errors.New("request not sent")

func recvRetry(fd int, buf []byte) (int, error) {
	for {
		n, _, _, _, err := unix.Recvmsg(fd, buf, nil, 0)
		if err == unix.EINTR {
			continue
		}
		return n, err
	}
}

// parseRights returns every descriptor in a control message buffer. On error
// the descriptors already found are closed.
func parseRights(oob []byte) ([]int, error) {
	if len(oob) == 0 {
		return nil, nil
	}
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("parsing control message: %w", err)
	}
	var fds []int
	for i := range msgs {
		if msgs[i].Header.Level != unix.SOL_SOCKET || msgs[i].Header.Type != unix.SCM_RIGHTS {
			continue
		}
		f, err := unix.ParseUnixRights(&msgs[i])
		if err != nil {
			closeAll(fds)
			return nil, fmt.Errorf("parsing SCM_RIGHTS: %w", err)
		}
		fds = append(fds, f...)
	}
	return fds, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// fdSet holds a message's descriptors by role.
type fdSet struct {
	root, base, obj, parent, obj2, parent2, open int
}

func emptyFdSet() fdSet { return fdSet{-1, -1, -1, -1, -1, -1, -1} }

func (s *fdSet) slots() []*int {
	return []*int{&s.root, &s.base, &s.obj, &s.parent, &s.obj2, &s.parent2, &s.open}
}

// list returns the present descriptors in role order and their mask.
func (s *fdSet) list() ([]int, uint32) {
	var fds []int
	var mask uint32
	for i, p := range s.slots() {
		if *p >= 0 {
			fds = append(fds, *p)
			mask |= 1 << i
		}
	}
	return fds, mask
}

// assign distributes received descriptors over the roles in mask.
func (s *fdSet) assign(mask uint32, fds []int) {
	j := 0
	for i, p := range s.slots() {
		if mask&(1<<i) != 0 && j < len(fds) {
			*p = fds[j]
			j++
		}
	}
}

func (s *fdSet) closeAll() {
	for _, p := range s.slots() {
		if *p >= 0 {
			unix.Close(*p)
			*p = -1
		}
	}
}
