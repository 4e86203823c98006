package emulate_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/reexec"
)

// The watchee of these tests is this test binary re-executed with
// VIGIL_EMULATE_CHILD=1. It reads one command per line on stdin, performs it
// with raw syscalls and prints "ok [detail]" or "err ERRNO" — so the test can
// compare what the watchee gets by itself with what the emulator gets for it
// (differential tests). Between commands it is blocked in read(2), like a
// watchee waiting for vigil's answer.

// Host id range the user-namespace watchees are mapped to.
const (
	hostBase = 100000
	nsSize   = 65536
)

func runChild() int {
	in := bufio.NewScanner(os.Stdin)
	fds := map[int]bool{}
	for in.Scan() {
		f := strings.Fields(in.Text())
		if len(f) == 0 {
			continue
		}
		out := childCmd(f, fds)
		fmt.Println(out)
		if f[0] == "exit" {
			return 0
		}
	}
	return 0
}

func res(err error, detail string) string {
	if err != nil {
		if e, ok := err.(unix.Errno); ok {
			return "err " + unix.ErrnoName(e)
		}
		return "err " + err.Error()
	}
	if detail != "" {
		return "ok " + detail
	}
	return "ok"
}

func oct(s string) uint32 { v, _ := strconv.ParseUint(s, 8, 32); return uint32(v) }
func hex(s string) int    { v, _ := strconv.ParseUint(s, 0, 32); return int(v) }
func dec(s string) int    { v, _ := strconv.Atoi(s); return v }

func childCmd(f []string, fds map[int]bool) string {
	switch f[0] {
	case "exit":
		return "ok"
	case "umask":
		unix.Umask(int(oct(f[1])))
		return "ok"
	case "chdir":
		return res(unix.Chdir(f[1]), "")
	case "mkdir":
		return res(unix.Mkdir(f[1], oct(f[2])), "")
	case "mknod":
		return res(unix.Mknod(f[1], oct(f[2]), int(unix.Mkdev(uint32(dec(f[3])), uint32(dec(f[4]))))), "")
	case "open", "openkeep":
		fd, err := unix.Open(f[1], hex(f[2]), oct(f[3]))
		if err != nil {
			return res(err, "")
		}
		if f[0] == "open" {
			unix.Close(fd)
			return "ok"
		}
		fds[fd] = true
		return "ok " + strconv.Itoa(fd)
	case "openat2":
		how := unix.OpenHow{Flags: uint64(hex(f[2])), Mode: uint64(oct(f[3])), Resolve: uint64(hex(f[4]))}
		fd, err := unix.Openat2(unix.AT_FDCWD, f[1], &how)
		if err == nil {
			unix.Close(fd)
		}
		return res(err, "")
	case "close":
		delete(fds, dec(f[1]))
		return res(unix.Close(dec(f[1])), "")
	case "fill":
		// Open /dev/null until the descriptor table is full.
		n, first := 0, -1
		for {
			fd, err := unix.Open("/dev/null", unix.O_RDONLY, 0)
			if err == unix.EMFILE {
				return fmt.Sprintf("ok %d %d", n, first)
			}
			if err != nil {
				return res(err, "")
			}
			if first < 0 {
				first = fd
			}
			fds[fd] = true
			n++
		}
	case "setxattr":
		return res(unix.Setxattr(f[1], f[2], []byte(f[3]), 0), "")
	case "unlink":
		return res(unix.Unlink(f[1]), "")
	case "rmdir":
		return res(unix.Rmdir(f[1]), "")
	case "rename":
		return res(unix.Rename(f[1], f[2]), "")
	case "link":
		return res(unix.Link(f[1], f[2]), "")
	case "linkf":
		return res(unix.Linkat(unix.AT_FDCWD, f[1], unix.AT_FDCWD, f[2], unix.AT_SYMLINK_FOLLOW), "")
	case "lsetxattr":
		return res(unix.Lsetxattr(f[1], f[2], []byte(f[3]), 0), "")
	case "symlink":
		return res(unix.Symlink(f[1], f[2]), "")
	case "chmod":
		return res(unix.Chmod(f[1], oct(f[2])), "")
	case "chown":
		return res(unix.Chown(f[1], dec(f[2]), dec(f[3])), "")
	case "lchown":
		return res(unix.Lchown(f[1], dec(f[2]), dec(f[3])), "")
	case "rlimit":
		n := uint64(dec(f[1]))
		return res(unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: n, Max: n}), "")
	case "truncate":
		return res(unix.Truncate(f[1], int64(dec(f[2]))), "")
	case "mount-tmpfs":
		var flags uintptr
		if f[2] == "nodev" {
			flags = unix.MS_NODEV
		}
		return res(unix.Mount("tmpfs", f[1], "tmpfs", flags, ""), "")
	case "write":
		fd, err := unix.Open(f[1], unix.O_WRONLY, 0)
		if err != nil {
			return res(err, "")
		}
		defer unix.Close(fd)
		_, err = unix.Write(fd, []byte(f[2]+"\n"))
		return res(err, "")
	case "stat":
		var st unix.Stat_t
		if err := unix.Lstat(f[1], &st); err != nil {
			return res(err, "")
		}
		return fmt.Sprintf("ok %d %d %o", st.Uid, st.Gid, st.Mode)
	case "getfl":
		fl, err := unix.FcntlInt(uintptr(dec(f[1])), unix.F_GETFL, 0)
		if err != nil {
			return res(err, "")
		}
		fd, err := unix.FcntlInt(uintptr(dec(f[1])), unix.F_GETFD, 0)
		return res(err, fmt.Sprintf("%#x %d", fl, fd))
	case "socket":
		typ := unix.SOCK_STREAM
		if len(f) > 1 && f[1] == "nonblock" {
			typ |= unix.SOCK_NONBLOCK
		}
		fd, err := unix.Socket(unix.AF_INET, typ, 0)
		if err != nil {
			return res(err, "")
		}
		fds[fd] = true
		return "ok " + strconv.Itoa(fd)
	case "unixsocket":
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			return res(err, "")
		}
		return "ok " + strconv.Itoa(fd)
	case "bind":
		return res(unix.Bind(dec(f[1]), &unix.SockaddrUnix{Name: f[2]}), "")
	case "sockname":
		sa, err := unix.Getsockname(dec(f[1]))
		if err != nil {
			return res(err, "")
		}
		if un, ok := sa.(*unix.SockaddrUnix); ok {
			return "ok " + un.Name
		}
		return fmt.Sprintf("err not an AF_UNIX name: %T", sa)
	case "connect":
		port, _ := strconv.Atoi(f[2])
		return res(unix.Connect(dec(f[1]), &unix.SockaddrInet4{Port: port, Addr: [4]byte{127, 0, 0, 1}}), "")
	case "peer":
		sa, err := unix.Getpeername(dec(f[1]))
		if err != nil {
			return res(err, "")
		}
		return "ok " + strconv.Itoa(sa.(*unix.SockaddrInet4).Port)
	case "sockerr":
		v, err := unix.GetsockoptInt(dec(f[1]), unix.SOL_SOCKET, unix.SO_ERROR)
		return res(err, strconv.Itoa(v))
	}
	return "err usage"
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

