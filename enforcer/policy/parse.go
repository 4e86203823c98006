package policy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/sys/unix"
	"gopkg.in/yaml.v3"

	"github.com/vigilsec/vigil/enforcer/sysinfo"
)

// maxNodes bounds how many YAML nodes validation visits. Aliases let a small
// file reach the same node many times (a list of aliases to a rule with an
// aliased path list grows quadratically); real policies are far below this.
const maxNodes = 1 << 20

// Parse parses and validates a policy. file names the source in positions.
// A non-nil error is always an ErrorList holding every problem found.
func Parse(file string, data []byte) (pol *Policy, err error) {
	p := &parser{file: file, names: map[string]*yaml.Node{}}
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(tooLarge); !ok {
				panic(v) // a bug in this package: let tests and fuzzing see it
			}
			pol, err = nil, p.errs.sort()
		}
	}()
	root := p.document(data)
	if root == nil {
		return nil, p.errs.sort()
	}
	pol = p.policy(root)
	if len(p.errs) > 0 {
		return nil, p.errs.sort()
	}
	pol.build()
	return pol, nil
}

type parser struct {
	file  string
	errs  ErrorList
	nodes int
	names map[string]*yaml.Node // rule names seen, for duplicates
	data  []byte
	hints int // suggestions computed so far
}

// tooLarge aborts validation once maxNodes is exceeded.
type tooLarge struct{}

func (p *parser) pos(n *yaml.Node) Position { return Position{p.file, n.Line, n.Column} }

func (p *parser) errorf(n *yaml.Node, format string, args ...any) {
	p.errs = append(p.errs, &Error{Pos: p.pos(n), Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) errorAt(pos Position, format string, args ...any) {
	p.errs = append(p.errs, &Error{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// deref follows aliases and counts the visit against maxNodes.
func (p *parser) deref(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 16; i++ {
		n = n.Alias
	}
	p.nodes++
	if p.nodes > maxNodes {
		p.errorf(n, "policy expands to more than %d YAML nodes (through aliases?)", maxNodes)
		panic(tooLarge{})
	}
	return n
}

// document checks the raw bytes and the YAML syntax and returns the root
// node, or nil after recording why there is none.
func (p *parser) document(data []byte) *yaml.Node {
	p.data = data
	start := Position{p.file, 1, 1}
	if len(bytes.TrimSpace(data)) == 0 {
		p.errorAt(start, "empty policy (it needs at least \"version: 1\")")
		return nil
	}
	if !p.checkText(data) {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := decode(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorAt(start, "empty policy: only comments (it needs at least \"version: 1\")")
		} else {
			p.yamlError(err)
		}
		return nil
	}
	var next yaml.Node
	switch err := decode(dec, &next); {
	case errors.Is(err, io.EOF):
	case err != nil:
		p.yamlError(err)
		return nil
	default:
		p.errorf(&next, "a policy is one YAML document; remove the second one (---)")
		return nil
	}
	if len(doc.Content) != 1 {
		p.errorAt(start, "empty policy (it needs at least \"version: 1\")")
		return nil
	}
	root := p.deref(doc.Content[0])
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		p.errorf(root, "empty policy (it needs at least \"version: 1\")")
		return nil
	}
	return root
}

// decode runs the YAML parser, turning a panic inside it into an error:
// yaml.v3 re-panics anything that is not its own error, and a malformed
// policy must be reported, never crash the supervisor or `vigil agent`.
func decode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("yaml: parser failed: %v", v)
		}
	}()
	return dec.Decode(n)
}

// checkText rejects what YAML would reject without a position: invalid UTF-8
// and control characters (YAML 1.2 §5.1), and a NUL that would otherwise end
// up inside a path.
func (p *parser) checkText(data []byte) bool {
	line, col := 1, 1
	for i := 0; i < len(data); {
		r, n := utf8.DecodeRune(data[i:])
		bad := ""
		switch {
		case r == utf8.RuneError && n <= 1:
			bad = "invalid UTF-8 (a policy must be UTF-8 text)"
		case r == '\ufeff' && i == 0:
		case r == '\t' || r == '\n' || r == '\r' || r == 0x85:
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\ufeff' || r == 0xfffe || r == 0xffff:
			bad = fmt.Sprintf("character %U is not allowed in YAML (use an escape in a double-quoted string)", r)
		}
		if bad != "" {
			p.errorAt(Position{p.file, line, col}, "%s", bad)
			return false
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += n
	}
	return true
}

var (
	yamlLineRe   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	yamlAnchorRe = regexp.MustCompile(`^yaml: unknown anchor '(.*)' referenced$`)
)

// yamlParserProblems are the problems yaml.v3's parser (as opposed to its
// scanner) reports. For those it prints a 0-based line number (decode.go
// parser.fail adds 1 only for scanner errors), so they are corrected here.
var yamlParserProblems = []string{
	"did not find expected ',' or ']'",
	"did not find expected ',' or '}'",
	"did not find expected '-' indicator",
	"did not find expected <document start>",
	"did not find expected <stream-start>",
	"did not find expected key",
	"did not find expected node content",
	"found duplicate %TAG directive",
	"found duplicate %YAML directive",
	"found incompatible YAML document",
	"found undefined tag handle",
}

// yamlError converts a yaml.v3 syntax error into an Error. yaml.v3 reports a
// line at best, so Col stays 0 (unknown) unless the position can be found.
func (p *parser) yamlError(err error) {
	msg := err.Error()
	pos := Position{p.file, 1, 0}
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		pos.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if slices.Contains(yamlParserProblems, msg) {
			pos.Line++
		}
	} else if m := yamlAnchorRe.FindStringSubmatch(msg); m != nil {
		pos = p.find("*" + m[1])
		msg = fmt.Sprintf("alias *%s refers to no anchor (&%s) before it", m[1], m[1])
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	pos.Line = max(pos.Line, 1)
	p.errorAt(pos, "invalid YAML: %s", msg)
}

// find returns the position of the first occurrence of s in the source.
func (p *parser) find(s string) Position {
	i := bytes.Index(p.data, []byte(s))
	if i < 0 {
		return Position{p.file, 1, 0}
	}
	before := p.data[:i]
	line := bytes.Count(before, []byte("\n")) + 1
	col := utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:]) + 1
	return Position{p.file, line, col}
}

