package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/filter"
	"github.com/vigilsec/vigil/loader"
)

// Helper-side environment.
const (
	envPath   = "VIGIL_AGENT_TEST_PATH"   // container: the file its 'o' command opens
	envSocket = "VIGIL_AGENT_TEST_SOCKET" // peer, agent: the agent socket
	envDir    = "VIGIL_AGENT_TEST_DIR"    // agent: policy directory
	envAudit  = "VIGIL_AGENT_TEST_AUDIT"  // agent: audit log file
)

// ctlFd is the fake container's end of its socketpair with the test.
const ctlFd = 3

func runHelper(role string) (int, error) {
	switch role {
	case "container":
		return fakeContainerMain()
	case "peer":
		return peerMain()
	case "agent":
		return agentMain()
	}
	return 2, fmt.Errorf("unknown role")
}

// fakeContainerMain is a process that puts itself under a seccomp filter
// sending openat to a listener, as runc init does, passes the listener to
// the test (the "runtime"), and then opens $VIGIL_AGENT_TEST_PATH on every
// 'o' it reads, answering "ok" or the errno name.
func fakeContainerMain() (int, error) {
	// The filter is per thread (no TSYNC): install it and make every
	// trapped call from this one thread.
	runtime.LockOSThread()
	prog, err := filter.Compile(filter.Spec{Notify: []int{unix.SYS_OPENAT}, NoHardening: true})
	if err != nil {
		return 3, err
	}
	lfd, err := installFilter(prog)
	if err != nil {
		return 3, err
	}
	if err := unix.Sendmsg(ctlFd, []byte{'L'}, unix.UnixRights(lfd), nil, 0); err != nil {
		return 3, fmt.Errorf("sending listener: %w", err)
	}
	unix.Close(lfd)
	path := os.Getenv(envPath)
	var b [1]byte
	for {
		n, err := unix.Read(ctlFd, b[:])
		if n != 1 || err != nil || b[0] == 'q' {
			return 0, nil
		}
		reply := "ok"
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			reply = unix.ErrnoName(err.(unix.Errno))
		} else {
			unix.Close(fd)
		}
		if _, err := unix.Write(ctlFd, []byte(reply)); err != nil {
			return 3, err
		}
	}
}

func installFilter(prog []byte) (int, error) {
	fprog := unix.SockFprog{Len: uint16(len(prog) / 8), Filter: (*unix.SockFilter)(unsafe.Pointer(&prog[0]))}
	for attempt := 0; attempt < 2; attempt++ {
		fd, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&fprog)))
		if e == 0 {
			return int(fd), nil
		}
		if e != unix.EACCES {
			return -1, fmt.Errorf("installing filter: %w", e)
		}
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return -1, err
		}
	}
	return -1, errors.New("installing filter: EACCES")
}

// peerMain connects to the agent (as whatever user the test started it as)
// and sends a well-formed handoff with /dev/null attached.
func peerMain() (int, error) {
	c, err := net.Dial("unix", os.Getenv(envSocket))
	if err != nil {
		return 3, err
	}
	defer c.Close()
	f, err := os.Open("/dev/null")
	if err != nil {
		return 3, err
	}
	// The agent may hang up before the message is out (EPIPE): it refuses
	// the peer on its credentials alone.
	c.(*net.UnixConn).WriteMsgUnix([]byte(stateJSON("peer", "", os.Getpid())), unix.UnixRights(int(f.Fd())), nil)
	var b [1]byte
	c.Read(b[:]) // until the agent hangs up
	return 0, nil
}

// agentMain is `vigil agent` in a process of its own, so a test can signal
// and kill it: Main with the flags in the environment, the wiring the CLI
// uses.
func agentMain() (int, error) {
	return Main(Options{
		Socket: os.Getenv(envSocket), PolicyDir: os.Getenv(envDir), LogFile: os.Getenv(envAudit),
		LogLevel: zerolog.DebugLevel, HandoffTimeout: DefaultHandoffTimeout, DetachIdle: loader.DefaultDetachIdle,
	})
}

// stateJSON is a runc-shaped handoff for container id with listenerMetadata
// meta and container process pid, naming one seccompFd. The agent watches
// pid in eBPF from the handoff on, so it must be the container's.
func stateJSON(id, meta string, pid int) string {
	b, _ := json.Marshal(map[string]any{
		"ociVersion": "1.0.2-dev", "fds": []string{"seccompFd"}, "pid": pid, "metadata": meta,
		"state": map[string]any{"ociVersion": "1.0.2-dev", "id": id, "status": "creating", "pid": pid, "bundle": "/nonexistent"},
	})
	return string(b)
}

