package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	mseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/vigilsec/vigil/enforcer/policy"
)

// FileKind says what a JSON file handed to vigil is.
type FileKind uint8

// File kinds.
const (
	// OtherFile is anything else (a vigil policy is YAML).
	OtherFile FileKind = iota
	// SeccompProfile is a seccomp profile as Docker, Podman, containerd,
	// CRI-O and Kubernetes' localhost/ profiles take it, or an OCI
	// linux.seccomp object: a JSON object with defaultAction.
	SeccompProfile
	// OCIConfig is an OCI bundle's config.json: ociVersion at the top.
	OCIConfig
)

// Sniff tells seccomp profiles and config.json files from other files by
// their top-level keys.
func Sniff(data []byte) FileKind {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return OtherFile
	}
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return OtherFile
	}
	if _, ok := top["ociVersion"]; ok {
		return OCIConfig
	}
	if _, ok := top["defaultAction"]; ok {
		return SeccompProfile
	}
	return OtherFile
}

// ParseProfile parses a seccomp profile. Unknown keys are errors: a
// misspelt "syscalls" would otherwise drop every rule of the base, and
// Merge must never weaken it.
func ParseProfile(data []byte) (*mseccomp.Seccomp, error) {
	p, _, err := parseProfile(data)
	return p, err
}

