package launch

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/reexec"
)

// InitRole is the watchee's init step, for reexec.Run in main (and in
// TestMain of tests that launch watchees). It installs the filter, hands over
// the listener and execs the command; it returns only on failure.
func InitRole() reexec.Role { return reexec.Role{Name: initRole, Main: initMain} }

// initMain runs the init step with the arguments Start gives it: the filter
// mode, the inherited signal masks, the number of its first own descriptor,
// the command's path and its argv.
func initMain(args []string) int {
	if len(args) < 5 || args[0] != initKillable && args[0] != initInterruptible {
		fmt.Fprintf(os.Stderr, "vigil: init step started with arguments %q\n", args)
		return 127
	}
	inh, err := parseInherited(args[1])
	if err != nil {
		fmt.Fprintf(os.Stderr, "vigil: init step: %v\n", err)
		return 127
	}
	base, err := strconv.Atoi(args[2])
	if err != nil || base < 3 {
		fmt.Fprintf(os.Stderr, "vigil: init step: bad descriptor base %q\n", args[2])
		return 127
	}
	// The filter is per-thread (no TSYNC): install and exec from one thread.
	runtime.LockOSThread()
	// Exec'd through /proc/self/fd/N, the kernel named this process "N";
	// its audit records (the command's own execve) should say vigil.
	setComm("vigil")
	code, err := runInit(initFds{prog: base + progOff, ctl: base + ctlOff, exe: base + exeOff}, args[3], args[4:], args[0] == initInterruptible, inh)
	fmt.Fprintf(os.Stderr, "vigil: %v\n", err)
	return code
}

// initFds are the init step's own descriptors.
type initFds struct{ prog, ctl, exe int }

// inheritance is what the command inherits from vigil's parent: signals
// ignored and blocked (bit N-1 for signal N), standard descriptors closed
// (bit N for descriptor N).
type inheritance struct {
	ignored, blocked uint64
	closed           uint32
}

// runInit returns only on failure, with the exit code a shell would use.
func runInit(fds initFds, path string, argv []string, interruptible bool, inh inheritance) (int, error) {
	progFd, ctlFd, exeFd := fds.prog, fds.ctl, fds.exe
	ctl := os.NewFile(uintptr(ctlFd), "vigil-ctl")
	fail := func(err error) (int, error) {
		_, _ = ctl.Write(append([]byte{'E'}, err.Error()...))
		return 127, err
	}
	prog, err := io.ReadAll(io.NewSectionReader(os.NewFile(uintptr(progFd), "vigil-prog"), 0, 1<<20))
	if err != nil {
		return fail(fmt.Errorf("reading seccomp program: %w", err))
	}
	unix.Close(progFd)
	unix.Close(exeFd)
	if len(prog) == 0 {
		// Observe mode: only wait for the go-ahead.
		if _, err := unix.Write(ctlFd, []byte{'N'}); err != nil {
			return 127, fmt.Errorf("reporting to supervisor: %w", err)
		}
	} else {
		lfd, killable, err := installFilter(prog, interruptible)
		if err != nil {
			return fail(err)
		}
		report := []byte{'L'}
		if !killable {
			report[0] = 'I'
		}
		// Only the number travels: the supervisor takes the listener with
		// pidfd_getfd while this step waits for the go-ahead. Passing it
		// with SCM_RIGHTS would need sendmsg under the new filter, and a
		// policy may trap sendmsg (address rules govern every send).
		if _, err := unix.Write(ctlFd, append(report, strconv.Itoa(lfd)...)); err != nil {
			return 127, fmt.Errorf("handing listener to supervisor: %w", err)
		}
		defer unix.Close(lfd)
	}
	var b [1]byte
	if n, err := unix.Read(ctlFd, b[:]); n != 1 || b[0] != 'G' {
		// The supervisor went away: never run the command unsupervised.
		return 127, fmt.Errorf("supervisor gave no go-ahead (read %d bytes: %v)", n, err)
	}
	unix.Close(ctlFd)
	ignoreInherited(inh.ignored)
	for fd := 0; fd <= 2; fd++ {
		if inh.closed&(1<<fd) != 0 {
			unix.Close(fd)
		}
	}
	// The last thing before exec, on the thread that execs: execve keeps
	// its mask.
	set := unix.Sigset_t{}
	set.Val[0] = inh.blocked
	_ = unix.PthreadSigmask(unix.SIG_SETMASK, &set, nil)
	err = syscall.Exec(path, argv, os.Environ())
	if err == syscall.ENOEXEC {
		// A script without "#!": execvp(3), env, timeout and shells run it
		// with the shell, so a command that works alone works here.
		err = syscall.Exec("/bin/sh", append([]string{"/bin/sh", path}, argv[1:]...), os.Environ())
	}
	code := 127
	if err == syscall.EACCES || err == syscall.ENOEXEC {
		code = 126
	}
	return code, fmt.Errorf("exec %s: %w", path, err)
}

// parseInherited reads the init step's "IGNORED/BLOCKED/CLOSED" argument.
func parseInherited(arg string) (inheritance, error) {
	f := strings.Split(arg, "/")
	if len(f) != 3 {
		return inheritance{}, fmt.Errorf("no ignored/blocked/closed masks in %q", arg)
	}
	var inh inheritance
	var err error
	if inh.ignored, err = strconv.ParseUint(f[0], 16, 64); err != nil {
		return inheritance{}, fmt.Errorf("ignored signals %q: %w", f[0], err)
	}
	if inh.blocked, err = strconv.ParseUint(f[1], 16, 64); err != nil {
		return inheritance{}, fmt.Errorf("blocked signals %q: %w", f[1], err)
	}
	c, err := strconv.ParseUint(f[2], 16, 3)
	if err != nil {
		return inheritance{}, fmt.Errorf("closed descriptors %q: %w", f[2], err)
	}
	inh.closed = uint32(c)
	return inh, nil
}

// ignoreInherited sets SIG_IGN for every signal in the mask (bit N-1 for
// signal N), which execve keeps: the command starts with what vigil's parent
// left ignored, as it would have alone.
func ignoreInherited(mask uint64) {
	for sig := 1; sig <= 64; sig++ {
		if mask&(1<<(sig-1)) == 0 || sig == int(unix.SIGKILL) || sig == int(unix.SIGSTOP) {
			continue
		}
		signal.Ignore(syscall.Signal(sig))
	}
}
