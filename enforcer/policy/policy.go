// Package policy reads vigil's YAML policy (docs/design.md §5) and decides, for
// one trapped and already decoded syscall, which rule applies.
//
// Parsing is strict because a policy is a security boundary: an unknown key,
// syscall, flag or errno is an error with the file:line:col of the node, never
// a silently ignored line. Evaluation is on the hot path of the notify loop:
// rules are indexed by syscall number up front and Evaluate does not
// allocate.
//
// The package only matches; it never reads watchee memory. The caller decodes
// the arguments Needs asks for, resolves paths to the object in the watchee's
// view, and fills a Call.
package policy

import (
	"fmt"
	"net/netip"
	"os"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/sysinfo"
)

// Action is a verdict (docs/design.md §2).
type Action uint8

// Actions. The zero Action is invalid on purpose, so that a zero Decision can
// never be mistaken for allow.
const (
	ActionAllow   Action = iota + 1 // CONTINUE, bound to the vetted object
	ActionDeny                      // answer -errno
	ActionKill                      // SIGKILL the thread group
	ActionEmulate                   // perform the call from the supervisor's copy of the arguments
	ActionLog                       // allow, and audit at info level
)

var actionNames = [...]string{
	ActionAllow:   "allow",
	ActionDeny:    "deny",
	ActionKill:    "kill",
	ActionEmulate: "emulate",
	ActionLog:     "log",
}

