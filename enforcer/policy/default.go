package policy

import (
	_ "embed"
)

// defaultYAML is the policy `vigil run` applies without --policy. It lives in
// a file of its own because it is also user documentation.
//
//go:embed default.yaml
var defaultYAML string

// DefaultYAML returns the source of the embedded default policy (a copy, so
// callers may modify it), for `vigil policy default`-style printing.
func DefaultYAML() []byte { return []byte(defaultYAML) }

// Default returns the embedded default policy, parsed afresh so that callers
// cannot affect each other through the exported fields. It panics only if the
// embedded file is invalid, which TestDefaultPolicyParses rules out.
func Default() *Policy {
	p, err := Parse("default.yaml", []byte(defaultYAML))
	if err != nil {
		panic("policy: embedded default.yaml is invalid:\n" + err.Error())
	}
	return p
}