// childBinary returns a copy of this test binary that a watchee mapped to an
// unprivileged host uid can execute: go test builds into a directory only
// root may enter.
func childBinary(t testing.TB) string {
	t.Helper()
	binOnce.Do(func() {
		self, err := os.Executable()
		if err != nil {
			binErr = err
			return
		}
		binDir, err = os.MkdirTemp("", "vigil-emulate-bin-")
		if err != nil {
			binErr = err
			return
		}
		if err := os.Chmod(binDir, 0o755); err != nil {
			binErr = err
			return
		}
		b, err := os.ReadFile(self)
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(binDir, "emulate.test")
		binErr = os.WriteFile(binPath, b, 0o755)
	})
	if binErr != nil {
		t.Fatalf("copying the test binary: %v", binErr)
	}
	return binPath
}

// watchee is a running child.
type watchee struct {
	t   testing.TB
	cmd *exec.Cmd
	in  io.WriteCloser
	out chan string
	pid int
}

type childOpts struct {
	// userns starts the child as root of a new user namespace mapped to
	// hostBase.., with its own mount namespace; otherwise it runs with cred.
	userns bool
	cred   *syscall.Credential
	dir    string
	// wrap runs the child through a command line that ends by executing
	// it (util-linux's unshare), for namespaces SysProcAttr cannot make.
	wrap []string
}

// userNSInOuterMounts wraps a child as `unshare -Ur` inside a container
// does: a new user namespace (root mapped to root) in a mount namespace
// that is not vigil's and belongs to vigil's user namespace, where root of
// the new one has no capability.
var userNSInOuterMounts = []string{"unshare", "--mount", "--propagation", "private", "--",
	"unshare", "--user", "--map-root-user", "--"}

func startWatchee(t testing.TB, o childOpts) *watchee {
	t.Helper()
	argv := append(append([]string(nil), o.wrap...), childBinary(t))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = []string{"VIGIL_EMULATE_CHILD=1"}
	cmd.Dir = o.dir
	cmd.Stderr = os.Stderr
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if o.userns {
		attr.Cloneflags = unix.CLONE_NEWUSER | unix.CLONE_NEWNS
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: hostBase, Size: nsSize}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: hostBase, Size: nsSize}}
		// Root of the namespace (host uid hostBase), so that execve keeps
		// its capabilities there; setgroups is denied in it.
		attr.Credential = &syscall.Credential{Uid: 0, Gid: 0, NoSetGroups: true}
	} else if o.cred != nil {
		attr.Credential = o.cred
	}
	cmd.SysProcAttr = attr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// From reexec's spawner thread, as vigil starts watchees: Pdeathsig
	// fires when the forking thread ends, and the emulator ends threads
	// of its own (offMainThread).
	if err := reexec.Start(cmd); err != nil {
		t.Fatalf("starting watchee: %v", err)
	}
	w := &watchee{t: t, cmd: cmd, in: in, out: make(chan string, 16), pid: cmd.Process.Pid}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			w.out <- sc.Text()
		}
		close(w.out)
	}()
	t.Cleanup(w.kill)
	return w
}

// do runs one command in the watchee and returns its result line.
func (w *watchee) do(format string, a ...any) string {
	w.t.Helper()
	line := fmt.Sprintf(format, a...)
	if _, err := io.WriteString(w.in, line+"\n"); err != nil {
		w.t.Fatalf("watchee %q: %v", line, err)
	}
	select {
	case s, ok := <-w.out:
		if !ok {
			w.t.Fatalf("watchee %q: exited", line)
		}
		return s
	case <-time.After(20 * time.Second):
		w.t.Fatalf("watchee %q: no answer", line)
	}
	return ""
}

func (w *watchee) must(format string, a ...any) string {
	w.t.Helper()
	s := w.do(format, a...)
	if !strings.HasPrefix(s, "ok") {
		w.t.Fatalf("watchee %q: %s", fmt.Sprintf(format, a...), s)
	}
	return strings.TrimSpace(strings.TrimPrefix(s, "ok"))
}

func (w *watchee) kill() {
	_ = w.cmd.Process.Kill()
	_ = w.cmd.Wait()
}