// String returns the word a policy spells the action with.
func (a Action) String() string {
	if int(a) < len(actionNames) && actionNames[a] != "" {
		return actionNames[a]
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// MarshalText makes an Action encode as its YAML word in JSON audit records.
func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// Rule is one entry of a policy's rules list.
type Rule struct {
	// Index is the rule's position in Policy.Rules (0-based).
	Index int
	// Name is the optional name given in the policy; see String for the
	// label audit records should use.
	Name string
	// Syscalls are the syscall names the rule applies to, as written.
	Syscalls []string
	// Action is the verdict when the rule matches.
	Action Action
	// Errno is the error a deny answers with (EPERM unless the rule names
	// one); 0 for every other action.
	Errno unix.Errno
	// Pos is where the rule starts in the policy file.
	Pos Position
	// label is "rules[N]" for unnamed rules, set by Parse.
	label string

	m matcher
}

// String returns the rule's name, or "rules[N]" for an unnamed rule, so audit
// records always identify the rule.
func (r *Rule) String() string {
	if r.Name != "" {
		return r.Name
	}
	// Audit records name the rule of every decision: Parse formats the
	// label once.
	if r.label == "" {
		return fmt.Sprintf("rules[%d]", r.Index)
	}
	return r.label
}

// Keys returns the match keys the rule tests; 0 for a rule without match.
func (r *Rule) Keys() sysinfo.Key { return r.m.keys }

// matcher is a rule's compiled match clause. A nil field is an absent key;
// every present key must hold, and within a list any entry may.
type matcher struct {
	keys    sysinfo.Key
	paths   []glob
	flags   *flagCond
	resolve *flagCond
	addrs   []addrPattern
	devs    []devPattern
	xattrs  []wildcard
}

// Policy is a parsed, validated policy. Treat it as immutable: the index
// Evaluate uses is built by Parse.
type Policy struct {
	// Version is the format version (1).
	Version int
	// Default is the verdict for a trapped syscall that matches no rule:
	// ActionAllow, ActionDeny or ActionKill.
	Default Action
	// Rules are the rules in file order; the first match wins.
	Rules []*Rule
	// File is the name positions refer to.
	File string

	byNr     []nrIndex // indexed by syscall number
	syscalls []string  // sorted unique
}

// nrIndex is everything Evaluate needs for one syscall number.
type nrIndex struct {
	// rules name this syscall, in order, cut after the first rule without
	// match: nothing after it can ever be reached for this syscall.
	rules     []*Rule
	needs     sysinfo.Key
	flagMask  uint64 // applied to Call.Flags (clone(2) register semantics)
	isConnect bool
}

// Decision is the outcome of Evaluate.
type Decision struct {
	// Rule is the matching rule, nil when the policy default applied.
	Rule *Rule
	// Action is the verdict.
	Action Action
	// Errno is what a deny answers with (EPERM unless the rule says);
	// 0 when Action is not ActionDeny.
	Errno unix.Errno
}

// Call is one trapped syscall, decoded and resolved by the caller. Only the
// fields for the keys Needs returns have to be filled; a key whose data the
// Call lacks (HasX false, Path "") never holds, so callers must decode what
// Needs asks for and deny when they cannot (docs/design.md §2: fail closed).
type Call struct {
	// Nr is the x86_64 syscall number.
	Nr int
	// Path is the resolved absolute, clean path of the object the call
	// operates on (for fsetxattr, the fd's path); "" if none.
	Path string
	// Path2 is the resolved second path: the rename or link destination.
	Path2 string
	// Flags are the open flags (creat: O_CREAT|O_WRONLY|O_TRUNC; openat2:
	// open_how.flags) or clone flags (clone: the register as is, clone3:
	// clone_args.flags); HasFlags says they were decoded.
	Flags    uint64
	HasFlags bool
	// Resolve is openat2's open_how.resolve. It comes from the same struct
	// as Flags, so it is read only when HasFlags is set.
	Resolve uint64
	// Addr is the socket address of connect/bind; HasAddr says it was
	// decoded.
	Addr    Sockaddr
	HasAddr bool
	// Dev is the device mknod would create; HasDev says it was decoded.
	Dev    Dev
	HasDev bool
	// Xattr is the extended attribute name; HasXattr says it was decoded.
	Xattr    string
	HasXattr bool
}

// Sockaddr is a decoded struct sockaddr.
type Sockaddr struct {
	// Family is unix.AF_INET, unix.AF_INET6 or unix.AF_UNIX; other families
	// match no addr pattern.
	Family uint16
	// IP is the address for AF_INET and AF_INET6 (an IPv4-mapped address is
	// matched as IPv4).
	IP netip.Addr
	// Port is in host byte order.
	Port uint16
	// UnixPath is, for AF_UNIX, the resolved absolute path of a pathname
	// socket, or the name of an abstract socket without its leading NUL.
	UnixPath string
	// Abstract says UnixPath is an abstract name.
	Abstract bool
}

// Dev is the device of a mknod call.
type Dev struct {
	// Kind is DevChar, DevBlock, or DevOther for a fifo, socket or regular
	// file (which no dev pattern matches).
	Kind DevKind
	// Major and Minor are the device numbers.
	Major, Minor uint32
}

// Load reads and parses a policy file. Parse errors are an ErrorList; a read
// error is returned wrapped.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading policy: %w", err)
	}
	return Parse(path, data)
}

// Syscalls returns the sorted, unique names of every syscall some rule names:
// exactly the set the seccomp filter must trap (a syscall no rule names is
// never trapped, so the default applies only to these).
func (p *Policy) Syscalls() []string { return slices.Clone(p.syscalls) }

func (p *Policy) entry(nr int) *nrIndex {
	if nr < 0 || nr >= len(p.byNr) {
		return nil
	}
	return &p.byNr[nr]
}

// Needs returns the match keys of the rules that can be reached for syscall
// nr, so the caller decodes and resolves only those arguments. It is 0 for a
// syscall no rule names, or whose first rule has no match clause.
func (p *Policy) Needs(nr int) sysinfo.Key {
	if e := p.entry(nr); e != nil {
		return e.needs
	}
	return 0
}

// Names reports whether some rule names syscall nr.
func (p *Policy) Names(nr int) bool {
	e := p.entry(nr)
	return e != nil && len(e.rules) > 0
}