// describe names a node's type for "must be X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			return "nothing (null)"
		case "!!str":
			return "the string " + quote(n.Value)
		case "!!int", "!!float":
			return "the number " + clip(n.Value)
		case "!!bool":
			return "the boolean " + n.Value
		}
		return clip(n.ShortTag()) + " " + quote(n.Value)
	}
	return "an unexpected YAML node"
}

type field struct{ key, val *yaml.Node }

// fields checks that n is a mapping whose keys are all in allowed, each at
// most once, and returns the values by key.
func (p *parser) fields(n *yaml.Node, what string, allowed ...string) map[string]field {
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping, got %s", what, describe(n))
		return nil
	}
	out := map[string]field{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := p.deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "keys of %s must be plain words, got %s", what, describe(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			p.errorf(k, "merge keys (<<) are not supported; repeat the keys or alias a whole value")
			continue
		}
		if !slices.Contains(allowed, k.Value) {
			p.errorf(k, "unknown key %s in %s%s; valid keys: %s", quote(k.Value), what, p.suggest(k.Value, allowed), strings.Join(allowed, ", "))
			continue
		}
		if prev, dup := out[k.Value]; dup {
			p.errorf(k, "duplicate key %q in %s (first at %d:%d)", k.Value, what, prev.key.Line, prev.key.Column)
			continue
		}
		out[k.Value] = field{k, v}
	}
	return out
}

// str returns a string scalar.
func (p *parser) str(n *yaml.Node, what string) (string, bool) {
	n = p.deref(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		p.errorf(n, "%s must be a string, got %s", what, describe(n))
		return "", false
	}
	return n.Value, true
}

// list returns the items of a non-empty sequence, dereferenced.
func (p *parser) list(n *yaml.Node, what string) []*yaml.Node {
	n = p.deref(n)
	if n.Kind != yaml.SequenceNode {
		p.errorf(n, "%s must be a list, like [a, b], got %s", what, describe(n))
		return nil
	}
	if len(n.Content) == 0 {
		p.errorf(n, "%s must not be empty", what)
		return nil
	}
	out := make([]*yaml.Node, len(n.Content))
	for i, c := range n.Content {
		out[i] = p.deref(c)
	}
	return out
}

