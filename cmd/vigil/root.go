package main

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/vigilsec/vigil/cmd/vigil/internal/agent"
	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/loader"
)

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "vigil",
		Short:         "Supervise processes with seccomp user notification and bound pointer inspection",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(), newPolicyCmd(), newObserveCmd(), newDoctorCmd(), newBenchCmd(), newAgentCmd(),
		newVersionCmd(), newGenDocsCmd())
	setVersionFlag(root)
	// cobra adds 'completion' when it executes; add it now so that it gets
	// the same treatment as the other command groups.
	root.InitDefaultCompletionCmd()
	strictGroups(root)
	return root
}

// strictGroups makes every command group (policy, completion) refuse an
// unknown subcommand with a usage error, exit 2: cobra checks subcommand
// names only at the root and otherwise prints help and exits 0.
func strictGroups(c *cobra.Command) {
	for _, sub := range c.Commands() {
		strictGroups(sub)
	}
	if c == c.Root() || !c.HasSubCommands() || c.Runnable() {
		return
	}
	c.Args = cobra.ArbitraryArgs
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2
		}
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, ", ") + "?"
		}
		return &exitError{code: 2, err: errors.New(msg)}
	}
}

// runOptions are run's flags.
type runOptions struct {
	policyFile, logFile, logLevel, metricsAddr string
	noHardening, userns, unverified            bool
	detachIdle                                 time.Duration
}

