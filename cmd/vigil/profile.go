package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/cmd/vigil/internal/agent"
	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/policy"
)

// seccompProfileOptions are seccomp-profile's flags; metadataSet and
// resolve say whether --metadata and --resolve-caps were given at all.
type seccompProfileOptions struct {
	policyFile, socket, metadata, baseFile, configFile, resolveCaps, runtime string
	noHardening, metadataSet, resolve                                        bool
}

func newSeccompProfileCmd() *cobra.Command {
	var o seccompProfileOptions
	cmd := &cobra.Command{
		Use:   "seccomp-profile [--policy FILE] [--base PROFILE.json] [--config config.json] [--socket PATH] [--metadata STR] [--runtime runc|crun]",
		Short: "Print a seccomp profile that sends a policy's syscalls to the agent, alone or merged into an existing profile",
		Long: `Without --base or --config, print the linux.seccomp object of an OCI
config.json that matches a policy: defaultAction SCMP_ACT_ALLOW, the policy's
syscalls as SCMP_ACT_NOTIFY to the agent's socket, and vigil's hardening rules
as SCMP_ACT_ERRNO.

--base PROFILE.json merges the policy into an existing seccomp profile (Docker's
default, a Podman or Kubernetes localhost/ profile) and prints the result in
the same format, keeping every restriction of the base: rules that allowed a
trapped syscall become SCMP_ACT_NOTIFY with the same conditions, calls the base
denies stay denied in the kernel, and the hardening syscalls are taken out of
the allowing rules. What cannot be merged without weakening the base is refused
with the rule that conflicts. What changed is printed on stderr.

--config config.json merges into an OCI bundle's config.json and prints the
whole config: into its linux.seccomp, or with --base, into PROFILE.json resolved
for the container as Docker resolves it (capabilities, architecture, kernel).
--resolve-caps resolves --base that way for the capabilities given and prints
plain OCI linux.seccomp, as containerd's localhost/ profiles need.

listenerMetadata defaults to policy=<base name of FILE>, so copy FILE into the
agent's --policy-dir. --runtime crun adds flags so crun installs the filter
with SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (a call vigil is carrying out is
not interrupted by signals); released runc versions refuse that flag, so a
runc profile has none.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.metadataSet, o.resolve = cmd.Flags().Changed("metadata"), cmd.Flags().Changed("resolve-caps")
			return runSeccompProfile(o)
		},
	}
	addSeccompProfileFlags(cmd, &o)
	return cmd
}

func addSeccompProfileFlags(cmd *cobra.Command, o *seccompProfileOptions) {
	f := cmd.Flags()
	f.StringVar(&o.policyFile, "policy", "", "policy file (default: the embedded default policy)")
	f.StringVar(&o.baseFile, "base", "", "merge into this seccomp profile (Docker/Podman/Kubernetes format) and print it")
	f.StringVar(&o.configFile, "config", "", "merge into this OCI config.json (its linux.seccomp, or --base resolved for it) and print the config")
	f.StringVar(&o.resolveCaps, "resolve-caps", "", "with --base: resolve its includes/excludes for these bounding capabilities (CAP_A,CAP_B; \"\" for none) and print plain OCI linux.seccomp, for engines that ignore them (containerd)")
	f.StringVar(&o.socket, "socket", defaultAgentSocket, "the agent's socket (listenerPath)")
	f.StringVar(&o.metadata, "metadata", "", "listenerMetadata (default: policy=<base name of --policy>)")
	f.StringVar(&o.runtime, "runtime", agent.DefaultRuntime, "runtime the profile is for: crun gets flags [SPEC_ALLOW, WAIT_KILLABLE_RECV] (crun ≥ 1.6, Linux ≥ 5.19); runc, which refuses that flag, gets none")
	f.BoolVar(&o.noHardening, "no-hardening", false, "leave out vigil's hardening (SCMP_ACT_ERRNO for a nested listener, io_uring_setup, ptrace, open_by_handle_at)")
}

// runSeccompProfile is seccomp-profile: it prints vigil's own profile for
// the policy, or the policy merged into --base and/or --config.
func runSeccompProfile(o seccompProfileOptions) error {
	pol, name, err := o.choosePolicy()
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	opts, err := o.profileOptions()
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if o.resolve && o.baseFile == "" {
		return &exitError{code: 2, err: errors.New("--resolve-caps needs --base")}
	}
	if o.baseFile == "" && o.configFile == "" {
		prof, err := agent.Profile(pol, opts)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		return writeJSON(os.Stdout, prof)
	}
	req := agent.MergeRequest{PolicyName: name, Policy: pol, Options: opts, Resolve: o.resolve, Caps: splitList(o.resolveCaps)}
	out, err := mergeProfile(os.Stderr, req, o.baseFile, o.configFile)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	_, err = os.Stdout.Write(out)
	return err
}

// choosePolicy returns the policy (--policy, else the default) and its name
// for messages, and refuses one vigil cannot enforce.
func (o seccompProfileOptions) choosePolicy() (*policy.Policy, string, error) {
	pol, name := policy.Default(), "the default policy"
	if o.policyFile != "" {
		var err error
		if pol, err = loadPolicy(o.policyFile); err != nil {
			return nil, "", err
		}
		name = o.policyFile
	}
	if err := enforcer.Supported(pol); err != nil {
		return nil, "", err
	}
	return pol, name, nil
}

// profileOptions checks --metadata (default: policy=<base name of
// --policy>) and --runtime and returns the options for the profile.
func (o seccompProfileOptions) profileOptions() (agent.ProfileOptions, error) {
	metadata := o.metadata
	if o.policyFile != "" && !o.metadataSet {
		metadata = "policy=" + filepath.Base(o.policyFile)
	}
	if _, err := agent.ParseMetadata(metadata); err != nil {
		return agent.ProfileOptions{}, err
	}
	flags, err := agent.RuntimeFlags(o.runtime)
	if err != nil {
		return agent.ProfileOptions{}, err
	}
	return agent.ProfileOptions{Socket: o.socket, Metadata: metadata, NoHardening: o.noHardening, Flags: flags}, nil
}

// mergeProfile reads the files of `seccomp-profile --base/--config`.
func mergeProfile(w io.Writer, req agent.MergeRequest, baseFile, configFile string) ([]byte, error) {
	var base, config agent.Input
	for _, in := range []struct {
		file string
		to   *agent.Input
	}{{baseFile, &base}, {configFile, &config}} {
		if in.file == "" {
			continue
		}
		data, err := os.ReadFile(in.file)
		if err != nil {
			return nil, err
		}
		*in.to = agent.Input{Name: in.file, Data: data}
	}
	req.Base, req.Config = base, config
	return agent.MergeFiles(w, req)
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
