package doctor

import (
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// nobody is the uid and gid the unprivileged user-namespace probe drops to.
const nobody = 65534

// probeUserns creates a user namespace twice: as this process is, and from a
// thread that dropped to nobody (without capabilities). The answer depends
// on sysctls, LSMs (AppArmor's userns restriction) and the kernel config
// alike, so it is tried rather than read from any of them.
func probeUserns(out map[string]result) {
	if os.Geteuid() == 0 {
		out[UsernsPrivileged] = inThread(false)
		out[UsernsUnprivileged] = inThread(true)
		return
	}
	out[UsernsPrivileged] = no("needs root")
	out[UsernsUnprivileged] = inThread(false)
}

// inThread runs the probe on a fresh locked thread. A thread that dropped
// its credentials is never unlocked, so it exits with its goroutine.
func inThread(drop bool) result {
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if drop {
			if err := dropToNobody(); err != nil {
				ch <- no("dropping to uid %d: %s", nobody, errText(err))
				return
			}
		} else {
			defer runtime.UnlockOSThread()
		}
		ch <- cloneNewUser()
	}()
	return <-ch
}

// dropToNobody changes only the calling thread's credentials: the raw
// syscalls bypass the Go runtime's all-threads setuid.
func dropToNobody() error {
	if _, _, e := unix.RawSyscall(unix.SYS_SETGROUPS, 0, 0, 0); e != 0 {
		return e
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, nobody, nobody, nobody); e != 0 {
		return e
	}
	if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, nobody, nobody, nobody); e != 0 {
		return e
	}
	return nil
}

// cloneNewUser forks /bin/true into a new user namespace from the calling
// thread, whose credentials the child inherits.
func cloneNewUser() result {
	truePath, err := exec.LookPath("true")
	if err != nil {
		truePath = "/bin/true"
	}
	pid, err := syscall.ForkExec(truePath, []string{"true"}, &syscall.ProcAttr{
		Sys: &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER},
	})
	if err != nil {
		return no("clone(CLONE_NEWUSER): %s", errText(err))
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		return no("waiting for the child: %s", errText(err))
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return no("the child in the new user namespace failed (status %v)", ws)
	}
	return yes("created a user namespace")
}
