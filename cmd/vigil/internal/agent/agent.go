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
	// HandoffTimeout defaults to DefaultHandoffTimeout; MaxHandoff to
	// MaxHandoff.
	HandoffTimeout time.Duration
	MaxHandoff     int
}

// Agent accepts listener handoffs from OCI runtimes and supervises each
// container until its listener hangs up.
type Agent struct {
	cfg      Config
	log      zerolog.Logger
	ln       *net.UnixListener
	policies Policies

	mu         sync.Mutex
	closed     bool
	conns      map[*net.UnixConn]struct{} // connections not yet done
	containers map[uint64]Container
	next       uint64

	handoffs sync.WaitGroup // connection goroutines; Add only while open
	// running counts supervisor goroutines; idle is signalled when it
	// drops to zero. (A WaitGroup would forbid a handoff that completes
	// while someone Waits.)
	running int
	idle    *sync.Cond
}

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

// Listen creates the socket and returns an Agent ready to Serve. A stale
// socket left by a dead agent is replaced; a live one, or any other file at
// the path, is an error.
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
	// The default /run/vigil may not exist outside systemd (whose unit
	// creates it); make it root-only like the socket.
	if err := os.MkdirAll(filepath.Dir(cfg.Socket), 0o700); err != nil {
		return nil, fmt.Errorf("creating the socket's directory: %w", err)
	}
	if err := removeStale(cfg.Socket); err != nil {
		return nil, err
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: cfg.Socket, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", cfg.Socket, err)
	}
	// Between bind and chmod the umask's mode applies; peers are checked by
	// SO_PEERCRED anyway, the mode keeps others from even connecting.
	if err := os.Chmod(cfg.Socket, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("restricting %s to root: %w", cfg.Socket, err)
	}
	a := &Agent{
		cfg: cfg, log: cfg.Enforcer.Log, ln: ln, policies: Policies{Dir: cfg.PolicyDir},
		conns: map[*net.UnixConn]struct{}{}, containers: map[uint64]Container{},
	}
	a.idle = sync.NewCond(&a.mu)
	a.checkPolicies()
	return a, nil
}

// removeStale removes a socket nobody listens on. A file that is not a
// socket is never removed: the path may be a typo for something precious.
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
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("%s: another agent is listening there", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("removing stale socket %s: %w", path, err)
	}
	return nil
}

// checkPolicies reports invalid files in the policy directory at startup,
// so a broken policy shows up before the first container that needs it.
func (a *Agent) checkPolicies() {
	if a.cfg.PolicyDir == "" {
		return
	}
	var names []string
	for _, pat := range []string{"*.yaml", "*.yml"} {
		m, _ := filepath.Glob(filepath.Join(a.cfg.PolicyDir, pat))
		names = append(names, m...)
	}
	sort.Strings(names)
	for _, f := range names {
		if _, _, err := a.policies.load(filepath.Base(f)); err != nil {
			a.log.Warn().Err(err).Str(FieldPolicy, f).Msg("invalid policy in the policy directory: containers selecting it will be refused")
		}
	}
}

// Addr returns the socket path.
func (a *Agent) Addr() string { return a.cfg.Socket }

// Serve accepts handoffs until Close; each is handled on its own goroutine.
// It returns nil after Close.
func (a *Agent) Serve() error {
	a.log.Info().Str(FieldSocket, a.cfg.Socket).Str(FieldPolicy, a.policyDirLabel()).Msg("agent listening for OCI seccomp listener handoffs")
	for {
		c, err := a.ln.AcceptUnix()
		if err != nil {
			if a.isClosed() {
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

func (a *Agent) isClosed() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.closed
}

// track registers a connection so Close can abort it; false after Close.
func (a *Agent) track(c *net.UnixConn) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return false
	}
	a.conns[c] = struct{}{}
	a.handoffs.Add(1)
	return true
}

func (a *Agent) untrack(c *net.UnixConn) {
	a.mu.Lock()
	delete(a.conns, c)
	a.mu.Unlock()
	c.Close()
	a.handoffs.Done()
}

// Close stops accepting, removes the socket and aborts handoffs in
// progress. Containers already handed over stay supervised until their
// listeners hang up (see Wait); if the process exits instead, the kernel
// fails their trapped syscalls with ENOSYS.
func (a *Agent) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	err := a.ln.Close()
	for c := range a.conns {
		c.Close()
	}
	a.mu.Unlock()
	a.handoffs.Wait()
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