// ContentDependent reports whether the verdict for syscall nr may depend on
// its arguments: true unless the first rule naming nr has no match clause.
// When it is false the caller may CONTINUE without a binding (docs/design.md §2,
// verified "none"). A syscall no rule names is not trapped and reports false.
func (p *Policy) ContentDependent(nr int) bool {
	e := p.entry(nr)
	return e != nil && len(e.rules) > 0 && e.rules[0].m.keys != 0
}

// Evaluate returns the verdict for one call: the first rule naming c.Nr whose
// match holds, or the policy default. It does not allocate.
func (p *Policy) Evaluate(c *Call) Decision {
	if e := p.entry(c.Nr); e != nil {
		for _, r := range e.rules {
			if r.m.matches(c, e) {
				return Decision{Rule: r, Action: r.Action, Errno: r.Errno}
			}
		}
	}
	d := Decision{Action: p.Default}
	if d.Action == ActionDeny {
		d.Errno = unix.EPERM
	}
	return d
}

func (m *matcher) matches(c *Call, e *nrIndex) bool {
	if m.keys == 0 {
		return true
	}
	// Cheapest tests first: a flags word rules out most calls of a rule
	// like system-binaries-readonly before any glob runs.
	if m.flags != nil && (!c.HasFlags || !m.flags.holds(c.Flags&e.flagMask)) {
		return false
	}
	if m.resolve != nil && (!c.HasFlags || !m.resolve.holds(c.Resolve)) {
		return false
	}
	if m.devs != nil {
		if !c.HasDev {
			return false
		}
		ok := false
		for i := range m.devs {
			if m.devs[i].match(&c.Dev) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if m.xattrs != nil {
		if !c.HasXattr {
			return false
		}
		ok := false
		for i := range m.xattrs {
			if m.xattrs[i].match(c.Xattr) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if m.addrs != nil {
		if !c.HasAddr {
			return false
		}
		var ip netip.Addr
		if c.Addr.Family == unix.AF_INET || c.Addr.Family == unix.AF_INET6 {
			ip = callIP(c.Addr.IP, e.isConnect)
		}
		ok := false
		for i := range m.addrs {
			if m.addrs[i].match(&c.Addr, ip) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if m.paths != nil && !anyGlob(m.paths, c.Path, c.Path2) {
		return false
	}
	return true
}

// anyGlob reports whether a glob matches either path; "" never matches.
func anyGlob(gs []glob, p1, p2 string) bool {
	for i := range gs {
		if gs[i].match(p1) || gs[i].match(p2) {
			return true
		}
	}
	return false
}

// build indexes the rules by syscall number once validation succeeded.
func (p *Policy) build() {
	maxNr := -1
	seen := map[string]bool{}
	for _, r := range p.Rules {
		for _, name := range r.Syscalls {
			nr, _ := sysinfo.Number(name)
			maxNr = max(maxNr, nr)
			if !seen[name] {
				seen[name] = true
				p.syscalls = append(p.syscalls, name)
			}
		}
	}
	slices.Sort(p.syscalls)
	p.byNr = make([]nrIndex, maxNr+1)
	for i := range p.byNr {
		p.byNr[i].flagMask = ^uint64(0)
	}
	if nr, ok := sysinfo.Number("clone"); ok && nr < len(p.byNr) {
		p.byNr[nr].flagMask = cloneRegisterMask
	}
	// A send that names its peer reaches 0.0.0.0 or :: as loopback too.
	for _, name := range []string{"connect", "sendto", "sendmsg", "sendmmsg"} {
		if nr, ok := sysinfo.Number(name); ok && nr < len(p.byNr) {
			p.byNr[nr].isConnect = true
		}
	}
	closed := make([]bool, len(p.byNr)) // a rule without match was seen
	for _, r := range p.Rules {
		for _, name := range r.Syscalls {
			nr, _ := sysinfo.Number(name)
			if closed[nr] {
				continue
			}
			e := &p.byNr[nr]
			e.rules = append(e.rules, r)
			e.needs |= r.m.keys
			closed[nr] = r.m.keys == 0
		}
	}
}
