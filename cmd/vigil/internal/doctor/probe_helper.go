package doctor

import (
	"bytes"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// probeHelper starts a probe helper, merges what it found, and while the
// helper waits for its cue to exit, tries the cross-process calls vigil makes
// on a watchee against it: process_vm_readv of a buffer it named, pidfd_open
// and pidfd_getfd. Probing another process, not this one, is what makes the
// result include ptrace restrictions (Yama) that exempt a process's own
// threads.
func probeHelper(found map[string]result) {
	h, err := startHelper(modeProbe, nil)
	if err != nil {
		markHelperFailed(found, err)
		return
	}
	var out helperOutput
	if err := h.readJSON(&out); err != nil {
		markHelperFailed(found, err)
		_ = h.finish()
		return
	}
	for k, v := range out.Results {
		found[k] = v
	}
	pid := h.cmd.Process.Pid
	found[ProcessVMReadv] = readRemote(pid, out.Addr, out.Token)
	found[PidfdOpen], found[PidfdGetfd] = pidfds(pid)
	if err := h.finish(); err != nil {
		// The results are in; a helper that failed to exit cleanly only
		// adds to the detail of the seccomp entry.
		r := found[SeccompUserNotif]
		r.Detail += "; " + err.Error()
		found[SeccompUserNotif] = r
	}
}

// helperProbed lists what a probe helper reports, plus the cross-process
// probes made against it.
var helperProbed = []string{
	SeccompContinue, SeccompAddFD, SeccompAddFDSend, SeccompWaitKillableRecv,
	SeccompSyncWakeUp, UsernsPrivileged, UsernsUnprivileged, ProcessVMReadv,
	PidfdOpen, PidfdGetfd,
}

// markHelperFailed reports the helper's features unavailable and probes
// the cross-process calls against this process instead, which at least
// shows whether the kernel has them.
func markHelperFailed(found map[string]result, err error) {
	for _, name := range helperProbed {
		found[name] = no("probe helper failed: %v", err)
	}
	token := []byte("vigil-doctor-self")
	found[ProcessVMReadv] = readRemote(os.Getpid(), addrOf(token), string(token))
	found[PidfdOpen], found[PidfdGetfd] = pidfds(os.Getpid())
	runtime.KeepAlive(token)
}

func readRemote(pid int, addr uint64, token string) result {
	if addr == 0 || token == "" {
		return no("helper named no buffer to read")
	}
	buf := make([]byte, len(token))
	local := []unix.Iovec{{Base: &buf[0]}}
	local[0].SetLen(len(buf))
	remote := []unix.RemoteIovec{{Base: uintptr(addr), Len: len(buf)}}
	n, err := unix.ProcessVMReadv(pid, local, remote, 0)
	switch {
	case err != nil:
		return no("reading a child's memory: %s", errText(err))
	case n != len(buf) || !bytes.Equal(buf, []byte(token)):
		return no("reading a child's memory returned %d bytes %q, want %q", n, buf[:n], token)
	}
	return yes("read %d bytes of a child process", n)
}

func pidfds(pid int) (open, getfd result) {
	pfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		r := no("pidfd_open: %s", errText(err))
		return r, no("needs pidfd_open: %s", errText(err))
	}
	defer unix.Close(pfd)
	if err := unix.PidfdSendSignal(pfd, 0, nil, 0); err != nil {
		open = no("pidfd_send_signal(sig 0): %s", errText(err))
	} else {
		open = yes("pidfd_open and pidfd_send_signal on a child")
	}
	fd, err := unix.PidfdGetfd(pfd, 0, 0)
	if err != nil {
		return open, no("pidfd_getfd of a child's fd 0: %s", errText(err))
	}
	unix.Close(fd)
	return open, yes("took a child's fd 0")
}
