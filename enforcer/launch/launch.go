// Package launch starts a watchee under a seccomp filter that vigil built but
// never loaded into itself.
//
// libseccomp's loader turns on TSYNC, and a Go process cannot fork and run
// code before exec, so vigil re-executes itself as a tiny init step (package
// reexec's role "init", served by InitRole): the init process installs the
// program on its locked OS thread with seccomp(2) and the flags vigil needs,
// reports the listener's fd number over a socketpair (the supervisor takes
// the listener with pidfd_getfd, so the init step needs no sendmsg under its
// new filter), waits for the go-ahead (the supervisor's notify loop must be
// running first, since the final execve may itself be trapped), and execs the
// command. Other Go runtime threads of the init process never carry the
// filter and vanish at execve.
package launch

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/enforcer/reexec"
)

// initRole is the init step's reexec role. Its arguments are the filter mode
// (initKillable or initInterruptible), the signals the command inherits
// ignored and blocked and the standard descriptors it inherits closed
// ("IGNORED/BLOCKED/CLOSED" in hexadecimal, bit N-1 for signal N, bit N for
// descriptor N), the number of its first own descriptor (those vigil's parent left
// open for the command come before), the command's path and its argv.
const initRole = "init"

// Filter modes of the init step.
const (
	// initKillable asks for SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV where
	// the kernel has it.
	initKillable = "killable"
	// initInterruptible installs the filter without it
	// (Config.Interruptible).
	initInterruptible = "interruptible"
)

// The init step's own descriptors follow the ones vigil's parent left open
// for the command (os/exec ExtraFiles start at 3): base is the seccomp
// program, base+1 the control socket, base+2 vigil's executable.
const (
	progOff = iota
	ctlOff
	exeOff
)

// inherited keeps an *os.File for every descriptor vigil's parent left open
// beyond stdin, stdout and stderr, by number: the os.File closes its
// descriptor when collected, and these must stay open for every command.
var inherited struct {
	sync.Mutex
	files map[int]*os.File
}

// inheritedFiles returns what vigil's parent left open for the command
// beyond stdin, stdout and stderr — a shell's `3>file`, make's jobserver
// pipe, systemd's LISTEN_FDS sockets — as ExtraFiles, indexed from fd 3
// (nil where none): every descriptor without close-on-exec, which vigil
// itself never opens. The command gets them under the same numbers, as it
// would alone.
func inheritedFiles() ([]*os.File, error) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, fmt.Errorf("listing vigil's descriptors: %w", err)
	}
	var fds []int
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < 3 {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			fds = append(fds, fd)
		}
	}
	if len(fds) == 0 {
		return nil, nil
	}
	inherited.Lock()
	defer inherited.Unlock()
	if inherited.files == nil {
		inherited.files = map[int]*os.File{}
	}
	files := make([]*os.File, slices.Max(fds)-2)
	for _, fd := range fds {
		f := inherited.files[fd]
		if f == nil {
			f = os.NewFile(uintptr(fd), "inherited-"+strconv.Itoa(fd))
			inherited.files[fd] = f
		}
		files[fd-3] = f
	}
	return files, nil
}

// Config describes the command to supervise.
type Config struct {
	// Path is the executable, already looked up; Args is argv (Args[0] is
	// the name the command sees).
	Path string
	Args []string
	Env  []string
	Dir  string
	// Program is the raw seccomp program from package filter. Observe mode
	// leaves it empty: the child is only gated, not filtered.
	Program []byte
	Stdin   *os.File
	Stdout  *os.File
	Stderr  *os.File
	// SysProcAttr adds attributes (e.g. namespaces); Pdeathsig is always set.
	SysProcAttr *syscall.SysProcAttr
	// Interruptible installs the filter without
	// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, as a container runtime that
	// does not pass the flag does: any signal then ends a watchee's wait,
	// also after vigil received its call. For tests of that case.
	Interruptible bool
}

// Watchee is a started, filtered process waiting for the go-ahead.
type Watchee struct {
	cmd      *exec.Cmd
	ctl      *os.File
	listener *notify.Listener
	// killable: the listener waits killably once a call is received
	// (SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, Linux 5.19).
	killable bool
}