// parseProfile is ParseProfile that also returns the profile's JSON with
// errno names made numbers (numericErrnos), as engines' loaders take it.
func parseProfile(data []byte) (*mseccomp.Seccomp, []byte, error) {
	data, err := numericErrnos(data)
	if err != nil {
		return nil, nil, fmt.Errorf("parsing seccomp profile: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p mseccomp.Seccomp
	if err := dec.Decode(&p); err != nil {
		return nil, nil, fmt.Errorf("parsing seccomp profile: %w", err)
	}
	if dec.More() {
		return nil, nil, errors.New("parsing seccomp profile: data after the JSON object")
	}
	if p.DefaultAction == "" {
		return nil, nil, errors.New("parsing seccomp profile: no defaultAction")
	}
	if len(p.Architectures) > 0 && len(p.ArchMap) > 0 {
		return nil, nil, errors.New("parsing seccomp profile: both architectures and archMap (engines take one or the other)")
	}
	return &p, data, nil
}

// numericErrnos turns the errno names Podman's profiles carry beside the
// numbers (containers/common's defaultErrno, and errno in a rule: its
// default profile has "defaultErrno": "ENOSYS" with "defaultErrnoRet": 38)
// into the numbers, which every engine reads (defaultErrnoRet, errnoRet),
// and drops the names, which Docker's loader and older Podman ignore: the
// merged profile then means the same to all of them. A name that is not an
// errno, or one that disagrees with the number beside it (engines differ in
// which they take), is an error. Data that is not a JSON object is left to
// the strict decoder to report.
func numericErrnos(data []byte) ([]byte, error) {
	var top map[string]json.RawMessage
	if json.Unmarshal(data, &top) != nil {
		return data, nil
	}
	changed, err := numericErrno(top, "defaultErrno", "defaultErrnoRet", "")
	if err != nil {
		return nil, err
	}
	if raw, ok := top["syscalls"]; ok {
		var rules []map[string]json.RawMessage
		if json.Unmarshal(raw, &rules) != nil {
			return data, nil
		}
		rulesChanged := false
		for i, r := range rules {
			c, err := numericErrno(r, "errno", "errnoRet", fmt.Sprintf("syscalls[%d].", i))
			if err != nil {
				return nil, err
			}
			rulesChanged = rulesChanged || c
		}
		if rulesChanged {
			if top["syscalls"], err = json.Marshal(rules); err != nil {
				return nil, err
			}
			changed = true
		}
	}
	if !changed {
		return data, nil
	}
	return json.Marshal(top)
}

// numericErrno moves obj[nameKey], an errno name, into obj[numKey]. Keys
// match without regard to case, as engines' JSON decoders match them.
func numericErrno(obj map[string]json.RawMessage, nameKey, numKey, where string) (bool, error) {
	nameAt, err := foldedKey(obj, nameKey, where)
	if err != nil || nameAt == "" {
		return false, err
	}
	numAt, err := foldedKey(obj, numKey, where)
	if err != nil {
		return false, err
	}
	var name string
	if err := json.Unmarshal(obj[nameAt], &name); err != nil {
		return false, fmt.Errorf("%s%s: %w", where, nameKey, err)
	}
	delete(obj, nameAt)
	if name == "" {
		return true, nil
	}
	e, known := policy.ErrnoByName(name)
	if !known {
		return false, fmt.Errorf("%s%s: %q is not an errno name", where, nameKey, name)
	}
	if numRaw, ok := obj[numAt]; ok && string(numRaw) != "null" {
		var n uint
		if err := json.Unmarshal(numRaw, &n); err != nil {
			return false, fmt.Errorf("%s%s: %w", where, numKey, err)
		}
		if n != uint(e) {
			return false, fmt.Errorf("%s%s %s (%d) and %s %d disagree: engines differ in which they take", where, nameKey, name, uint(e), numKey, n)
		}
		return true, nil
	}
	num, err := json.Marshal(uint(e))
	if err != nil {
		return false, err
	}
	if numAt != "" {
		delete(obj, numAt)
	}
	obj[numKey] = num
	return true, nil
}

// foldedKey returns the key of obj that is key without regard to case, ""
// when there is none; two such keys are an error.
func foldedKey(obj map[string]json.RawMessage, key, where string) (string, error) {
	found := ""
	for k := range obj {
		if strings.EqualFold(k, key) {
			if found != "" {
				return "", fmt.Errorf("%s%s given twice (%q and %q)", where, key, found, k)
			}
			found = k
		}
	}
	return found, nil
}

// ResolveProfile turns a profile with archMap and includes/excludes into
// the linux.seccomp an engine would put into the container's config.json,
// as Docker does when it creates a container (the same code:
// github.com/moby/profiles/seccomp): archMap becomes this machine's
// architectures, and rules are kept or dropped by the container's bounding
// capabilities, this architecture and this kernel.
func ResolveProfile(data []byte, spec *specs.Spec) (*mseccomp.Seccomp, error) {
	_, data, err := parseProfile(data)
	if err != nil {
		return nil, err
	}
	if spec.Process == nil || spec.Process.Capabilities == nil {
		return nil, errors.New("resolving seccomp profile: config.json has no process.capabilities")
	}
	s, err := mseccomp.LoadProfile(string(data), spec)
	if err != nil {
		return nil, fmt.Errorf("resolving seccomp profile for config.json: %w", err)
	}
	return FromOCI(s), nil
}

// BundleConfig is an OCI config.json kept as parsed JSON, so that writing it back
// changes linux.seccomp and nothing else.
type BundleConfig struct {
	// Spec is the parsed config.
	Spec specs.Spec
	top  map[string]json.RawMessage
}

// ParseConfig parses an OCI bundle's config.json.
func ParseConfig(data []byte) (*BundleConfig, error) {
	c := &BundleConfig{}
	if err := json.Unmarshal(data, &c.top); err != nil {
		return nil, fmt.Errorf("parsing config.json: %w", err)
	}
	if _, ok := c.top["ociVersion"]; !ok {
		return nil, errors.New("parsing config.json: no ociVersion: not an OCI runtime config")
	}
	if err := json.Unmarshal(data, &c.Spec); err != nil {
		return nil, fmt.Errorf("parsing config.json: %w", err)
	}
	return c, nil
}

// Seccomp returns the config's linux.seccomp, nil when it has none.
func (c *BundleConfig) Seccomp() *specs.LinuxSeccomp {
	if c.Spec.Linux == nil {
		return nil
	}
	return c.Spec.Linux.Seccomp
}

// WithSeccomp returns the config, indented, with linux.seccomp set to s.
func (c *BundleConfig) WithSeccomp(s *specs.LinuxSeccomp) ([]byte, error) {
	linux := map[string]json.RawMessage{}
	if raw, ok := c.top["linux"]; ok {
		if err := json.Unmarshal(raw, &linux); err != nil {
			return nil, fmt.Errorf("config.json linux: %w", err)
		}
	}
	sec, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	linux["seccomp"] = sec
	top := make(map[string]json.RawMessage, len(c.top)+1)
	for k, v := range c.top {
		top[k] = v
	}
	if top["linux"], err = json.Marshal(linux); err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(top, "", "\t")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// ConfigNotes are remarks about a config.json that would make the README's
// `runc run` fail, for `seccomp-profile --config` to print.
func ConfigNotes(c *BundleConfig) []string {
	var notes []string
	if c.Spec.Process != nil && c.Spec.Process.Terminal {
		notes = append(notes, "process.terminal is true (runc spec's default): 'runc run' then needs a terminal on stdin, or --console-socket; "+
			"for a service or a script set it false: jq '.process.terminal = false' config.json")
	}
	return notes
}

// Describe summarises a profile for `vigil policy check`: its default, its
// rule count and, when it has one, its agent.
func Describe(p *mseccomp.Seccomp) string {
	var b strings.Builder
	fmt.Fprintf(&b, "defaultAction %s, %d rules", p.DefaultAction, len(p.Syscalls))
	n := 0
	for _, r := range p.Syscalls {
		if r.Action == specs.ActNotify {
			n += len(r.Names)
			if r.Name != "" {
				n++
			}
		}
	}
	if p.ListenerPath != "" {
		fmt.Fprintf(&b, ", %d syscalls sent to the agent at %s", n, p.ListenerPath)
		if p.ListenerMetadata != "" {
			fmt.Fprintf(&b, " (listenerMetadata %s)", p.ListenerMetadata)
		}
	}
	return b.String()
}

// Input is a file `seccomp-profile --base/--config` reads.
type Input struct {
	Name string
	Data []byte
}

// MergeRequest is what `vigil agent seccomp-profile --base/--config` asks.
type MergeRequest struct {
	PolicyName string
	Policy     *policy.Policy
	Options    ProfileOptions
	// Base is a seccomp profile, Config an OCI config.json; either may be
	// missing (empty Name), not both.
	Base, Config Input
	// Resolve, with Base and without Config, resolves Base for a container
	// whose bounding capabilities are Caps (on this architecture and
	// kernel) and returns a plain OCI linux.seccomp: for engines that read
	// profiles as OCI and ignore archMap, includes and excludes
	// (containerd's Kubernetes localhost/ profiles).
	Resolve bool
	Caps    []string
}

// MergeFiles merges the policy into r.Base (a seccomp profile), into
// r.Config's linux.seccomp, or into r.Base resolved for r.Config, writes
// what it changed to w and returns what to print: the merged profile in
// r.Base's format, plain OCI with r.Resolve, or the whole config.json.
func MergeFiles(w io.Writer, r MergeRequest) ([]byte, error) {
	var cfg *BundleConfig
	if r.Config.Name != "" {
		var err error
		if cfg, err = ParseConfig(r.Config.Data); err != nil {
			return nil, fmt.Errorf("%s: %w", r.Config.Name, err)
		}
	}
	if r.Resolve && (r.Base.Name == "" || cfg != nil) {
		return nil, errors.New("resolving for capabilities needs a base profile and no config.json (with a config.json, its capabilities are used)")
	}
	from, fromName, err := r.baseProfile(cfg)
	if err != nil {
		return nil, err
	}
	merged, err := r.mergeInto(w, from, fromName)
	if err != nil {
		return nil, err
	}
	return r.output(w, merged, cfg)
}

// baseProfile returns the profile to merge into and its name for messages:
// r.Base (resolved for cfg or r.Caps, as asked), else cfg's linux.seccomp,
// else nil.
func (r MergeRequest) baseProfile(cfg *BundleConfig) (*mseccomp.Seccomp, string, error) {
	switch {
	case r.Base.Name != "":
		return r.readBase(cfg)
	case cfg == nil:
		return nil, "", errors.New("merging: no base profile and no config.json")
	case cfg.Seccomp() != nil:
		return FromOCI(cfg.Seccomp()), r.Config.Name + " linux.seccomp", nil
	}
	return nil, "", nil
}

// readBase parses r.Base, resolved for cfg's container when there is a
// config.json, or for r.Caps with r.Resolve.
func (r MergeRequest) readBase(cfg *BundleConfig) (*mseccomp.Seccomp, string, error) {
	base := r.Base
	switch Sniff(base.Data) {
	case OCIConfig:
		return nil, "", fmt.Errorf("%s is an OCI config.json, not a seccomp profile: pass it with --config", base.Name)
	case OtherFile:
		return nil, "", fmt.Errorf("%s is not a seccomp profile (a JSON object with defaultAction)", base.Name)
	}
	switch {
	case cfg != nil:
		if cfg.Seccomp() != nil {
			return nil, "", fmt.Errorf("%s already has a linux.seccomp profile: merge into it with --config alone, or delete it to start from %s", r.Config.Name, base.Name)
		}
		from, err := ResolveProfile(base.Data, &cfg.Spec)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", base.Name, err)
		}
		return from, base.Name + " (resolved for " + r.Config.Name + ")", nil
	case r.Resolve:
		spec := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: r.Caps}}}
		from, err := ResolveProfile(base.Data, spec)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", base.Name, err)
		}
		caps := strings.Join(r.Caps, ",")
		if caps == "" {
			caps = "no capabilities"
		}
		return from, base.Name + " (resolved for " + caps + ")", nil
	}
	from, err := ParseProfile(base.Data)
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", base.Name, err)
	}
	return from, base.Name, nil
}

