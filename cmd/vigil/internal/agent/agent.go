package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/emulate"
)

// DefaultHandoffTimeout bounds how long a connected runtime may take to
// deliver its handoff. runc sends it in one sendmsg right after connecting;
// the container waits meanwhile, so a peer that stalls only holds its own
// connection, never the other containers.
const DefaultHandoffTimeout = 5 * time.Second

// Config configures an Agent.
type Config struct {
	// Socket is the unix socket path that config.json's listenerPath
	// names. It is created with mode 0600.
	Socket string
	// PolicyDir holds the policies listenerMetadata can select; "" allows
	// only the embedded default.
	PolicyDir string
	// Enforcer is the template of every container's supervisor: Log (also
	// the agent's own diagnostics), Audit, and Kernel or Unverified (one
	// eBPF binding serves every container; each container process is
	// watched from its handoff on). Policy, Container and OwnRoot are set
	// per container.
	Enforcer enforcer.Config
	// NewEmulator, when set, starts each container's emulation engine,
	// closed when the container is released: the workers it starts join
	// the container's namespaces and pin them, so they must end with the
	// container rather than linger until evicted (64 of them, each holding
	// a dead container's mounts). Without it Enforcer.Emulator, if any,
	// serves every container.
	NewEmulator func(log zerolog.Logger) (*emulate.Emulator, error)
	// HandoffTimeout defaults to DefaultHandoffTimeout; MaxHandoff to
	// MaxHandoff.
	HandoffTimeout time.Duration
	MaxHandoff     int
	// Metrics, when set, counts supervised containers and refused
	// handoffs (Enforcer.Metrics counts the decisions).
	Metrics Metrics
}

// Metrics counts what the agent does with handoffs; calls come from the
// connection goroutines concurrently.
type Metrics interface {
	// ContainerSupervised counts a container whose supervisor started.
	ContainerSupervised()
	// HandoffRefused counts a connection that did not end in a supervised
	// container.
	HandoffRefused()
}

// Agent accepts listener handoffs from OCI runtimes and supervises each
// container until its listener hangs up.
type Agent struct {
	cfg      Config
	log      zerolog.Logger
	ln       *net.UnixListener
	sockID   fileID   // the socket file this agent bound
	lock     *os.File // held for the agent's lifetime; see lockSocket
	policies Policies

	mu         sync.Mutex
	state      state
	conns      map[*net.UnixConn]struct{} // connections not yet done
	containers map[uint64]Container
	next       uint64

	serving sync.WaitGroup // Serve calls
	// handoffs counts connection goroutines, pending counts those whose
	// handoff is not decided yet (not yet supervised or refused); Add
	// only before Close.
	handoffs, pending sync.WaitGroup
	// running counts supervisor goroutines; idle is signalled when it
	// drops to zero. (A WaitGroup would forbid a handoff that completes
	// while someone Waits.)
	running int
	idle    *sync.Cond
}

// state is where an Agent is in its life.
type state int

const (
	open     state = iota
	draining       // Shutdown: no new connections, handoffs in progress finish
	closed
)

// fileID identifies a file across renames and replacements.
type fileID struct{ dev, ino uint64 }

// Container describes a supervised container.
type Container struct {
	// ID is the container id from the runtime's state.
	ID string
	// Metadata is the profile's listenerMetadata.
	Metadata string
	// Policy is the policy file (or EmbeddedDefault) in force.
	Policy string
	// Pid is the container process as the runtime reported it.
	Pid int
	// Since is when the agent took the listener over.
	Since time.Time
}