// fakeContainer is the test's side of a fakeContainerMain process.
type fakeContainer struct {
	t        *testing.T
	cmd      *exec.Cmd
	ctl      *os.File
	Listener int // the listener, until sent and closed
}

func startFakeContainer(t *testing.T, path string) *fakeContainer {
	t.Helper()
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	child := os.NewFile(uintptr(pair[1]), "ctl-child")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), helperEnv+"=container", envPath+"="+path)
	cmd.ExtraFiles = []*os.File{child}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	child.Close()
	fc := &fakeContainer{t: t, cmd: cmd, Listener: -1}
	oob := make([]byte, unix.CmsgSpace(4))
	var b [1]byte
	_, oobn, _, _, err := unix.Recvmsg(pair[0], b[:], oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil || oobn == 0 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("fake container sent no listener: %v", err)
	}
	fds := parseRights(oob[:oobn])
	if len(fds) != 1 {
		t.Fatalf("fake container sent %d fds", len(fds))
	}
	fc.Listener = fds[0]
	if err := unix.SetNonblock(pair[0], true); err != nil {
		t.Fatal(err)
	}
	fc.ctl = os.NewFile(uintptr(pair[0]), "ctl")
	t.Cleanup(fc.Stop)
	return fc
}

// Pid is the fake container's process.
func (fc *fakeContainer) Pid() int { return fc.cmd.Process.Pid }

// DropListener closes the test's copy after it was handed to the agent:
// from then on only the agent holds it.
func (fc *fakeContainer) DropListener() {
	if fc.Listener >= 0 {
		unix.Close(fc.Listener)
		fc.Listener = -1
	}
}

// Open makes the container open its path and returns "ok" or the errno.
func (fc *fakeContainer) Open() string {
	fc.t.Helper()
	fc.ctl.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fc.ctl.Write([]byte{'o'}); err != nil {
		fc.t.Fatalf("asking the fake container to open: %v", err)
	}
	b := make([]byte, 64)
	n, err := fc.ctl.Read(b)
	if err != nil {
		fc.t.Fatalf("fake container's open got no answer (a trapped call waits for nobody?): %v", err)
	}
	return string(b[:n])
}

// Stop ends the container; its filter's last user exits with it.
func (fc *fakeContainer) Stop() {
	if fc.cmd == nil {
		return
	}
	fc.DropListener()
	fc.ctl.Write([]byte{'q'})
	done := make(chan struct{})
	go func() { fc.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		fc.cmd.Process.Kill()
		<-done
	}
	fc.ctl.Close()
	fc.cmd = nil
}

// logBuf collects JSON log lines, written to it or, with path set, read
// from a file another writer appends to.
type logBuf struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	path string
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuf) bytes() []byte {
	if l.path != "" {
		b, _ := os.ReadFile(l.path)
		return b
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]byte(nil), l.buf.Bytes()...)
}

