package agent

import (
	"errors"
	"fmt"
	"strings"
)

// ErrMetadata means listenerMetadata cannot be understood. The container is
// refused rather than given the default policy: a typo must not silently
// weaken its supervision.
var ErrMetadata = errors.New("bad listenerMetadata")

// maxMetadata bounds listenerMetadata; it is logged with every container.
const maxMetadata = 4096

// Metadata is a parsed listenerMetadata: `key=value` fields separated by
// commas or whitespace, e.g. "policy=web.yaml".
type Metadata struct {
	// Policy is the base name of a file in the policy directory, or "" for
	// the default.
	Policy string
}

// ParseMetadata parses listenerMetadata. The empty string selects the
// default policy. Unknown keys are errors for the same reason as typos.
func ParseMetadata(s string) (Metadata, error) {
	var m Metadata
	if s == "" {
		return m, nil
	}
	if err := checkLabel("listenerMetadata", s, maxMetadata); err != nil {
		return m, fmt.Errorf("%w: %v", ErrMetadata, err)
	}
	seen := false
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return Metadata{}, fmt.Errorf("%w: field %s is not key=value (want e.g. policy=web.yaml)", ErrMetadata, quoteClip(f))
		}
		switch k {
		case "policy":
			if seen {
				return Metadata{}, fmt.Errorf("%w: policy is given twice", ErrMetadata)
			}
			seen = true
			if err := CheckPolicyName(v); err != nil {
				return Metadata{}, err
			}
			m.Policy = v
		default:
			return Metadata{}, fmt.Errorf("%w: unknown key %s (vigil knows: policy)", ErrMetadata, quoteClip(k))
		}
	}
	return m, nil
}

// CheckPolicyName accepts only a plain file name: no directory part, no
// "..", no hidden files. listenerMetadata comes from the container's
// config.json, which is not necessarily written by whoever administers the
// agent's policy directory.
func CheckPolicyName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty policy name", ErrMetadata)
	case len(name) > 255:
		return fmt.Errorf("%w: policy name longer than 255 bytes", ErrMetadata)
	case strings.ContainsAny(name, "/\\\x00"):
		return fmt.Errorf("%w: policy name %s must be a file name in the policy directory, not a path", ErrMetadata, quoteClip(name))
	case name[0] == '.':
		return fmt.Errorf("%w: policy name %s may not start with a dot", ErrMetadata, quoteClip(name))
	}
	return nil
}