// Killable reports whether the filter was installed with
// SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: once vigil received a call, only a
// fatal signal ends the watchee's wait.
func (w *Watchee) Killable() bool { return w.killable }

// Pid returns the watchee's process id.
func (w *Watchee) Pid() int { return w.cmd.Process.Pid }

// Listener returns the notification listener (nil when no program was
// installed); the caller owns it.
func (w *Watchee) Listener() *notify.Listener { return w.listener }

// Process returns the watchee's os.Process, for signalling.
func (w *Watchee) Process() *os.Process { return w.cmd.Process }

// Start forks the init step, waits until it has installed the filter and
// returns the listener. The watchee does not run the command until Proceed.
func Start(cfg Config) (*Watchee, error) {
	prog, err := programFile(cfg.Program)
	if err != nil {
		return nil, err
	}
	defer prog.Close()
	// The init step is exec'd through an fd, not by path: a watchee in a
	// user namespace runs as an unprivileged host id that may not traverse
	// the directories vigil's binary lives in (/root/..., a 0700 build dir).
	exe, err := os.Open(reexec.Self)
	if err != nil {
		return nil, fmt.Errorf("opening vigil's own executable: %w", err)
	}
	defer exe.Close()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("creating control socketpair: %w", err)
	}
	ctl := os.NewFile(uintptr(pair[0]), "vigil-ctl")
	child := os.NewFile(uintptr(pair[1]), "vigil-ctl-child")
	defer child.Close()

	attr := &syscall.SysProcAttr{}
	if cfg.SysProcAttr != nil {
		a := *cfg.SysProcAttr
		attr = &a
	}
	// The watchee dies with vigil: an unsupervised watchee would get ENOSYS
	// for every trapped call anyway, and must not outlive its supervisor.
	attr.Pdeathsig = unix.SIGKILL
	mode := initKillable
	if cfg.Interruptible {
		mode = initInterruptible
	}
	// What vigil's parent left ignored or blocked, the command inherits so,
	// as it would alone (the runtime's handlers are reset to the default at
	// exec, and it unblocks the signals vigil forwards).
	ignored, blocked := inheritedSignals()
	sigs := fmt.Sprintf("%x/%x/%x", ignored, blocked, closedStdio(cfg))
	extra, err := inheritedFiles()
	if err != nil {
		ctl.Close()
		return nil, err
	}
	base := 3 + len(extra)
	cmd := reexec.Command(fmt.Sprintf("/proc/self/fd/%d", base+exeOff), initRole,
		append([]string{mode, sigs, strconv.Itoa(base), cfg.Path}, cfg.Args...)...)
	cmd.Env, cmd.Dir = cfg.Env, cfg.Dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = cfg.Stdin, cfg.Stdout, cfg.Stderr
	cmd.ExtraFiles = append(extra, prog, child, exe)
	cmd.SysProcAttr = attr
	// From the spawner thread: PR_SET_PDEATHSIG fires when the forking
	// thread exits, and other threads of vigil's do (reexec.Start).
	if err := reexec.Start(cmd); err != nil {
		ctl.Close()
		return nil, fmt.Errorf("starting init step: %w", err)
	}
	child.Close()
	lfd, killable, err := recvListener(ctl, cmd.Process.Pid)
	if err != nil {
		ctl.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("receiving listener from init step: %w", err)
	}
	w := &Watchee{cmd: cmd, ctl: ctl, killable: killable}
	if lfd >= 0 {
		w.listener = notify.NewListener(lfd)
	}
	return w, nil
}

// closedStdio returns the standard descriptors (bit N for descriptor N) the
// command is to start without: those vigil's parent left closed, where cfg
// passes vigil's own on. The Go runtime opened /dev/null in their place,
// which the init step closes again before the exec.
func closedStdio(cfg Config) uint32 {
	closed := inheritedClosed()
	given, own := [3]*os.File{cfg.Stdin, cfg.Stdout, cfg.Stderr}, [3]*os.File{os.Stdin, os.Stdout, os.Stderr}
	for fd := range given {
		if given[fd] != own[fd] {
			closed &^= 1 << fd
		}
	}
	return closed
}