// Listen creates the socket and returns an Agent ready to Serve. The
// socket's directory must exist: a mistyped --socket is an error, not a new
// directory tree. A stale socket left by a dead agent is replaced; a live
// agent's, or any other file at the path, is an error.
func Listen(cfg Config) (*Agent, error) {
	if cfg.Socket == "" {
		return nil, errors.New("starting agent: no socket path")
	}
	if cfg.HandoffTimeout <= 0 {
		cfg.HandoffTimeout = DefaultHandoffTimeout
	}
	if cfg.MaxHandoff <= 0 {
		cfg.MaxHandoff = MaxHandoff
	}
	if cfg.PolicyDir != "" {
		st, err := os.Stat(cfg.PolicyDir)
		if err != nil {
			return nil, fmt.Errorf("checking policy directory: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("policy directory %s is not a directory", cfg.PolicyDir)
		}
	}
	dir := filepath.Dir(cfg.Socket)
	if st, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("the socket's directory %s does not exist: create it root-only (install -d -m 0700 %s; the systemd unit's RuntimeDirectory does this for /run/vigil)", dir, dir)
	} else if err != nil {
		return nil, fmt.Errorf("checking the socket's directory: %w", err)
	} else if !st.IsDir() {
		return nil, fmt.Errorf("the socket's directory %s is not a directory", dir)
	}
	lock, err := lockSocket(cfg.Socket)
	if err != nil {
		return nil, err
	}
	ln, id, err := listen(cfg.Socket)
	if err != nil {
		lock.Close()
		return nil, err
	}
	a := &Agent{
		cfg: cfg, log: cfg.Enforcer.Log, ln: ln, sockID: id, lock: lock, policies: Policies{Dir: cfg.PolicyDir},
		conns: map[*net.UnixConn]struct{}{}, containers: map[uint64]Container{},
	}
	a.idle = sync.NewCond(&a.mu)
	a.checkPolicies()
	return a, nil
}

// lockSocket takes an exclusive lock on PATH.lock for the agent's lifetime.
// Two agents starting on one path would otherwise both find the socket
// stale, and the second would unlink the first one's fresh socket, leaving
// it listening on a name nobody can reach. The kernel drops the lock when
// its holder dies, however it dies, so a held lock means a live agent. The
// lock file is never removed: removing it would reopen that race.
func lockSocket(path string) (*os.File, error) {
	name := path + ".lock"
	fd, err := unix.Open(name, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening the agent's lock file %s: %w", name, err)
	}
	f := os.NewFile(uintptr(fd), name)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		f.Close()
		return nil, fmt.Errorf("the agent's lock file %s is not a regular file", name)
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another agent is running on %s (it holds %s)", path, name)
		}
		return nil, fmt.Errorf("locking %s: %w", name, err)
	}
	return f, nil
}

// listen replaces a stale socket at path, binds a new one restricted to
// root and returns it with its identity.
func listen(path string) (*net.UnixListener, fileID, error) {
	if err := removeStale(path); err != nil {
		return nil, fileID{}, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fileID{}, fmt.Errorf("listening on %s: %w", path, err)
	}
	// The agent unlinks the path itself, and only while it still names
	// this socket (see unlinkSocket).
	ln.SetUnlinkOnClose(false)
	// Between bind and chmod the umask's mode applies; peers are checked by
	// SO_PEERCRED anyway, the mode keeps others from even connecting.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		os.Remove(path)
		return nil, fileID{}, fmt.Errorf("restricting %s to root: %w", path, err)
	}
	id, err := statID(path)
	if err != nil {
		ln.Close()
		os.Remove(path)
		return nil, fileID{}, err
	}
	return ln, id, nil
}

func statID(path string) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fileID{}, fmt.Errorf("checking %s: %w", path, err)
	}
	return fileID{dev: st.Dev, ino: st.Ino}, nil
}

// removeStale removes a socket nobody listens on. The caller holds the
// socket's lock, so no other vigil agent owns it; a program that listens
// there anyway (an agent of a version without the lock, or something else)
// keeps it. A file that is not a socket is never removed: the path may be a
// typo for something precious.
func removeStale(path string) error {
	st, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("checking %s: %w", path, err)
	}
	if st.Mode()&fs.ModeSocket == 0 {
		return fmt.Errorf("%s exists and is not a socket; refusing to replace it", path)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s: another agent (or another program) is listening there", path)
	}
	if !errors.Is(err, unix.ECONNREFUSED) {
		// EAGAIN (a full backlog), a timeout or EACCES say nothing about
		// whether anyone listens: keep the socket.
		return fmt.Errorf("%s: cannot tell whether it is in use, refusing to replace it: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("removing stale socket %s: %w", path, err)
	}
	return nil
}