func (p *parser) policy(root *yaml.Node) *Policy {
	pol := &Policy{File: p.file, Default: ActionAllow}
	f := p.fields(root, "the policy", "version", "default", "rules")
	if f == nil {
		return pol
	}
	if v, ok := f["version"]; ok {
		n := p.deref(v.val)
		switch {
		case n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int":
			p.errorf(n, "version must be the number 1, got %s", describe(n))
		case n.Decode(&pol.Version) != nil || pol.Version != 1:
			p.errorf(n, "unsupported version %s (this vigil reads version 1)", clip(n.Value))
			pol.Version = 0
		}
	} else {
		p.errorf(root, "missing \"version: 1\"")
	}
	if v, ok := f["default"]; ok {
		if s, ok := p.str(v.val, "default"); ok {
			switch a := actionByName(s); a {
			case ActionAllow, ActionDeny, ActionKill:
				pol.Default = a
			case ActionEmulate, ActionLog:
				p.errorf(v.val, "default must be allow, deny or kill (%s needs a rule that names the syscalls)", s)
			default:
				p.errorf(v.val, "unknown default %s%s; want allow, deny or kill", quote(s), p.suggest(s, []string{"allow", "deny", "kill"}))
			}
		}
	}
	if v, ok := f["rules"]; ok {
		n := p.deref(v.val)
		switch {
		case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null":
			// "rules:" with nothing under it: no rules, nothing trapped.
		case n.Kind != yaml.SequenceNode:
			p.errorf(n, "rules must be a list of rules (each starting with -), got %s", describe(n))
		default:
			for i, c := range n.Content {
				if r := p.rule(i, p.deref(c)); r != nil {
					pol.Rules = append(pol.Rules, r)
				}
			}
		}
	}
	return pol
}

func actionByName(s string) Action {
	for a, name := range actionNames {
		if name != "" && name == s {
			return Action(a)
		}
	}
	return 0
}

var ruleKeys = []string{"name", "syscalls", "match", "action", "errno"}

func (p *parser) rule(i int, n *yaml.Node) *Rule {
	what := fmt.Sprintf("rules[%d]", i)
	f := p.fields(n, what, ruleKeys...)
	if f == nil {
		return nil
	}
	r := &Rule{Index: i, Pos: p.pos(n), label: fmt.Sprintf("rules[%d]", i)}
	if v, ok := f["name"]; ok {
		what = p.ruleName(r, v, what)
	}
	// Syscalls: the catalog entry of each, nil when vigil knows the name
	// but does not decode its arguments.
	var cat []*sysinfo.Syscall
	var scNodes []*yaml.Node
	if v, ok := f["syscalls"]; ok {
		cat, scNodes = p.ruleSyscalls(r, v)
	} else {
		p.errorf(n, "%s needs syscalls: [...]", what)
	}
	actionOK := false
	if v, ok := f["action"]; ok {
		actionOK = p.ruleAction(r, v)
	} else {
		p.errorf(n, "%s needs an action (allow, deny, kill, emulate or log)", what)
	}
	if r.Action == ActionDeny {
		r.Errno = unix.EPERM
	}
	if r.Action == ActionEmulate {
		for j, sc := range cat {
			if sc == nil {
				p.errorf(scNodes[j], "action emulate needs a syscall vigil decodes; %q is not one (decoded: %s)", r.Syscalls[j], strings.Join(sysinfo.Inspectable(), ", "))
			}
		}
	}
	if v, ok := f["errno"]; ok {
		p.ruleErrno(r, v, actionOK)
	}
	if v, ok := f["match"]; ok {
		for j, sc := range cat {
			if sc == nil {
				p.errorf(scNodes[j], "syscall %q cannot be matched on: vigil does not decode its arguments (give it a rule without match)", r.Syscalls[j])
			}
		}
		p.match(r, v.val, cat)
	}
	return r
}

// ruleName sets the rule's name, which must be unique, and returns how
// messages about the rule call it.
func (p *parser) ruleName(r *Rule, v field, what string) string {
	s, ok := p.str(v.val, "name")
	if !ok {
		return what
	}
	vn := p.deref(v.val)
	switch prev, dup := p.names[s]; {
	case s == "":
		p.errorf(vn, "empty rule name (remove name: or give one)")
	case dup:
		p.errorf(vn, "duplicate rule name %s (first at %d:%d): audit records could not tell the rules apart", quote(s), prev.Line, prev.Column)
	default:
		p.names[s] = vn
		r.Name = s
	}
	return "rule " + quote(s)
}

// ruleSyscalls sets the rule's syscalls, each known and listed once, and
// returns the catalog entry and node of each.
func (p *parser) ruleSyscalls(r *Rule, v field) (cat []*sysinfo.Syscall, nodes []*yaml.Node) {
	seen := map[string]bool{}
	for _, c := range p.list(v.val, "syscalls") {
		s, ok := p.str(c, "a syscall")
		if !ok {
			continue
		}
		if _, known := sysinfo.Number(s); !known {
			p.errorf(c, "unknown syscall %s%s", quote(s), p.suggest(s, syscallNames()))
			continue
		}
		if seen[s] {
			p.errorf(c, "syscall %q is listed twice", s)
			continue
		}
		seen[s] = true
		sc, _ := sysinfo.Lookup(s)
		r.Syscalls = append(r.Syscalls, s)
		cat = append(cat, sc)
		nodes = append(nodes, c)
	}
	return cat, nodes
}