func newRunCmd() *cobra.Command {
	var o runOptions
	cmd := &cobra.Command{
		Use:   "run [--policy FILE] [--userns] [--log FILE] -- CMD [ARGS...]",
		Short: "Run CMD under supervision; exit with its status (or by the signal that killed it)",
		Long: `Run CMD under a seccomp filter that sends the syscalls the policy names to
vigil, which decodes their pointer arguments, resolves paths in CMD's view
and answers deny, kill or allow. Without --policy the embedded default policy
applies (see 'vigil policy default'). Audit records go to stderr (or --log).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, argv []string) error { return runSupervised(o, argv) },
	}
	addRunFlags(cmd, &o)
	return cmd
}

func addRunFlags(cmd *cobra.Command, o *runOptions) {
	f := cmd.Flags()
	f.StringVar(&o.policyFile, "policy", "", "policy file (default: the embedded default policy)")
	f.StringVar(&o.logFile, "log", "", "write audit records and vigil's own warnings to FILE as JSON lines instead of stderr")
	f.StringVar(&o.logLevel, "log-level", "", "lowest audit level recorded: debug (every decision), info (log rules, denials, kills), warn, error; default debug with --log, info on stderr")
	f.StringVar(&o.metricsAddr, "metrics-addr", "", "serve Prometheus metrics on HOST:PORT at /metrics while CMD runs (see README \"Metrics\")")
	f.BoolVar(&o.userns, "userns", false, "start CMD as root in a new user namespace (host ids 100000-165535) with its own mount namespace")
	f.BoolVar(&o.unverified, "unverified", false, "naive mode: content-dependent allows CONTINUE without eBPF binding or emulation (verified \"none\"); for kernels without the BPF features vigil needs")
	addDetachIdleFlag(f, &o.detachIdle)
	f.BoolVar(&o.noHardening, "no-hardening", false, "do not refuse, in the kernel, the calls that could escape or switch off supervision (nested listeners, io_uring, ptrace, bpf, modules, kexec, pidfd_getfd, ...)")
	f.SetInterspersed(false)
}

// runSupervised is run: it sets up the logs, metrics and the engines the
// policy's plan needs, then runs argv under supervision and exits with its
// status.
func runSupervised(o runOptions, argv []string) error {
	survivePipeReaders()
	pol, err := loadPolicy(o.policyFile)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	level, err := parseLevel(o.logLevel, o.logFile != "")
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	lg, err := openLogs(o.logFile, level)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer lg.close()
	diag := lg.diag
	met, stop, err := serveMetrics(o.metricsAddr, diag)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer stop()
	plan, err := enforcer.NewPlan(pol, o.unverified)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	idle, err := detachIdleOption(o.detachIdle)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	kern, err := loadKernel(diag, !plan.Kernel, idle)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if kern != nil {
		defer kern.Close()
		if met != nil {
			kern.SetMetrics(met)
		}
	}
	em, err := startEmulator(diag, plan.Emulator)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if em != nil {
		defer em.Close()
	}
	var attr *syscall.SysProcAttr
	if o.userns {
		attr = enforcer.UserNSAttr(enforcer.DefaultUserNSRange)
	}
	ex, err := enforcer.Run(enforcer.RunConfig{
		SysProcAttr: attr,
		Config:      enforcer.Config{Policy: pol, Log: diag, Audit: lg.audit, Kernel: kern, Unverified: o.unverified, Emulator: em, Metrics: enforcerMetrics(met)},
		Args:        argv,
		Env:         os.Environ(),
		Stdin:       os.Stdin,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		NoHardening: o.noHardening,
	})
	if err != nil {
		return &exitError{code: ex.Code, err: err}
	}
	if ex.Code != 0 {
		return &exitError{code: ex.Code, signal: ex.Signal}
	}
	return nil
}

// startEmulator starts the emulation engine when the plan needs it.
func startEmulator(log zerolog.Logger, need bool) (*emulate.Emulator, error) {
	if !need {
		return nil, nil
	}
	em, err := emulate.New(log)
	if err != nil {
		return nil, fmt.Errorf("starting the emulation engine: %w", err)
	}
	return em, nil
}

// addDetachIdleFlag adds --detach-idle, shared by run and agent.
func addDetachIdleFlag(f *pflag.FlagSet, v *time.Duration) {
	f.DurationVar(v, "detach-idle", loader.DefaultDetachIdle, "detach the eBPF binding's syscall tracepoints, which slow every syscall on the host, after this long with no binding pending; they come back with the next bound call (0: keep them attached)")
}

// detachIdleOption checks --detach-idle and turns it into
// loader.Options.DetachIdle (the same: 0 keeps the tracepoints attached).
func detachIdleOption(d time.Duration) (time.Duration, error) {
	if d < 0 {
		return 0, fmt.Errorf("--detach-idle must not be negative, got %v", d)
	}
	return d, nil
}

// loadKernel loads the eBPF binding unless the plan does without it (a
// policy that cannot allow depending on pointer arguments, or the naive
// mode): its raw tracepoints cost every syscall of a watchee. A kernel that
// cannot load it yields nil and a warning: enforcer.New then refuses
// policies that need it.
func loadKernel(log zerolog.Logger, skip bool, detachIdle time.Duration) (*enforcer.Kernel, error) {
	if skip {
		return nil, nil
	}
	return enforcer.LoadKernel(log, detachIdle, "")
}

func loadPolicy(file string) (*policy.Policy, error) {
	if file == "" {
		return policy.Default(), nil
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	if err := notAPolicy(file, data); err != nil {
		return nil, err
	}
	return policy.Parse(file, data)
}

// notAPolicy recognises the JSON files people hand vigil for a policy — a
// seccomp profile (Docker's default, a Kubernetes localhost/ profile) or an
// OCI config.json — and says how vigil uses them instead.
func notAPolicy(file string, data []byte) error {
	switch agent.Sniff(data) {
	case agent.SeccompProfile:
		what := "a seccomp profile"
		p, err := agent.ParseProfile(data)
		if err != nil {
			what += " that vigil cannot read (" + err.Error() + ")"
		} else {
			what += " (" + agent.Describe(p) + ")"
		}
		if err == nil && p.ListenerPath != "" {
			return fmt.Errorf("%s: not a vigil policy but %s. It is ready for use as a container's profile "+
				"(docker run --security-opt seccomp=%s, or a Kubernetes localhost/ profile; see README \"Docker, Podman and Kubernetes\"), "+
				"with the agent's --policy-dir holding the policy listenerMetadata names", file, what, file)
		}
		return fmt.Errorf("%s: not a vigil policy but %s. vigil policies are YAML (see 'vigil policy default'). "+
			"To add vigil's supervision to this profile: vigil agent seccomp-profile --base %s --policy POLICY.yaml > merged.json, "+
			"then use merged.json as the container's profile (docker run --security-opt seccomp=merged.json, or a Kubernetes localhost/ profile; see README \"Docker, Podman and Kubernetes\")",
			file, what, file)
	case agent.OCIConfig:
		return fmt.Errorf("%s: not a vigil policy but an OCI runtime config.json. "+
			"To send a policy's syscalls to 'vigil agent': vigil agent seccomp-profile --config %s --policy POLICY.yaml > config.new && mv config.new %s",
			file, file, file)
	}
	return nil
}

func parseLevel(s string, toFile bool) (zerolog.Level, error) {
	if s == "" {
		if toFile {
			return zerolog.DebugLevel, nil
		}
		return zerolog.InfoLevel, nil
	}
	switch strings.ToLower(s) {
	case "debug", "trace":
		return zerolog.DebugLevel, nil
	case "info":
		return zerolog.InfoLevel, nil
	case "warn":
		return zerolog.WarnLevel, nil
	case "error":
		return zerolog.ErrorLevel, nil
	}
	return zerolog.NoLevel, fmt.Errorf("unknown --log-level %q (want debug, info, warn or error)", s)
}

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "policy", Short: "Validate and show policies"}
	var oci, explain bool
	check := &cobra.Command{
		Use:   "check FILE...",
		Short: "Validate policy files; errors are reported as file:line:col: message (exit 2)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, files []string) error {
			bad := false
			for _, f := range files {
				p, err := loadPolicy(f)
				var plan *enforcer.Plan
				if err == nil {
					plan, err = enforcer.NewPlan(p, false)
				}
				if err == nil && oci {
					err = checkOCI(os.Stderr, f, p)
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					bad = true
					continue
				}
				fmt.Fprintf(os.Stdout, "%s: ok (%d rules, traps %s)\n", f, len(p.Rules), strings.Join(p.Syscalls(), ", "))
				if explain {
					if err := plan.Explain(os.Stdout); err != nil {
						return err
					}
				}
			}
			if bad {
				return &exitError{code: 2}
			}
			return nil
		},
	}
	check.Flags().BoolVar(&explain, "explain", false, "also print the plan: what the filter traps, what each syscall's rules look at, and how vigil makes each allow safe (eBPF binding, emulation)")
	check.Flags().BoolVar(&oci, "oci", false, "also check the policy as an OCI container profile (see 'vigil agent seccomp-profile')")
	def := &cobra.Command{
		Use:   "default",
		Short: "Print the embedded default policy",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := os.Stdout.Write(policy.DefaultYAML())
			return err
		},
	}
	cmd.AddCommand(check, def)
	return cmd
}
