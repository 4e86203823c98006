package doctor

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/notify"
)

// trappedNr is the syscall the probe filter sends to the listener. The Go
// runtime never calls getppid, so only the probe's own calls are trapped.
const trappedNr = unix.SYS_GETPPID

// plainAnswer is the value the first trapped call gets from the supervisor.
const plainAnswer = 4242

// listenerTimeout bounds the wait for one notification.
const listenerTimeout = 5 * time.Second

// probeFilter returns a cBPF program: native getppid goes to the listener,
// everything else is allowed.
func probeFilter() []unix.SockFilter {
	return []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 4}, // seccomp_data.arch
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 3, K: unix.AUDIT_ARCH_X86_64},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: 0}, // seccomp_data.nr
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: trappedNr},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_USER_NOTIF},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
}

// watcheeReport is what the filtered thread saw its three trapped calls
// return.
type watcheeReport struct {
	killable bool
	err      error
	plain    callResult
	cont     callResult
	addfd    callResult
}

type callResult struct {
	val   int64
	errno unix.Errno
}

// supervisorReport is what the answering side could do.
type supervisorReport struct {
	syncWake     result
	contErr      error
	addfdErr     error
	addfdSend    bool
	addfdSendErr error
	err          error
}

// probeListener installs a filter with NEW_LISTENER on one locked thread of
// this (throwaway) process, answers that thread's trapped calls from another
// thread, and records which flags and answers the kernel accepted:
// WAIT_KILLABLE_RECV at install, SYNC_WAKE_UP on the listener, a plain
// answer, CONTINUE, and ADDFD with and without SEND. The filtered thread is
// never unlocked, so it exits with its goroutine and takes the filter along.
func probeListener(out map[string]result) {
	ppid := unix.Getppid()
	lfdc := make(chan int, 1)
	watchee := make(chan watcheeReport, 1)
	go runWatchee(lfdc, watchee)
	var lfd int
	select {
	case lfd = <-lfdc:
	case w := <-watchee:
		out[SeccompUserNotif] = no("installing a filter with NEW_LISTENER: %s", errText(w.err))
		return
	}
	l := notify.NewListener(lfd)
	defer l.Close()
	sup := supervise(l)
	// Closing the listener fails any call still pending with ENOSYS, so
	// the filtered thread returns even when answering went wrong.
	l.Close()
	var w watcheeReport
	select {
	case w = <-watchee:
	case <-time.After(3 * listenerTimeout):
		out[SeccompUserNotif] = no("the filtered thread never returned from its trapped calls")
		return
	}
	if w.killable {
		out[SeccompWaitKillableRecv] = yes("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV accepted")
	} else {
		out[SeccompWaitKillableRecv] = no("SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: EINVAL (invalid argument)")
	}
	out[SeccompSyncWakeUp] = sup.syncWake
	if sup.err != nil {
		out[SeccompUserNotif] = no("answering notifications: %s", errText(sup.err))
		return
	}
	if w.plain.errno != 0 || w.plain.val != plainAnswer {
		out[SeccompUserNotif] = no("a trapped call returned %d (%v), want the supervisor's %d", w.plain.val, w.plain.errno, plainAnswer)
	}
	switch {
	case sup.contErr != nil:
		out[SeccompContinue] = no("SECCOMP_USER_NOTIF_FLAG_CONTINUE: %s", errText(sup.contErr))
	case w.cont.errno != 0 || w.cont.val != int64(ppid):
		out[SeccompContinue] = no("a continued getppid returned %d (%v), want %d", w.cont.val, w.cont.errno, ppid)
	default:
		out[SeccompContinue] = yes("a continued call ran in the kernel")
	}
	switch {
	case sup.addfdErr != nil:
		out[SeccompAddFD] = no("SECCOMP_IOCTL_NOTIF_ADDFD: %s", errText(sup.addfdErr))
		out[SeccompAddFDSend] = no("needs ADDFD")
	case w.addfd.errno != 0 || w.addfd.val < 0:
		out[SeccompAddFD] = no("the call answered with an added fd returned %d (%v)", w.addfd.val, w.addfd.errno)
		out[SeccompAddFDSend] = no("needs ADDFD")
	default:
		out[SeccompAddFD] = yes("installed /dev/null as fd %d in the filtered thread", w.addfd.val)
		if sup.addfdSend {
			out[SeccompAddFDSend] = yes("SECCOMP_ADDFD_FLAG_SEND answered the call with the new fd")
		} else {
			out[SeccompAddFDSend] = no("SECCOMP_ADDFD_FLAG_SEND: %s", errText(sup.addfdSendErr))
		}
	}
}