// ruleAction sets the rule's action and reports whether it is a known one.
func (p *parser) ruleAction(r *Rule, v field) bool {
	s, ok := p.str(v.val, "action")
	if !ok {
		return false
	}
	if r.Action = actionByName(s); r.Action == 0 {
		p.errorf(v.val, "unknown action %s%s; want allow, deny, kill, emulate or log", quote(s), p.suggest(s, actionNames[1:]))
		return false
	}
	return true
}

// ruleErrno sets the errno of a deny rule; actionOK says whether the
// rule's action is known, so that a misplaced errno is reported only then.
func (p *parser) ruleErrno(r *Rule, v field, actionOK bool) {
	s, ok := p.str(v.val, "errno")
	if !ok {
		return
	}
	e, known := errnoByName[s]
	switch {
	case !known:
		p.errorf(v.val, "unknown errno %s%s", quote(s), p.suggestOr(s, errnoNames(), " (want a name like EACCES or EPERM)"))
	case actionOK && r.Action != ActionDeny:
		p.errorf(v.key, "errno applies only to action deny, not %s", r.Action)
	default:
		r.Errno = e
	}
}

var matchKeys = []sysinfo.Key{sysinfo.KeyPath, sysinfo.KeyFlags, sysinfo.KeyResolve, sysinfo.KeyAddr, sysinfo.KeyDev, sysinfo.KeyXattr}

func keyNames(k sysinfo.Key) []string {
	var out []string
	for _, m := range matchKeys {
		if k.Has(m) {
			out = append(out, m.String())
		}
	}
	return out
}

func (p *parser) match(r *Rule, n *yaml.Node, cat []*sysinfo.Syscall) {
	n = p.deref(n)
	f := p.fields(n, "match", keyNames(^sysinfo.Key(0))...)
	if f == nil {
		return
	}
	if len(f) == 0 && len(n.Content) == 0 {
		p.errorf(n, "empty match; remove it to match every call")
		return
	}
	m := &r.m
	for _, key := range matchKeys {
		v, ok := f[key.String()]
		if !ok {
			continue
		}
		m.keys |= key
		p.checkKeyApplies(key, v, cat)
		p.matchValue(m, key, v, cat)
	}
}

// checkKeyApplies reports the rule's syscalls that match key does not
// apply to.
func (p *parser) checkKeyApplies(key sysinfo.Key, v field, cat []*sysinfo.Syscall) {
	var bad []string
	for _, sc := range cat {
		if sc != nil && !sc.Keys.Has(key) {
			bad = append(bad, sc.Name)
		}
	}
	if len(bad) == 1 {
		sc, _ := sysinfo.Lookup(bad[0])
		p.errorf(v.key, "match key %q does not apply to %s (it takes %s)", key, bad[0], strings.Join(keyNames(sc.Keys), ", "))
	} else if len(bad) > 1 {
		p.errorf(v.key, "match key %q does not apply to %s; split the rule", key, strings.Join(bad, ", "))
	}
}

// matchValue parses the value of match key into m.
func (p *parser) matchValue(m *matcher, key sysinfo.Key, v field, cat []*sysinfo.Syscall) {
	switch key {
	case sysinfo.KeyPath:
		m.paths = parseItems(p, v.val, "path", "a path pattern", compileGlob)
	case sysinfo.KeyFlags:
		m.flags = p.flagCond(v, "flags", p.flagTable(v, cat))
	case sysinfo.KeyResolve:
		m.resolve = p.flagCond(v, "resolve", flagTable{resolveFlags, "RESOLVE_*", "openat2"})
	case sysinfo.KeyAddr:
		m.addrs = parseItems(p, v.val, "addr", "an address", parseAddr)
	case sysinfo.KeyDev:
		m.devs = parseItems(p, v.val, "dev", "a device", parseDev)
	case sysinfo.KeyXattr:
		m.xattrs = parseItems(p, v.val, "xattr", "an xattr name", parseXattr)
	}
}

