package agent

import (
	"errors"
	"net"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/notify"
)

// handle takes one connection from accept to a supervised container (or a
// refusal), then drains the connection. Every fd received is either owned
// by a supervisor or closed before handle returns.
func (a *Agent) handle(c *net.UnixConn) {
	defer a.untrack(c)
	// The handoff is decided once the container is supervised or refused;
	// Shutdown waits for that, not for the drain after it.
	decided := sync.OnceFunc(a.pending.Done)
	defer decided()
	refused := true
	defer func() {
		if refused && a.cfg.Metrics != nil {
			a.cfg.Metrics.HandoffRefused()
		}
	}()
	log := a.log
	cred, err := peerCred(c)
	if err != nil {
		log.Error().Err(err).Msg("refusing handoff: cannot identify the peer")
		return
	}
	log = log.With().Int32(FieldRuntimePid, cred.Pid).Logger()
	if cred.Uid != 0 {
		// Only root may hand listeners over: a listener lets its holder
		// answer another process's syscalls, and the container id and
		// metadata it sends are trusted for policy selection and audit.
		log.Warn().Uint32(FieldRuntimeUID, cred.Uid).Msg("refusing handoff from a peer that is not root")
		return
	}
	deadline := time.Now().Add(a.cfg.HandoffTimeout)
	if err := c.SetReadDeadline(deadline); err != nil {
		log.Error().Err(err).Msg("refusing handoff: cannot set the read deadline")
		return
	}
	r, err := receive(c, a.cfg.MaxHandoff)
	if err != nil {
		log.Error().Err(err).Msg("refusing handoff")
		return
	}
	h, err := ParseHandoff(r.payload, len(r.fds))
	if err != nil {
		closeFds(r.fds)
		log.Error().Err(err).Int("fds_received", len(r.fds)).Msg("refusing handoff: its container's trapped syscalls will fail with ENOSYS")
		return
	}
	if r.trailing {
		log.Warn().Str(audit.FieldContainer, h.ID()).Msg("runtime sent more than one message; only the first is used")
	}
	lfd := r.fds[h.Seccomp]
	for i, fd := range r.fds {
		if i != h.Seccomp {
			// Named but unknown to vigil (a future runtime may send a
			// pidfd): not needed, so not kept.
			log.Debug().Str(audit.FieldContainer, h.ID()).Str("fd_name", h.FdNames[i]).Msg("closing a handed-over fd vigil does not use")
			unix.Close(fd)
		}
	}
	if err := isSeccompListener(lfd); err != nil {
		unix.Close(lfd)
		fieldsOf(log.Error(), h).Err(err).Msg("refusing container: its trapped syscalls will fail with ENOSYS")
		return
	}
	refused = !a.supervise(h, lfd, log)
	decided()
	a.drain(c, h, log)
}

// supervise starts the container's supervisor, or refuses the container by
// closing its listener: the kernel then fails its trapped syscalls with
// ENOSYS instead of leaving them waiting. It reports whether the container
// is supervised.
func (a *Agent) supervise(h *Handoff, lfd int, log zerolog.Logger) bool {
	pol, src, err := a.policies.Select(h.Metadata)
	if err != nil {
		unix.Close(lfd)
		fieldsOf(log.Error(), h).Str(FieldPolicy, src).Err(err).Msg("refusing container: no valid policy; its trapped syscalls will fail with ENOSYS")
		return false
	}
	clog := log.With().Str(audit.FieldContainer, h.ID()).Logger()
	cfg := a.cfg.Enforcer
	cfg.Policy = pol
	cfg.Container = h.ID()
	// The container has its own root and mount namespace: paths always
	// resolve through /proc/<tid>/root, i.e. in the container's view.
	cfg.OwnRoot = false
	// Path rules name objects as the container's view is at its handoff
	// (docs/reference-view.md): its root and mounts, captured now.
	cfg.ReferencePid = h.Pid
	cfg.Log = clog
	cfg.Audit = cfg.Audit.With().Str(FieldListenerMetadata, h.Metadata).Logger()
	var own *emulate.Emulator // this container's, closed with it
	if a.cfg.NewEmulator != nil {
		if own, err = a.cfg.NewEmulator(clog); err != nil {
			unix.Close(lfd)
			fieldsOf(log.Error(), h).Str(FieldPolicy, src).Err(err).Msg("refusing container: its trapped syscalls will fail with ENOSYS")
			return false
		}
		cfg.Emulator = own
	}
	sup, err := enforcer.New(cfg)
	if err == nil && cfg.Kernel != nil {
		// Only watched processes have their bindings checked in eBPF;
		// descendants join the watched set as they fork. None of the
		// container's calls has been granted yet (nobody served the
		// listener), but only runc also keeps the process from running
		// on: its init waits for its parent, which sends the handoff
		// first. crun's init goes on as soon as its helper has sent the
		// handoff, so a process it forks before this Watch stays outside
		// the watched set and its bound grants go unchecked ("unconfirmed"
		// records); closing that gap needs the engine to watch a
		// notifying thread group before it continues a bound grant.
		err = cfg.Kernel.Watch(h.Pid)
	}
	if err != nil {
		unix.Close(lfd)
		if own != nil {
			own.Close()
		}
		fieldsOf(log.Error(), h).Str(FieldPolicy, src).Err(err).Msg("refusing container: its trapped syscalls will fail with ENOSYS")
		return false
	}
	l := notify.NewListener(lfd)
	key := a.addContainer(Container{ID: h.ID(), Metadata: h.Metadata, Policy: src, Pid: h.Pid, Since: time.Now()})
	fieldsOf(log.Info(), h).Str(FieldPolicy, src).Strs("traps", pol.Syscalls()).Msg("supervising container")
	go func() {
		defer a.removeContainer(key)
		err := sup.Serve(l, nil)
		l.Close()
		if own != nil {
			// No process uses the filter any more: nothing will need
			// this container's workers again.
			own.Close()
		}
		st := sup.Stats()
		ev := clog.Info()
		if err != nil {
			ev = clog.Error().Err(err)
		}
		ev.Uint64("notifications", st.Notifications).Uint64("allowed", st.Allowed).
			Uint64("denied", st.Denied).Uint64("kernel_errors", st.KernelErrors).Uint64("killed", st.Killed).
			Msg("container released: no process uses its filter any more")
	}()
	return true
}

// drain reads what the runtime sends after its handoff until it closes or
// the handoff deadline passes: nothing is expected, and anything that comes
// (a second message, more fds) is logged once and its fds closed. runc 1.1
// keeps its end open until it exits, so the deadline, not EOF, usually ends
// this for long-running containers.
func (a *Agent) drain(c *net.UnixConn, h *Handoff, log zerolog.Logger) {
	rc, err := c.SyscallConn()
	if err != nil {
		return
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(maxFds*4))
	logged := false
	for {
		n, fds, _, err := recvOnce(rc, buf, oob)
		closeFds(fds)
		if (n > 0 || len(fds) > 0) && !logged {
			logged = true
			log.Warn().Str(audit.FieldContainer, h.ID()).Int("bytes", n).Int("fds", len(fds)).
				Msg("runtime sent a second message on the handoff connection; ignored")
		}
		if err != nil || n == 0 && len(fds) == 0 {
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, net.ErrClosed) {
				log.Debug().Err(err).Str(audit.FieldContainer, h.ID()).Msg("handoff connection ended")
			}
			return
		}
	}
}
