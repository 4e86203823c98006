package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/cmd/vigil/internal/agent"
	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/policy"
)

// defaultAgentSocket is where the systemd unit (scripts/vigil-agent.service)
// puts the agent's socket.
const defaultAgentSocket = "/run/vigil/agent.sock"

func newAgentCmd() *cobra.Command {
	var socket, policyDir, logFile, logLevel string
	var timeout time.Duration
	var unverified bool
	cmd := &cobra.Command{
		Use:   "agent [--socket PATH] [--policy-dir DIR] [--log FILE] [--unverified]",
		Short: "Run the OCI seccomp agent that runc/crun hand container listeners to (listenerPath)",
		Long: `Listen on a unix socket for the seccomp listeners OCI runtimes hand over when
a container's config.json sets linux.seccomp.listenerPath, and supervise each
container with its policy until its last process exits.

The policy is the file in --policy-dir that listenerMetadata names
("policy=web.yaml"), else default.yaml in --policy-dir, else the embedded
default. A container whose policy is invalid, or whose handoff is malformed,
is refused: its trapped syscalls fail with ENOSYS. Only root may connect.
'vigil agent seccomp-profile' prints a matching linux.seccomp section.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			level, err := parseLevel(logLevel, logFile != "")
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			diag := audit.NewLogger(os.Stderr, zerolog.InfoLevel)
			auditLog := audit.NewLogger(os.Stderr, level)
			if logFile != "" {
				f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
				if err != nil {
					return &exitError{code: 2, err: fmt.Errorf("opening audit log: %w", err)}
				}
				sink := audit.NewSink(f)
				defer sink.Close()
				auditLog = audit.NewLogger(sink, level)
			}
			// One eBPF binding serves every container: thread ids are
			// unique system-wide.
			// Containers' policies are chosen per handoff, so the emulation
			// engine always runs; it starts no worker until a call needs one.
			em, err := emulate.New(diag)
			if err != nil {
				return &exitError{code: 2, err: fmt.Errorf("starting the emulation engine: %w", err)}
			}
			defer em.Close()
			kern, err := loadKernel(diag, unverified)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if kern != nil {
				defer kern.Close()
			}
			return runAgent(agent.Config{
				Socket:         socket,
				PolicyDir:      policyDir,
				HandoffTimeout: timeout,
				Enforcer:       enforcer.Config{Log: diag, Audit: auditLog, Kernel: kern, Unverified: unverified, Emulator: em},
			}, diag)
		},
	}
	f := cmd.Flags()
	f.StringVar(&socket, "socket", defaultAgentSocket, "unix socket the runtimes connect to (config.json linux.seccomp.listenerPath)")
	f.StringVar(&policyDir, "policy-dir", "", "directory of the policies listenerMetadata can select (policy=NAME)")
	f.StringVar(&logFile, "log", "", "write audit records to FILE as JSON lines instead of stderr")
	f.StringVar(&logLevel, "log-level", "", "lowest audit level recorded: debug, info, warn, error; default debug with --log, info on stderr")
	f.DurationVar(&timeout, "handoff-timeout", agent.DefaultHandoffTimeout, "how long a connected runtime may take to send its handoff")
	f.BoolVar(&unverified, "unverified", false, "do not load the eBPF binding: content-dependent allows CONTINUE unbound (verified \"none\"); for kernels without the BPF features vigil needs")
	cmd.AddCommand(newSeccompProfileCmd())
	return cmd
}

// runAgent serves until SIGINT or SIGTERM. Containers still supervised then
// lose their supervisor with this process: the kernel fails their trapped
// syscalls with ENOSYS, it never lets them through.
func runAgent(cfg agent.Config, log zerolog.Logger) error {
	// Catch the signals before the socket exists: a service manager may
	// stop the agent as soon as it sees the socket.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	a, err := agent.Listen(cfg)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	served := make(chan error, 1)
	go func() { served <- a.Serve() }()
	select {
	case s := <-sigs:
		left := a.Containers()
		ev := log.Info()
		if len(left) > 0 {
			ev = log.Warn()
		}
		ev.Str("signal", s.String()).Int("containers", len(left)).
			Msg("agent stopping; trapped syscalls of containers still running will fail with ENOSYS")
		a.Close()
		<-served
		return nil
	case err := <-served:
		a.Close()
		if err != nil {
			return &exitError{code: 1, err: err}
		}
		return nil
	}
}

func newSeccompProfileCmd() *cobra.Command {
	var policyFile, socket, metadata string
	var noHardening bool
	cmd := &cobra.Command{
		Use:   "seccomp-profile [--policy FILE] [--socket PATH] [--metadata STR]",
		Short: "Print the config.json linux.seccomp section that sends a policy's syscalls to the agent",
		Long: `Print, as JSON, the linux.seccomp object of an OCI config.json that matches a
policy: defaultAction SCMP_ACT_ALLOW, the policy's syscalls as SCMP_ACT_NOTIFY
to the agent's socket, and vigil's hardening rules as SCMP_ACT_ERRNO.
listenerMetadata defaults to policy=<base name of FILE>, so copy FILE into the
agent's --policy-dir. Merge it with e.g.
  jq --slurpfile s profile.json '.linux.seccomp = $s[0]' config.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			pol := policy.Default()
			if policyFile != "" {
				var err error
				if pol, err = policy.Load(policyFile); err != nil {
					return &exitError{code: 2, err: err}
				}
				if !cmd.Flags().Changed("metadata") {
					metadata = "policy=" + filepath.Base(policyFile)
				}
			}
			if err := enforcer.Supported(pol); err != nil {
				return &exitError{code: 2, err: err}
			}
			if _, err := agent.ParseMetadata(metadata); err != nil {
				return &exitError{code: 2, err: err}
			}
			prof, err := agent.Profile(pol, agent.ProfileOptions{Socket: socket, Metadata: metadata, NoHardening: noHardening})
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			return writeJSON(os.Stdout, prof)
		},
	}
	f := cmd.Flags()
	f.StringVar(&policyFile, "policy", "", "policy file (default: the embedded default policy)")
	f.StringVar(&socket, "socket", defaultAgentSocket, "the agent's socket (listenerPath)")
	f.StringVar(&metadata, "metadata", "", "listenerMetadata (default: policy=<base name of --policy>)")
	f.BoolVar(&noHardening, "no-hardening", false, "leave out the SCMP_ACT_ERRNO hardening rules")
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// checkOCI is `vigil policy check --oci`: it prints the notes and warnings
// for p as a container profile to w and returns the fatal ones as an error.
func checkOCI(w io.Writer, file string, p *policy.Policy) error {
	fs := agent.CheckOCI(p)
	for _, f := range fs {
		if f.Severity != agent.Fatal {
			fmt.Fprintf(w, "%s: %s\n", file, f)
		}
	}
	if err := agent.FatalFindings(fs); err != nil {
		return errors.New(file + ": " + err.Error())
	}
	return nil
}
