package agent

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/policy"
)

// DefaultPolicyFile is the file in the policy directory that applies when
// listenerMetadata names none; without it the embedded default applies.
const DefaultPolicyFile = "default.yaml"

// EmbeddedDefault is the source name of the embedded default policy.
const EmbeddedDefault = "embedded default"

// maxPolicyFile bounds a policy file read for a container.
const maxPolicyFile = 1 << 20

// Policies selects a container's policy. Files are read for every handoff,
// so an edited policy applies to the next container without a restart, and
// through an os.Root, so no name can leave the directory even by a symlink.
type Policies struct {
	// Dir is the policy directory; "" allows only the embedded default.
	Dir string
}

// Select returns the policy listenerMetadata selects and where it came
// from. Every policy is validated as `vigil policy check` does; an error
// refuses the container.
func (ps Policies) Select(meta string) (*policy.Policy, string, error) {
	m, err := ParseMetadata(meta)
	if err != nil {
		return nil, "", err
	}
	name := m.Policy
	if name == "" {
		if ps.Dir == "" {
			return policy.Default(), EmbeddedDefault, nil
		}
		p, src, err := ps.load(DefaultPolicyFile)
		if errors.Is(err, fs.ErrNotExist) {
			return policy.Default(), EmbeddedDefault, nil
		}
		return p, src, err
	}
	if ps.Dir == "" {
		return nil, "", fmt.Errorf("listenerMetadata selects policy %q but the agent runs without --policy-dir", name)
	}
	return ps.load(name)
}

func (ps Policies) load(name string) (*policy.Policy, string, error) {
	if err := CheckPolicyName(name); err != nil {
		return nil, "", err
	}
	src := filepath.Join(ps.Dir, name)
	root, err := os.OpenRoot(ps.Dir)
	if err != nil {
		return nil, src, fmt.Errorf("opening policy directory: %w", err)
	}
	defer root.Close()
	// A FIFO or device would block or stream forever: regular files only.
	if st, err := root.Stat(name); err == nil && !st.Mode().IsRegular() {
		return nil, src, fmt.Errorf("policy %s is not a regular file", src)
	}
	f, err := root.Open(name)
	if err != nil {
		return nil, src, fmt.Errorf("opening policy %s: %w", src, err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPolicyFile+1))
	if err != nil {
		return nil, src, fmt.Errorf("reading policy %s: %w", src, err)
	}
	if len(data) > maxPolicyFile {
		return nil, src, fmt.Errorf("policy %s is larger than %d bytes", src, maxPolicyFile)
	}
	p, err := policy.Parse(src, data)
	if err == nil {
		err = enforcer.Supported(p)
	}
	if err != nil {
		return nil, src, fmt.Errorf("invalid policy: %w", err)
	}
	return p, src, nil
}