// parseItems parses each string of list n (the value of key what; itemWhat
// names one item in messages) with parse, reporting the items it refuses
// and returning the others.
func parseItems[T any](p *parser, n *yaml.Node, what, itemWhat string, parse func(string) (T, error)) []T {
	var out []T
	for _, c := range p.list(n, what) {
		if s, ok := p.str(c, itemWhat); ok {
			x, err := parse(s)
			if err != nil {
				p.errorf(c, "%v", err)
				continue
			}
			out = append(out, x)
		}
	}
	return out
}

// flagTable is the set of names a flags or resolve key accepts.
type flagTable struct {
	names  map[string]flagPred
	family string // "O_*" for messages
	users  string // syscalls that take them, for messages
}

// flagTable picks the flag family of a rule's syscalls, reporting a rule
// that mixes open and clone syscalls. A zero table (names nil) means the
// family is unknown and names are not checked.
func (p *parser) flagTable(v field, cat []*sysinfo.Syscall) flagTable {
	var open, clone []string
	for _, sc := range cat {
		switch {
		case sc == nil || !sc.Keys.Has(sysinfo.KeyFlags):
		case sc.Flags == sysinfo.FlagsOpen:
			open = append(open, sc.Name)
		case sc.Flags == sysinfo.FlagsClone:
			clone = append(clone, sc.Name)
		}
	}
	switch {
	case len(open) > 0 && len(clone) > 0:
		p.errorf(v.key, "flags: the rule mixes syscalls taking O_* flags (%s) and CLONE_* flags (%s); split it", strings.Join(open, ", "), strings.Join(clone, ", "))
	case len(open) > 0:
		return flagTable{openFlags, "O_*", strings.Join(open, ", ")}
	case len(clone) > 0:
		return flagTable{cloneFlags, "CLONE_*", strings.Join(clone, ", ")}
	}
	return flagTable{}
}

var flagSubKeys = []string{"any", "all", "none"}

func (p *parser) flagCond(v field, what string, t flagTable) *flagCond {
	n := p.deref(v.val)
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping like {any: [...]}, with any, all and/or none lists; got %s", what, describe(n))
		return nil
	}
	f := p.fields(n, what, flagSubKeys...)
	if len(f) == 0 {
		if len(n.Content) == 0 {
			p.errorf(n, "%s needs at least one of any, all, none", what)
		}
		return nil
	}
	fc := &flagCond{}
	for _, sub := range flagSubKeys {
		sv, ok := f[sub]
		if !ok {
			continue
		}
		preds := []flagPred{}
		seen := map[string]bool{}
		for _, c := range p.list(sv.val, what+"."+sub) {
			s, ok := p.str(c, "a flag name")
			if !ok {
				continue
			}
			if seen[s] {
				p.errorf(c, "flag %s is listed twice", clip(s))
				continue
			}
			seen[s] = true
			if t.names == nil {
				// The family is unknown (the rule is already in error):
				// still catch names that are no flag at all.
				if _, ok := openFlags[s]; !ok {
					if _, ok := cloneFlags[s]; !ok {
						p.errorf(c, "unknown flag %s", quote(s))
					}
				}
				continue
			}
			pred, known := t.names[s]
			if !known {
				p.errorf(c, "%s", t.unknown(s, p.suggest(s, t.sortedNames())))
				continue
			}
			preds = append(preds, pred)
		}
		switch sub {
		case "any":
			fc.any = preds
		case "all":
			fc.all = preds
		case "none":
			fc.none = preds
		}
	}
	return fc
}

func (t flagTable) unknown(s, hint string) string {
	for _, other := range []flagTable{{openFlags, "O_*", "the open family"}, {cloneFlags, "CLONE_*", "clone and clone3"}, {resolveFlags, "RESOLVE_*", "openat2's resolve"}} {
		if _, ok := other.names[s]; ok && other.family != t.family {
			return fmt.Sprintf("%s is not one of the %s flags %s takes (it belongs to %s)", s, t.family, t.users, other.users)
		}
	}
	return fmt.Sprintf("unknown flag %s%s; %s takes %s", quote(s), hint, t.users, strings.Join(t.sortedNames(), ", "))
}

func (t flagTable) sortedNames() []string {
	names := make([]string, 0, len(t.names))
	for k := range t.names {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

// maxHints bounds the "did you mean" searches per Parse: each is a few
// hundred edit distances, and a hostile file can hold a million typos.
const maxHints = 100

func (p *parser) suggest(s string, candidates []string) string {
	if p.hints++; p.hints > maxHints {
		return ""
	}
	return suggest(s, candidates)
}

func (p *parser) suggestOr(s string, candidates []string, fallback string) string {
	if h := p.suggest(s, candidates); h != "" {
		return h
	}
	return fallback
}