// runWatchee installs the probe filter on its own locked thread, hands the
// listener over and makes three trapped calls.
func runWatchee(lfdc chan<- int, report chan<- watcheeReport) {
	runtime.LockOSThread() // never unlocked: the thread carries the filter
	var w watcheeReport
	// no_new_privs is per thread and lets an unprivileged helper install
	// the filter too; this thread never execs.
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		w.err = fmt.Errorf("setting no_new_privs: %w", err)
		report <- w
		return
	}
	prog := probeFilter()
	w.killable = true
	lfd, err := installListener(prog, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER|unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV)
	if errors.Is(err, unix.EINVAL) {
		w.killable = false
		lfd, err = installListener(prog, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER)
	}
	if err != nil {
		w.err = err
		report <- w
		return
	}
	lfdc <- lfd
	w.plain = trappedCall()
	w.cont = trappedCall()
	w.addfd = trappedCall()
	if w.addfd.errno == 0 && w.addfd.val >= 0 {
		if !isDevNull(int(w.addfd.val)) {
			w.addfd = callResult{val: -1, errno: unix.EBADF}
		}
	}
	report <- w
}

func trappedCall() callResult {
	r, _, e := unix.Syscall(trappedNr, 0, 0, 0)
	return callResult{val: int64(r), errno: e}
}

func isDevNull(fd int) bool {
	defer unix.Close(fd)
	var got, want unix.Stat_t
	if unix.Fstat(fd, &got) != nil || unix.Stat("/dev/null", &want) != nil {
		return false
	}
	return got.Rdev == want.Rdev && got.Mode&unix.S_IFMT == unix.S_IFCHR
}

// supervise answers the three notifications: a plain value, CONTINUE, and
// an added fd (with SEND, else ADDFD then a plain answer with the fd).
func supervise(l *notify.Listener) supervisorReport {
	var s supervisorReport
	if ok, err := l.SetSyncWakeUp(); err != nil {
		s.syncWake = no("%v", err)
	} else if ok {
		s.syncWake = yes("SECCOMP_IOCTL_NOTIF_SET_FLAGS(SYNC_WAKE_UP) accepted")
	} else {
		s.syncWake = no("SECCOMP_IOCTL_NOTIF_SET_FLAGS(SYNC_WAKE_UP): EINVAL (invalid argument)")
	}
	answers := []func(n *notify.Notif) error{
		func(n *notify.Notif) error {
			return l.Send(&notify.Resp{ID: n.ID, Val: plainAnswer})
		},
		func(n *notify.Notif) error {
			err := l.Send(&notify.Resp{ID: n.ID, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE})
			if errors.Is(err, unix.EINVAL) {
				s.contErr = err
				return l.Send(&notify.Resp{ID: n.ID, Error: -int32(unix.ENOSYS)})
			}
			return err
		},
		func(n *notify.Notif) error { return s.answerAddFD(l, n) },
	}
	for _, answer := range answers {
		if err := answerOne(l, answer); err != nil {
			s.err = err
			return s
		}
	}
	return s
}

// answerOne receives one notification and answers it. A notification the
// kernel withdrew (a signal restarted the call) is skipped: the restarted
// call arrives as a new one.
func answerOne(l *notify.Listener, answer func(*notify.Notif) error) error {
	deadline := time.Now().Add(listenerTimeout)
	for time.Now().Before(deadline) {
		var n notify.Notif
		err := l.Recv(&n)
		if errors.Is(err, notify.ErrInterrupted) || errors.Is(err, notify.ErrGone) {
			continue
		}
		if err != nil {
			return err
		}
		err = answer(&n)
		if errors.Is(err, notify.ErrGone) {
			continue
		}
		return err
	}
	return errors.New("no notification arrived")
}

func (s *supervisorReport) answerAddFD(l *notify.Listener, n *notify.Notif) error {
	src, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening /dev/null: %w", err)
	}
	defer unix.Close(src)
	_, err = l.AddFD(&notify.AddFD{ID: n.ID, Flags: unix.SECCOMP_ADDFD_FLAG_SEND, Srcfd: uint32(src), NewfdFlags: unix.O_CLOEXEC})
	if err == nil {
		s.addfdSend = true
		return nil
	}
	if errors.Is(err, notify.ErrGone) {
		return err
	}
	s.addfdSendErr = err
	// Without SEND: add the fd, then answer with its number.
	fd, err := l.AddFD(&notify.AddFD{ID: n.ID, Srcfd: uint32(src), NewfdFlags: unix.O_CLOEXEC})
	if errors.Is(err, notify.ErrGone) {
		return err
	}
	if err != nil {
		s.addfdErr = err
		return l.Send(&notify.Resp{ID: n.ID, Error: -int32(unix.ENOSYS)})
	}
	return l.Send(&notify.Resp{ID: n.ID, Val: int64(fd)})
}