func (l *logBuf) lines() []map[string]any {
	var out []map[string]any
	for _, line := range bytes.Split(l.bytes(), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func (l *logBuf) String() string { return string(l.bytes()) }

// waitLine waits for a line with every field in want (substring match for
// strings) and returns it.
func (l *logBuf) waitLine(t *testing.T, want map[string]string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, m := range l.lines() {
			if matches(m, want) {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %v in:\n%s", want, l)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (l *logBuf) count(want map[string]string) int {
	n := 0
	for _, m := range l.lines() {
		if matches(m, want) {
			n++
		}
	}
	return n
}

func matches(m map[string]any, want map[string]string) bool {
	for k, v := range want {
		got, ok := m[k]
		if !ok || !strings.Contains(fmt.Sprint(got), v) {
			return false
		}
	}
	return true
}

// records returns the audit records among l's whole lines (a writer may be
// mid-line), parsed strictly as audit.Record; vigil's own diagnostics are
// skipped.
func (l *logBuf) records(t *testing.T) []audit.Record {
	t.Helper()
	b := l.bytes()
	i := bytes.LastIndexByte(b, '\n')
	if i < 0 {
		return nil
	}
	recs, err := audit.ReadRecords(bytes.NewReader(b[:i+1]))
	if err != nil {
		t.Fatalf("audit log %s: %v", l.path, err)
	}
	return recs
}

// waitRecord waits for a record want matches and returns it.
func (l *logBuf) waitRecord(t *testing.T, want recordWant) audit.Record {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		for _, r := range l.records(t) {
			if want.matches(r) {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no audit record matching %+v in:\n%s", want, l)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// countRecords counts the records want matches.
func (l *logBuf) countRecords(t *testing.T, want recordWant) int {
	t.Helper()
	n := 0
	for _, r := range l.records(t) {
		if want.matches(r) {
			n++
		}
	}
	return n
}

// recordWant matches audit records: each field set must be a substring of
// the record's (Arg: of one of its arguments), and Emulated, when set, must
// hold.
type recordWant struct {
	Container, ListenerMetadata, Syscall, Rule, Action, Errno, Verified, Comm, Arg string
	Emulated                                                                       bool
}

func (w recordWant) matches(r audit.Record) bool {
	for _, f := range [...][2]string{{r.Container, w.Container}, {r.ListenerMetadata, w.ListenerMetadata},
		{r.Syscall, w.Syscall}, {r.Rule, w.Rule}, {r.Action, w.Action}, {r.Errno, w.Errno},
		{r.Verified, w.Verified}, {r.Comm, w.Comm}} {
		if f[1] != "" && !strings.Contains(f[0], f[1]) {
			return false
		}
	}
	if w.Emulated && !r.Emulated {
		return false
	}
	if w.Arg == "" {
		return true
	}
	a := r.Args
	for _, s := range [...]string{a.Path, a.Resolved, a.Path2, a.Resolved2, a.Target, a.Flags, a.CloneFlags,
		a.Resolve, a.Mode, a.Addr, a.Dev, a.Xattr, a.Error} {
		if strings.Contains(s, w.Arg) {
			return true
		}
	}
	return false
}

// testAgent is an in-process `vigil agent` with captured logs.
type testAgent struct {
	*Daemon
	Log   *logBuf // diagnostics
	Audit *logBuf // the --log file
	Dir   string  // policy directory
	sigs  chan os.Signal
	ran   chan error
}

// startAgent starts the agent as `vigil agent --log FILE` does (Start and
// Run: eBPF binding, emulator, audit log file), with a policy directory
// and socket of the test's own. Its cleanup stops it with SIGTERM's drain.
func startAgent(t *testing.T, timeout time.Duration) *testAgent {
	t.Helper()
	base := t.TempDir()
	dir := filepath.Join(base, "policies")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	auditPath := filepath.Join(base, "audit.log")
	ta := &testAgent{Log: &logBuf{}, Audit: &logBuf{path: auditPath}, Dir: dir, sigs: make(chan os.Signal, 1), ran: make(chan error, 1)}
	d, err := Start(Options{
		Socket: filepath.Join(base, "agent.sock"), PolicyDir: dir, LogFile: auditPath,
		LogLevel: zerolog.DebugLevel, HandoffTimeout: timeout, Stderr: ta.Log, DetachIdle: loader.DefaultDetachIdle,
	})
	if err != nil {
		t.Fatalf("starting the agent: %v", err)
	}
	ta.Daemon = d
	go func() { ta.ran <- d.Run(ta.sigs) }()
	t.Cleanup(func() {
		ta.sigs <- syscall.SIGTERM
		select {
		case err := <-ta.ran:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(3 * DefaultHandoffTimeout):
			t.Error("Run did not return after SIGTERM")
		}
		d.Close()
	})
	return ta
}

// dial connects to the agent like a runtime.
func dial(t *testing.T, sock string) *net.UnixConn {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// send writes one message with fds attached in one sendmsg, as runc does.
func send(t *testing.T, c *net.UnixConn, payload []byte, fds ...int) {
	t.Helper()
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	if _, _, err := c.WriteMsgUnix(payload, oob, nil); err != nil {
		t.Fatalf("sending handoff: %v", err)
	}
}

func devNull(t *testing.T) int {
	t.Helper()
	fd, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// countFds counts this process's open descriptors but its bpf links.
func countFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		// The syscall tracepoints' links come and go with use
		// (loader.Options.DetachIdle), not with handoffs.
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && target == "anon_inode:bpf_link" {
			continue
		}
		n++
	}
	return n - 1 // ReadDir's own
}

// settle retries f until it returns true or ten seconds pass: fds and
// goroutines are released asynchronously, after the log line that the tests
// wait for.
// stableFds counts the test process's descriptors once the count has held
// for longer than an idle extra receiver lives: under load a supervisor
// starts one (every receiver busy for 50 ms), and it leaves after a second
// without work, closing its resolver's descriptor. A base counted with one
// alive would read as a descriptor the agent lost later.
func stableFds(t *testing.T) int {
	t.Helper()
	n := countFds(t)
	for i := 0; i < 10; i++ {
		time.Sleep(1200 * time.Millisecond)
		m := countFds(t)
		if m == n {
			return n
		}
		n = m
	}
	return n
}

func settle(f func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !f() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// openConnections counts the handoff connections the agent still holds.
func (a *Agent) openConnections() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.conns)
}
