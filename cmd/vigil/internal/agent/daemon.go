package agent

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/emulate"
)

// Options are the settings of `vigil agent`: its flags.
type Options struct {
	// Socket is the socket the runtimes connect to (listenerPath). Its
	// directory must exist.
	Socket string
	// PolicyDir holds the policies listenerMetadata can select.
	PolicyDir string
	// LogFile receives the audit records as JSON lines; "" sends them to
	// Stderr. SIGHUP reopens it.
	LogFile string
	// LogLevel is the lowest audit level recorded.
	LogLevel zerolog.Level
	// HandoffTimeout bounds each runtime's handoff (DefaultHandoffTimeout
	// when zero).
	HandoffTimeout time.Duration
	// Unverified runs without the eBPF binding (--unverified).
	Unverified bool
	// DetachIdle is how long the eBPF binding's syscall tracepoints stay
	// attached with nothing needing them (loader.Options.DetachIdle: 0
	// keeps them attached). `vigil agent` passes --detach-idle, whose
	// default is loader.DefaultDetachIdle.
	DetachIdle time.Duration
	// Stderr receives the agent's diagnostics (and the audit records
	// without LogFile); nil means os.Stderr.
	Stderr io.Writer
	// Metrics, when set, counts decisions, bindings, containers and
	// refused handoffs (--metrics-addr).
	Metrics DaemonMetrics
}

// DaemonMetrics is what `vigil agent --metrics-addr` counts: the
// supervisors' and the eBPF side's (enforcer.Metrics) and the agent's.
type DaemonMetrics interface {
	enforcer.Metrics
	Metrics
	// RegisterAgent is given the count of containers supervised now, read
	// at every scrape.
	RegisterAgent(current func() int)
}

// Daemon is a running `vigil agent`: the engine every container's
// supervisor shares, the audit log, and the Agent serving the socket. The
// CLI and the tests build it with Start, so what the tests run is what
// users run.
type Daemon struct {
	*Agent
	opts   Options
	log    zerolog.Logger
	sink   *audit.Sink // nil when audit records go to Stderr
	kern   *enforcer.Kernel
	notify *Notifier
}

// Start does what `vigil agent` does before it serves: it opens the audit
// log, loads the eBPF binding (unless Unverified), checks that the
// emulation engine starts, and listens on the socket. Policies are chosen
// per container, so both the binding and the emulator always run: a
// container policy's content-dependent allows are bound or emulated, never
// continued unbound. On error everything already acquired is released.
func Start(o Options) (_ *Daemon, err error) {
	if o.Stderr == nil {
		o.Stderr = os.Stderr
	}
	d := &Daemon{opts: o, log: audit.NewLogger(o.Stderr, zerolog.InfoLevel)}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if d.notify, err = NewNotifier(); err != nil {
		return nil, err
	}
	auditLog := audit.NewLogger(o.Stderr, o.LogLevel)
	if o.LogFile != "" {
		f, err := openLog(o.LogFile)
		if err != nil {
			return nil, err
		}
		d.sink = audit.NewSink(f)
		auditLog = audit.NewLogger(d.sink, o.LogLevel)
	}
	// One eBPF binding serves every container: thread ids are unique
	// system-wide.
	// Unverified mode does without it, as `vigil run` does.
	if !o.Unverified {
		d.kern, err = enforcer.LoadKernel(d.log, o.DetachIdle, ": containers whose policies need it will be refused")
		if err != nil {
			return nil, err
		}
	}
	// Each container gets an emulation engine of its own, which starts no
	// worker until one of its calls needs one and stops its workers when
	// the container is released. One is started here only to fail now,
	// not at the first container, if it cannot start at all.
	newEmulator := func(log zerolog.Logger) (*emulate.Emulator, error) {
		em, err := emulate.New(log)
		if err != nil {
			return nil, fmt.Errorf("starting the emulation engine: %w", err)
		}
		return em, nil
	}
	probe, err := newEmulator(d.log)
	if err != nil {
		return nil, err
	}
	probe.Close()
	cfg := Config{
		Socket:         o.Socket,
		PolicyDir:      o.PolicyDir,
		HandoffTimeout: o.HandoffTimeout,
		NewEmulator:    newEmulator,
		Enforcer:       enforcer.Config{Log: d.log, Audit: auditLog, Kernel: d.kern, Unverified: o.Unverified},
	}
	if o.Metrics != nil {
		cfg.Metrics, cfg.Enforcer.Metrics = o.Metrics, o.Metrics
		if d.kern != nil {
			d.kern.SetMetrics(o.Metrics)
		}
	}
	if d.Agent, err = Listen(cfg); err != nil {
		return nil, err
	}
	if o.Metrics != nil {
		o.Metrics.RegisterAgent(func() int { return len(d.Containers()) })
	}
	return d, nil
}

func openLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	return f, nil
}

// Signals returns the channel Run reads, subscribed to the signals the
// agent handles. Subscribe before Start: a service manager may signal the
// agent as soon as its socket exists.
func Signals() chan os.Signal {
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	return sigs
}

// Run serves until SIGTERM or SIGINT arrives on sigs, then drains
// (Agent.Shutdown) and returns nil. SIGHUP reopens the log file and
// re-reads the policy directory; nothing about it stops the agent. The
// service manager, if any, is told when the agent is ready, reloading and
// stopping. Run returns an error only when serving fails.
func (d *Daemon) Run(sigs <-chan os.Signal) error {
	served := make(chan error, 1)
	go func() { served <- d.Serve() }()
	// The socket accepts from Listen on: connections queue until Serve
	// takes them, so readiness need not wait for the goroutine.
	d.tell(d.notify.Ready(d.status()))
	for {
		select {
		case s := <-sigs:
			if s == syscall.SIGHUP {
				d.Reopen()
				continue
			}
			d.tell(d.notify.Stopping("draining handoffs in progress"))
			d.log.Info().Str("signal", s.String()).Msg("agent stopping: no new handoffs; finishing those in progress")
			err := d.Shutdown()
			<-served
			left := d.Containers()
			ev := d.log.Info()
			if len(left) > 0 {
				ev = d.log.Warn()
			}
			ev.Int("containers", len(left)).Msg("agent stopped; trapped syscalls of containers still running will fail with ENOSYS")
			if err != nil && !errors.Is(err, os.ErrClosed) {
				d.log.Debug().Err(err).Msg("closing the socket")
			}
			return nil
		case err := <-served:
			d.Agent.Close()
			return err
		}
	}
}

// Reopen is SIGHUP: the audit log file is reopened under its name (after
// logrotate renamed it, records go to the new file) and the policy
// directory re-read. A failure is logged and the agent keeps serving with
// what it had: the old log file stays open rather than losing records.
func (d *Daemon) Reopen() {
	d.tell(d.notify.Reloading())
	ev := d.log.Info()
	if d.sink != nil {
		f, err := openLog(d.opts.LogFile)
		if err != nil {
			d.log.Error().Err(err).Msg("reopening the audit log; records keep going to the file already open")
		} else if err := d.sink.Reopen(f); err != nil {
			d.log.Warn().Err(err).Msg("flushing and closing the previous audit log")
		}
		ev = ev.Str("log", d.opts.LogFile)
	}
	valid, invalid := d.Reload()
	ev.Int("policies", valid).Int("invalid_policies", invalid).Msg("reloaded: audit log reopened, policy directory re-read")
	d.tell(d.notify.Ready(d.status()))
}

func (d *Daemon) status() string {
	return fmt.Sprintf("listening on %s; %d containers supervised", d.opts.Socket, len(d.Containers()))
}

// tell logs a failed notification: the service manager's bookkeeping is
// not worth stopping the agent for.
func (d *Daemon) tell(err error) {
	if err != nil {
		d.log.Warn().Err(err).Msg("notifying the service manager")
	}
}

// Close releases what Start acquired, in reverse order. Containers still
// supervised lose their supervisor with the process.
func (d *Daemon) Close() error {
	var err error
	if d.Agent != nil {
		err = d.Agent.Close()
	}
	if d.kern != nil {
		d.kern.Close()
	}
	if d.sink != nil {
		if cerr := d.sink.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// Main is `vigil agent` after flag parsing: Start, Run until SIGTERM, and
// Close. Its exit code is 2 when the agent cannot start (a missing
// directory, a live agent on the socket, an eBPF binding that fails to
// load), 1 when serving fails, 0 after a drain.
func Main(o Options) (code int, err error) {
	sigs := Signals()
	defer signal.Stop(sigs)
	d, err := Start(o)
	if err != nil {
		return 2, err
	}
	defer d.Close()
	if err := d.Run(sigs); err != nil {
		return 1, err
	}
	return 0, nil
}