// Proceed lets the watchee exec its command. Call it once the notify loop
// runs.
func (w *Watchee) Proceed() error {
	defer w.ctl.Close()
	if _, err := w.ctl.Write([]byte{'G'}); err != nil {
		return fmt.Errorf("sending go-ahead to watchee: %w", err)
	}
	return nil
}

// Abort kills a watchee that never got the go-ahead.
func (w *Watchee) Abort() {
	w.ctl.Close()
	_ = w.cmd.Process.Kill()
	_, _ = w.cmd.Process.Wait()
}

// Wait waits for the watchee and returns its exit code the way a shell
// reports it: the status, or 128+signal when killed (Signal says which).
func (w *Watchee) Wait() (int, error) {
	err := w.cmd.Wait()
	st, ok := w.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok {
		return 1, fmt.Errorf("waiting for watchee: %w", err)
	}
	if st.Signaled() {
		return 128 + int(st.Signal()), nil
	}
	return st.ExitStatus(), nil
}

// Signal returns the signal that killed the watchee, or 0 when it exited
// (or Wait has not returned).
func (w *Watchee) Signal() syscall.Signal {
	if w.cmd.ProcessState == nil {
		return 0
	}
	if st, ok := w.cmd.ProcessState.Sys().(syscall.WaitStatus); ok && st.Signaled() {
		return st.Signal()
	}
	return 0
}

func programFile(prog []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate("vigil-prog", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("creating program memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "vigil-prog")
	if _, err := f.Write(prog); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing program memfd: %w", err)
	}
	return f, nil
}

// recvListener waits for the init step's report and takes its listener with
// pidfd_getfd. The init step is this process's unreaped child, so its pid
// cannot be recycled while the pidfd is opened; the watchee's own filter
// refuses pidfd_getfd (hardening), vigil's process is not filtered.
func recvListener(ctl *os.File, pid int) (fd int, killable bool, err error) {
	// One SEQPACKET message: an error's text whole (a shorter buffer
	// truncated the message that explains a refused filter).
	buf := make([]byte, 4096)
	n, err := unix.Read(int(ctl.Fd()), buf)
	if err != nil {
		return -1, false, err
	}
	if n == 0 {
		return -1, false, errors.New("init step exited before installing the filter")
	}
	switch buf[0] {
	case 'E':
		return -1, false, fmt.Errorf("init step: %s", buf[1:n])
	case 'N':
		// No program: the child is gated but unfiltered.
		return -1, false, nil
	case 'L':
		killable = true
	case 'I':
		// Installed without WAIT_KILLABLE_RECV.
	default:
		return -1, false, fmt.Errorf("unexpected report %q from init step", buf[:n])
	}
	cfd, err := strconv.Atoi(string(buf[1:n]))
	if err != nil || cfd < 0 {
		return -1, false, fmt.Errorf("init step reported listener fd %q", buf[1:n])
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1, false, fmt.Errorf("opening pidfd of init step: %w", err)
	}
	defer unix.Close(pidfd)
	lfd, err := unix.PidfdGetfd(pidfd, cfd, 0)
	if err != nil {
		return -1, false, fmt.Errorf("taking listener fd %d from init step: %w", cfd, err)
	}
	return lfd, killable, nil
}

// ErrCommandNotFound is returned when no command by that name exists; a
// shell exits 127 for it.
var ErrCommandNotFound = errors.New("command not found")

// LookPath finds the command name as a shell would, and when it cannot,
// returns the exit status a shell uses: 127 when nothing by that name exists,
// 126 when what the name leads to cannot be executed (a directory, a file
// without execute permission).
func LookPath(name string) (path string, code int, err error) {
	path, err = exec.LookPath(name)
	switch {
	case err == nil:
		return path, 0, nil
	case errors.Is(err, syscall.EISDIR):
		return "", 126, fmt.Errorf("%s: %w", name, syscall.EISDIR)
	case errors.Is(err, fs.ErrPermission):
		return "", 126, fmt.Errorf("%s: %w", name, fs.ErrPermission)
	}
	return "", 127, fmt.Errorf("%s: %w", name, ErrCommandNotFound)
}