// unlinkSocket removes the socket's name if it still names this agent's
// socket: an operator may have started another agent on the path meanwhile.
func (a *Agent) unlinkSocket() {
	if id, err := statID(a.cfg.Socket); err == nil && id == a.sockID {
		os.Remove(a.cfg.Socket)
	}
}

// checkPolicies reports invalid files in the policy directory, at startup
// and on Reload, so a broken policy shows up before the first container
// that needs it. It returns how many policies are valid and invalid.
func (a *Agent) checkPolicies() (valid, invalid int) {
	if a.cfg.PolicyDir == "" {
		return 0, 0
	}
	if st, err := os.Stat(a.cfg.PolicyDir); err != nil || !st.IsDir() {
		a.log.Error().Err(err).Str(FieldPolicy, a.cfg.PolicyDir).Msg("the policy directory is gone: containers selecting a policy will be refused")
		return 0, 0
	}
	var names []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, _ := filepath.Glob(filepath.Join(a.cfg.PolicyDir, pat))
		names = append(names, m...)
	}
	sort.Strings(names)
	for _, f := range names {
		if _, _, err := a.policies.load(filepath.Base(f)); err != nil {
			invalid++
			a.log.Warn().Err(err).Str(FieldPolicy, f).Msg("invalid policy in the policy directory: containers selecting it will be refused")
		} else {
			valid++
		}
	}
	return valid, invalid
}

// Reload re-reads the policy directory and reports what it found. Policies
// are read for every handoff anyway; Reload makes an operator's edit show
// its errors now rather than at the next container.
func (a *Agent) Reload() (valid, invalid int) {
	return a.checkPolicies()
}

// Addr returns the socket path.
func (a *Agent) Addr() string { return a.cfg.Socket }

// Serve accepts handoffs until Close; each is handled on its own goroutine.
// It returns nil after Close.
func (a *Agent) Serve() error {
	a.mu.Lock()
	if a.state != open {
		a.mu.Unlock()
		return nil
	}
	a.serving.Add(1)
	a.mu.Unlock()
	defer a.serving.Done()
	a.log.Info().Str(FieldSocket, a.cfg.Socket).Str(FieldPolicy, a.policyDirLabel()).Msg("agent listening for OCI seccomp listener handoffs")
	for {
		c, err := a.ln.AcceptUnix()
		if err != nil {
			if a.stopping() {
				return nil
			}
			if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) || errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.ENOMEM) {
				// Out of fds or memory: back off instead of spinning; the
				// runtime's connect waits in the backlog meanwhile.
				a.log.Error().Err(err).Msg("accepting a handoff connection; retrying")
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return fmt.Errorf("accepting handoff connections: %w", err)
		}
		if !a.track(c) {
			c.Close()
			return nil
		}
		go a.handle(c)
	}
}

func (a *Agent) policyDirLabel() string {
	if a.cfg.PolicyDir == "" {
		return EmbeddedDefault
	}
	return a.cfg.PolicyDir
}

func (a *Agent) stopping() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.state != open
}

// track registers a connection so Close can abort it and Shutdown can wait
// for its handoff; false after Close.
func (a *Agent) track(c *net.UnixConn) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.state == closed {
		return false
	}
	a.conns[c] = struct{}{}
	a.handoffs.Add(1)
	a.pending.Add(1)
	return true
}

func (a *Agent) untrack(c *net.UnixConn) {
	a.mu.Lock()
	delete(a.conns, c)
	a.mu.Unlock()
	c.Close()
	a.handoffs.Done()
}

