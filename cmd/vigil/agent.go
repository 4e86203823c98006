package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/cmd/vigil/internal/agent"
	"github.com/vigilsec/vigil/enforcer/audit"
)

// defaultAgentSocket is where the systemd unit (scripts/vigil-agent.service)
// puts the agent's socket.
const defaultAgentSocket = "/run/vigil/agent.sock"

func newAgentCmd() *cobra.Command {
	var socket, policyDir, logFile, logLevel, metricsAddr string
	var timeout, detachIdle time.Duration
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
'vigil agent seccomp-profile' prints a matching linux.seccomp section.

SIGHUP reopens --log (after logrotate renamed it) and re-reads --policy-dir.
SIGTERM drains: no new connections, handoffs in progress finish, exit 0.
Under systemd (Type=notify, $NOTIFY_SOCKET) the agent reports READY=1 once
its socket accepts. A stale socket of a dead agent is replaced; a live
agent's is not (PATH.lock is held while an agent runs).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			survivePipeReaders()
			if timeout <= 0 {
				return &exitError{code: 2, err: fmt.Errorf("--handoff-timeout must be positive, got %v", timeout)}
			}
			idle, err := detachIdleOption(detachIdle)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			level, err := parseLevel(logLevel, logFile != "")
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			opts := agent.Options{
				Socket:         socket,
				PolicyDir:      policyDir,
				LogFile:        logFile,
				LogLevel:       level,
				HandoffTimeout: timeout,
				Unverified:     unverified,
				DetachIdle:     idle,
			}
			met, stopMetrics, err := serveMetrics(metricsAddr, audit.NewLogger(os.Stderr, zerolog.InfoLevel))
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			defer stopMetrics()
			if met != nil {
				opts.Metrics = met
			}
			code, err := agent.Main(opts)
			if code != 0 || err != nil {
				return &exitError{code: code, err: err}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&socket, "socket", defaultAgentSocket, "unix socket the runtimes connect to (config.json linux.seccomp.listenerPath); its directory must exist")
	f.StringVar(&policyDir, "policy-dir", "", "directory of the policies listenerMetadata can select (policy=NAME)")
	f.StringVar(&logFile, "log", "", "write audit records to FILE as JSON lines instead of stderr; SIGHUP reopens it")
	f.StringVar(&logLevel, "log-level", "", "lowest audit level recorded: debug, info, warn, error; default debug with --log, info on stderr")
	f.StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus metrics on HOST:PORT at /metrics (see README \"Metrics\")")
	f.DurationVar(&timeout, "handoff-timeout", agent.DefaultHandoffTimeout, "how long a connected runtime may take to send its handoff")
	f.BoolVar(&unverified, "unverified", false, "do not load the eBPF binding: content-dependent allows CONTINUE unbound (verified \"none\"); for kernels without the BPF features vigil needs")
	addDetachIdleFlag(f, &detachIdle)
	cmd.AddCommand(newSeccompProfileCmd())
	return cmd
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