// mergeInto merges the policy into from and writes what changed to w; with
// no profile to keep (a config.json without seccomp) it returns vigil's
// own.
func (r MergeRequest) mergeInto(w io.Writer, from *mseccomp.Seccomp, fromName string) (*mseccomp.Seccomp, error) {
	if from == nil {
		prof, err := Profile(r.Policy, r.Options)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(w, "vigil: %s has no seccomp profile: adding vigil's own for %s (defaultAction SCMP_ACT_ALLOW)\n", r.Config.Name, r.PolicyName)
		return FromOCI(prof), nil
	}
	merged, changes, err := Merge(from, r.Policy, r.Options)
	if err != nil {
		return nil, fmt.Errorf("merging %s into %s: %w", r.PolicyName, fromName, err)
	}
	fmt.Fprintf(w, "vigil: merged %s into %s (defaultAction %s):\n", r.PolicyName, fromName, from.DefaultAction)
	for _, c := range changes {
		fmt.Fprintf(w, "  %s\n", c)
	}
	return merged, nil
}

// output formats merged as MergeFiles returns it: in the base's format,
// as plain OCI with r.Resolve, or inside cfg (whose notes go to w).
func (r MergeRequest) output(w io.Writer, merged *mseccomp.Seccomp, cfg *BundleConfig) ([]byte, error) {
	if cfg == nil && !r.Resolve {
		out, err := json.MarshalIndent(merged, "", "  ")
		return append(out, '\n'), err
	}
	oci, err := ToOCI(merged)
	if err != nil {
		return nil, err
	}
	if cfg == nil {
		out, err := json.MarshalIndent(oci, "", "  ")
		return append(out, '\n'), err
	}
	for _, n := range ConfigNotes(cfg) {
		fmt.Fprintf(w, "vigil: note: %s\n", n)
	}
	return cfg.WithSeccomp(oci)
}