// Shutdown drains the agent: it removes the socket, so new connections
// fail, takes the connections already queued on it, waits until every
// handoff in progress is supervised or refused (each within the handoff
// timeout), and then closes as Close does. A runtime that connected before
// the stop therefore gets its container handed over rather than a reset
// connection. Containers supervised when the process exits lose their
// supervisor: the kernel fails their trapped syscalls with ENOSYS.
func (a *Agent) Shutdown() error {
	a.mu.Lock()
	if a.state != open {
		a.mu.Unlock()
		return a.Close()
	}
	a.state = draining
	a.mu.Unlock()
	a.unlinkSocket()
	// Wake Serve's accept without closing the socket: the connections in
	// its backlog are taken below, not reset.
	_ = a.ln.SetDeadline(time.Now())
	a.serving.Wait()
	for _, c := range a.acceptQueued() {
		if a.track(c) {
			go a.handle(c)
		} else {
			c.Close()
		}
	}
	a.pending.Wait()
	return a.Close()
}

// acceptQueued accepts the connections waiting in the socket's backlog
// without blocking. The name is already unlinked, so none can join.
func (a *Agent) acceptQueued() []*net.UnixConn {
	rc, err := a.ln.SyscallConn()
	if err != nil {
		return nil
	}
	var fds []int
	_ = rc.Control(func(lfd uintptr) {
		for {
			// Go's listener is non-blocking: EAGAIN means the backlog is
			// empty.
			fd, _, err := unix.Accept4(int(lfd), unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ECONNABORTED) {
				continue
			}
			if err != nil {
				return
			}
			fds = append(fds, fd)
		}
	})
	var out []*net.UnixConn
	for _, fd := range fds {
		f := os.NewFile(uintptr(fd), "handoff")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			a.log.Error().Err(err).Msg("taking a queued handoff connection")
			continue
		}
		out = append(out, c.(*net.UnixConn))
	}
	return out
}

// Close stops accepting, removes the socket and aborts handoffs in
// progress. Containers already handed over stay supervised until their
// listeners hang up (see Wait); if the process exits instead, the kernel
// fails their trapped syscalls with ENOSYS.
func (a *Agent) Close() error {
	a.mu.Lock()
	if a.state == closed {
		a.mu.Unlock()
		return nil
	}
	a.state = closed
	a.unlinkSocket()
	err := a.ln.Close()
	for c := range a.conns {
		c.Close()
	}
	a.mu.Unlock()
	a.handoffs.Wait()
	// Released last: a new agent may take the path over from here on.
	a.lock.Close()
	return err
}

// Wait blocks until every supervised container's listener has hung up.
func (a *Agent) Wait() {
	a.mu.Lock()
	for a.running > 0 {
		a.idle.Wait()
	}
	a.mu.Unlock()
}

// Containers returns the containers being supervised, oldest first.
func (a *Agent) Containers() []Container {
	a.mu.Lock()
	defer a.mu.Unlock()
	keys := make([]uint64, 0, len(a.containers))
	for k := range a.containers {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
	out := make([]Container, len(keys))
	for i, k := range keys {
		out[i] = a.containers[k]
	}
	return out
}

// addContainer registers a container whose supervisor is about to start.
func (a *Agent) addContainer(c Container) uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.next++
	a.containers[a.next] = c
	a.running++
	if a.cfg.Metrics != nil {
		a.cfg.Metrics.ContainerSupervised()
	}
	return a.next
}

// removeContainer is the last thing a supervisor goroutine does.
func (a *Agent) removeContainer(k uint64) {
	a.mu.Lock()
	delete(a.containers, k)
	a.running--
	if a.running == 0 {
		a.idle.Broadcast()
	}
	a.mu.Unlock()
}

// fieldsOf adds a handoff's identifying fields to a log line.
func fieldsOf(ev *zerolog.Event, h *Handoff) *zerolog.Event {
	return ev.Str(audit.FieldContainer, h.ID()).
		Str(FieldListenerMetadata, h.Metadata).
		Str(FieldOCIVersion, h.Version).
		Int(audit.FieldPid, h.Pid).
		Str(FieldStatus, string(h.State.Status)).
		Str(FieldBundle, h.State.Bundle)
}
