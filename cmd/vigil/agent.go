package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/cmd/vigil/internal/agent"
	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/audit"
	"github.com/vigilsec/vigil/enforcer/policy"
)

// defaultAgentSocket is where the systemd unit (scripts/vigil-agent.service)
// puts the agent's socket.
const defaultAgentSocket = "/run/vigil/agent.sock"

func newAgentCmd() *cobra.Command {
	var socket, policyDir, logFile, logLevel, metricsAddr string
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
'vigil agent seccomp-profile' prints a matching linux.seccomp section.

SIGHUP reopens --log (after logrotate renamed it) and re-reads --policy-dir.
SIGTERM drains: no new connections, handoffs in progress finish, exit 0.
Under systemd (Type=notify, $NOTIFY_SOCKET) the agent reports READY=1 once
its socket accepts. A stale socket of a dead agent is replaced; a live
agent's is not (PATH.lock is held while an agent runs).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if timeout <= 0 {
				return &exitError{code: 2, err: fmt.Errorf("--handoff-timeout must be positive, got %v", timeout)}
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
	cmd.AddCommand(newSeccompProfileCmd())
	return cmd
}

func newSeccompProfileCmd() *cobra.Command {
	var policyFile, socket, metadata, runtime string
	var noHardening bool
	cmd := &cobra.Command{
		Use:   "seccomp-profile [--policy FILE] [--socket PATH] [--metadata STR] [--runtime runc|crun]",
		Short: "Print the config.json linux.seccomp section that sends a policy's syscalls to the agent",
		Long: `Print, as JSON, the linux.seccomp object of an OCI config.json that matches a
policy: defaultAction SCMP_ACT_ALLOW, the policy's syscalls as SCMP_ACT_NOTIFY
to the agent's socket, and vigil's hardening rules as SCMP_ACT_ERRNO.
listenerMetadata defaults to policy=<base name of FILE>, so copy FILE into the
agent's --policy-dir. --runtime crun adds flags so crun installs the filter
with SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (a call vigil is carrying out is
not interrupted by signals); released runc versions refuse that flag, so a
runc profile has none. Merge it with e.g.
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
			flags, err := agent.RuntimeFlags(runtime)
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			prof, err := agent.Profile(pol, agent.ProfileOptions{Socket: socket, Metadata: metadata, NoHardening: noHardening, Flags: flags})
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
	f.StringVar(&runtime, "runtime", agent.DefaultRuntime, "runtime the profile is for: crun gets flags [SPEC_ALLOW, WAIT_KILLABLE_RECV] (crun ≥ 1.6, Linux ≥ 5.19); runc, which refuses that flag, gets none")
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
