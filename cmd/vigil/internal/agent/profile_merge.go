package agent

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	mseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/args"
	"github.com/vigilsec/vigil/enforcer/filter"
	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
)

// A seccomp profile, as Docker, Podman, containerd, CRI-O and Kubernetes'
// localhost/ profiles read it, is an OCI linux.seccomp object plus archMap
// and per-rule includes/excludes (capabilities, architectures, minimum
// kernel) that the engine resolves when it creates a container. Merge works
// on that superset, so one function serves both the engines' profiles and
// config.json's linux.seccomp.
//
// Merge keeps every restriction of the base by changing only actions, never
// conditions:
//
//   - a rule that allows (SCMP_ACT_ALLOW or SCMP_ACT_LOG) a syscall the
//     policy traps is copied with SCMP_ACT_NOTIFY and the same args and
//     includes/excludes, so the agent sees exactly the calls the base let
//     through, and vigil's answer can only narrow them;
//   - a call the base denies (its rules or its defaultAction) stays denied
//     in the kernel and never reaches the agent;
//   - vigil's hardening (filter.HardeningRules) removes its syscalls from the
//     allowing rules, and adds an SCMP_ACT_ERRNO rule only where the base's
//     default would have allowed them: where the base already denies, its
//     action (perhaps a kill) stays.
//
// What Merge cannot do without weakening the base or relying on how
// libseccomp orders an unconditional rule against conditional ones for the
// same syscall, it refuses with a message naming the rule.

// Merge returns base with p's syscalls sent to the agent and vigil's
// hardening added, and says what it changed. base is not modified.
func Merge(base *mseccomp.Seccomp, p *policy.Policy, o ProfileOptions) (*mseccomp.Seccomp, []Change, error) {
	if o.Socket == "" {
		return nil, nil, fmt.Errorf("generating seccomp profile: no listener socket")
	}
	if err := FatalFindings(CheckOCI(p)); err != nil {
		return nil, nil, err
	}
	out, err := cloneProfile(base)
	if err != nil {
		return nil, nil, err
	}
	if out.DefaultAction == "" {
		return nil, nil, fmt.Errorf("the base profile has no defaultAction")
	}
	m, err := newMerger(out, p, o.NoHardening)
	if err != nil {
		return nil, nil, err
	}
	m.rewriteAllowingRules()
	m.notifyTrapped()
	m.notifyDestinations()
	m.addHardening()
	if len(m.conflicts) > 0 {
		return nil, nil, fmt.Errorf("cannot merge the policy into the base profile without weakening it:\n  %s", strings.Join(m.conflicts, "\n  "))
	}
	m.addFlags(o.Flags, len(base.Flags) > 0)
	m.setListener(o)
	return out, m.changes, nil
}

// Change is one thing Merge did, for the summary `seccomp-profile --base`
// prints on stderr.
type Change struct {
	// Kind is notify, keep, harden or listener.
	Kind     string
	Syscalls []string
	What     string
}

// String formats c as "kind  syscalls: what".
func (c Change) String() string {
	if len(c.Syscalls) == 0 {
		return fmt.Sprintf("%-8s %s", c.Kind, c.What)
	}
	return fmt.Sprintf("%-8s %s: %s", c.Kind, strings.Join(c.Syscalls, ", "), c.What)
}

// A merger rewrites one profile, out, in steps that Merge runs in order,
// and collects what each changed and what it could not merge.
type merger struct {
	out           *mseccomp.Seccomp
	defPermissive bool
	defAction     specs.LinuxSeccompAction

	// trapped are the syscalls the policy sends to the agent whole;
	// addrOnly also holds the sends that connect's address rules govern
	// (enforcer/send.go): sendmsg and sendmmsg whole, sendto only with a
	// destination (its fifth argument). isAddrOnly leaves out those trapped
	// whole.
	trapped, addrOnly     []string
	isTrapped, isAddrOnly map[string]bool
	// flagsOnly maps clone to the flag bits its rules test when calls
	// without them get a plain allow (enforcer.Plan.FlagsOnly): under a
	// permissive default only calls with one of them go to the agent.
	flagsOnly map[string]uint64
	// hardening is vigil's hardening for the syscalls the policy does not
	// trap, sorted by syscall.
	hardening  []filter.Hardening
	isHardened map[string]bool

	removed      map[string][]int // hardened syscall -> allowing rules it left
	seccompSplit bool             // an allowing rule now allows seccomp only without a nested listener

	changes   []Change
	conflicts []string
}

// newMerger checks the base out and indexes what p traps and what vigil's
// hardening covers.
func newMerger(out *mseccomp.Seccomp, p *policy.Policy, noHardening bool) (*merger, error) {
	m := &merger{
		out:           out,
		defPermissive: classOf(out.DefaultAction) == permissive,
		defAction:     out.DefaultAction,
		removed:       map[string][]int{},
	}
	if err := m.check(out); err != nil {
		return nil, err
	}
	pl, err := enforcer.NewPlan(p, false)
	if err != nil {
		return nil, err
	}
	m.trapped, m.addrOnly = pl.TrappedNames()
	m.flagsOnly = map[string]uint64{}
	for nr, mask := range pl.FlagsOnly {
		m.flagsOnly[sysinfo.Name(nr)] = mask
	}
	// The calls that move, unmount or create mounts reach the agent too,
	// wherever the base lets them through, as `vigil run`'s own filter has
	// them (filter.MountWatch): path rules name objects in the container's
	// view at its handoff, and a container that may mount could otherwise
	// move a protected file's mount elsewhere and read it there unseen.
	for _, name := range filter.MountWatch {
		if !slices.Contains(m.trapped, name) {
			m.trapped = append(m.trapped, name)
		}
	}
	sort.Strings(m.trapped)
	m.isTrapped = setOf(m.trapped)
	m.isAddrOnly = map[string]bool{}
	for _, s := range m.addrOnly {
		if !m.isTrapped[s] {
			m.isAddrOnly[s] = true
		}
	}
	if !noHardening {
		m.hardening = hardeningBesides(m.isTrapped)
	}
	m.isHardened = map[string]bool{}
	for _, h := range m.hardening {
		m.isHardened[h.Syscall] = true
	}
	return m, nil
}

// hardeningBesides is vigil's hardening for the syscalls not in trapped,
// sorted by syscall. The policy decides a syscall it traps (as
// filter.Compile does): two actions for one syscall would make libseccomp
// refuse the profile.
func hardeningBesides(trapped map[string]bool) []filter.Hardening {
	var hardening []filter.Hardening
	for _, h := range filter.HardeningRules() {
		if !trapped[h.Syscall] {
			hardening = append(hardening, h)
		}
	}
	sort.Slice(hardening, func(i, j int) bool { return hardening[i].Syscall < hardening[j].Syscall })
	return hardening
}

func setOf(names []string) map[string]bool {
	set := make(map[string]bool, len(names))
	for _, s := range names {
		set[s] = true
	}
	return set
}

func (m *merger) note(kind string, syscalls []string, what string) {
	m.changes = append(m.changes, Change{Kind: kind, Syscalls: syscalls, What: what})
}

func (m *merger) conflict(msg string) { m.conflicts = append(m.conflicts, msg) }

// rewriteAllowingRules rewrites the base's allowing rules in place; the
// others stay as they are.
func (m *merger) rewriteAllowingRules() {
	var rules []*mseccomp.Syscall
	for i, r := range m.out.Syscalls {
		if classOf(r.Action) != permissive {
			rules = append(rules, r)
			continue
		}
		rules = append(rules, m.rewriteAllowing(i, r)...)
	}
	m.out.Syscalls = rules
}

// allowingSplit is where the syscalls of one allowing rule go.
type allowingSplit struct {
	keep   []string // stay in the rule as they were
	notify []string // go to the agent under the rule's conditions
	// seccomp and sends replace the rule for seccomp and for a send that
	// connect's address rules govern.
	seccomp, sends []*mseccomp.Syscall
}

// rewriteAllowing returns the rules that replace syscalls[i], r, which
// allows: r for the syscalls vigil leaves alone, the split rules for
// seccomp and the sends, and a SCMP_ACT_NOTIFY copy of r for the trapped
// syscalls.
func (m *merger) rewriteAllowing(i int, r *mseccomp.Syscall) []*mseccomp.Syscall {
	var s allowingSplit
	for _, name := range r.Names {
		m.place(&s, i, r, name)
	}
	var rules []*mseccomp.Syscall
	if len(s.keep) > 0 {
		r.Names = s.keep
		rules = append(rules, r)
	}
	rules = append(rules, s.seccomp...)
	rules = append(rules, s.sends...)
	// Under a permissive default the trapped syscalls go to the agent
	// anyway: notifyTrapped adds the unconditional rule for them.
	if len(s.notify) > 0 && !m.defPermissive {
		c := *r
		c.Names, c.Action, c.ErrnoRet = s.notify, specs.ActNotify, nil
		c.Comment = "vigil: sent to the agent; was " + string(r.Action)
		rules = append(rules, &c)
		m.note("notify", s.notify, fmt.Sprintf("syscalls[%d] (%s%s) is now SCMP_ACT_NOTIFY with the same conditions: the agent sees exactly the calls the base allowed", i, r.Action, describeConditions(r)))
	}
	return rules
}

// place decides where name, one of the syscalls r (syscalls[i]) allows,
// goes.
func (m *merger) place(s *allowingSplit, i int, r *mseccomp.Syscall, name string) {
	switch {
	case m.isTrapped[name]:
		s.notify = append(s.notify, name)
	case m.isAddrOnly[name] && m.defPermissive:
		// The default allows it; notifyDestinations adds the rule.
	case m.isAddrOnly[name]:
		copies, err := destinationSplit(r, name)
		if err != nil {
			m.conflict(fmt.Sprintf("%s: syscalls[%d] allows it with a condition on its destination argument, where vigil needs its own", name, i))
			s.keep = append(s.keep, name)
			return
		}
		s.sends = append(s.sends, copies...)
		m.note("notify", []string{name}, fmt.Sprintf("syscalls[%d] (%s%s) now sends calls with a destination address to the agent (SCMP_ACT_NOTIFY, same conditions), and allows the others as before",
			i, r.Action, describeConditions(r)))
	case m.isHardened[name] && name == "seccomp" && !m.defPermissive:
		copies, err := seccompComplement(r)
		if err != nil {
			m.conflict(fmt.Sprintf("seccomp: syscalls[%d] allows it with conditions on its first two arguments, where vigil's hardening needs its own", i))
			s.keep = append(s.keep, name)
			return
		}
		s.seccomp = append(s.seccomp, copies...)
		m.seccompSplit = true
		m.note("harden", []string{"seccomp"}, fmt.Sprintf("syscalls[%d] (%s) now allows it only without SECCOMP_SET_MODE_FILTER + SECCOMP_FILTER_FLAG_NEW_LISTENER (two rules with the same conditions); the defaultAction (%s) denies the rest", i, r.Action, m.defAction))
	case m.isHardened[name]:
		m.removed[name] = append(m.removed[name], i)
	default:
		s.keep = append(s.keep, name)
	}
}

// rulesNaming are the rules of the profile that name one syscall, by how
// they treat it.
type rulesNaming struct {
	uncond, cond, notify []*mseccomp.Syscall
}

func (m *merger) rulesNaming(name string) rulesNaming {
	var rs rulesNaming
	for _, r := range m.out.Syscalls {
		if !slices.Contains(r.Names, name) {
			continue
		}
		switch {
		case r.Action == specs.ActNotify:
			rs.notify = append(rs.notify, r)
		case conditional(r):
			rs.cond = append(rs.cond, r)
		default:
			rs.uncond = append(rs.uncond, r)
		}
	}
	return rs
}

// notifyTrapped handles the syscalls the policy traps whole that the base
// does not (only) allow in a rule: under a permissive default one
// unconditional SCMP_ACT_NOTIFY rule takes them all.
func (m *merger) notifyTrapped() {
	var tail []string
	for _, s := range m.trapped {
		rs := m.rulesNaming(s)
		notified := len(rs.notify) > 0
		switch {
		case len(rs.uncond) > 0 && !notified:
			m.note("keep", []string{s}, fmt.Sprintf("denied by the base (%s) for every call: vigil never sees it", rs.uncond[0].Action))
		case m.defPermissive && len(rs.cond) > 0:
			m.conflict(fmt.Sprintf("%s: the base restricts it only for some calls (%s%s) under defaultAction %s; vigil would have to trap the others with an unconditional rule, which libseccomp may let override the base's rule. Drop %s from the policy, or make the base's rule unconditional",
				s, rs.cond[0].Action, describeConditions(rs.cond[0]), m.defAction, s))
		case m.defPermissive && m.flagsOnly[s] != 0:
			m.out.Syscalls = append(m.out.Syscalls, flagRules(s, m.flagsOnly[s])...)
			m.note("notify", []string{s}, fmt.Sprintf("calls with one of the flags its rules test (%s): SCMP_ACT_NOTIFY rules added; the others get the policy's allow natively",
				args.FormatCloneFlags(m.flagsOnly[s])))
		case m.defPermissive:
			tail = append(tail, s)
		case !notified:
			m.note("keep", []string{s}, fmt.Sprintf("the base never allows it (defaultAction %s%s): vigil never sees it", m.defAction, alsoConditional(rs.cond)))
		}
	}
	if len(tail) > 0 {
		m.out.Syscalls = append(m.out.Syscalls, &mseccomp.Syscall{LinuxSyscall: specs.LinuxSyscall{Names: tail, Action: specs.ActNotify}})
		m.note("notify", tail, "allowed by the base's defaultAction: SCMP_ACT_NOTIFY rule added")
	}
}

// notifyDestinations does the same for the sends that connect's address
// rules govern: under a permissive default, a SCMP_ACT_NOTIFY rule for the
// calls with a destination address.
func (m *merger) notifyDestinations() {
	for _, name := range m.addrOnly {
		if !m.isAddrOnly[name] {
			continue
		}
		rs := m.rulesNaming(name)
		switch {
		case len(rs.uncond) > 0 && len(rs.notify) == 0:
			m.note("keep", []string{name}, fmt.Sprintf("denied by the base (%s) for every call: vigil never sees it", rs.uncond[0].Action))
		case m.defPermissive && len(rs.cond) > 0:
			m.conflict(fmt.Sprintf("%s: the base restricts it only for some calls (%s%s) under defaultAction %s; vigil would have to trap the calls with a destination beside it, whose order libseccomp decides",
				name, rs.cond[0].Action, describeConditions(rs.cond[0]), m.defAction))
		case m.defPermissive:
			m.out.Syscalls = append(m.out.Syscalls, &mseccomp.Syscall{LinuxSyscall: specs.LinuxSyscall{Names: []string{name}, Action: specs.ActNotify,
				Args: []specs.LinuxSeccompArg{destinationArg(specs.OpNotEqual)}}})
			m.note("notify", []string{name}, "calls with a destination address: SCMP_ACT_NOTIFY rule added (connect's address rules govern them)")
		case len(rs.notify) == 0:
			m.note("keep", []string{name}, fmt.Sprintf("the base never allows it (defaultAction %s%s): vigil never sees it", m.defAction, alsoConditional(rs.cond)))
		}
	}
}

// addHardening adds vigil's hardening where the base's default would
// allow; under a restrictive default rewriteAllowingRules has already taken
// the hardened syscalls out of the allowing rules, and this says so.
func (m *merger) addHardening() {
	for _, h := range m.hardening {
		if m.defPermissive {
			m.addHardeningRule(h)
			continue
		}
		if idx := m.removed[h.Syscall]; len(idx) > 0 {
			m.note("harden", []string{h.Syscall}, fmt.Sprintf("removed from the allowing rule%s %s: the defaultAction (%s) now denies it", plural(len(idx)), indexList(idx), m.defAction))
		} else if !(h.Syscall == "seccomp" && m.seccompSplit) {
			m.note("keep", []string{h.Syscall}, "the base never allows it: vigil's hardening adds nothing")
		}
	}
}

// addHardeningRule adds h's SCMP_ACT_ERRNO rule unless the base already
// denies the syscall for every call, or restricts it for some calls in a
// way the rule would overlap.
func (m *merger) addHardeningRule(h filter.Hardening) {
	rule := hardeningRule(h)
	var uncond, other []*mseccomp.Syscall
	for _, r := range m.out.Syscalls {
		if !slices.Contains(r.Names, h.Syscall) {
			continue
		}
		if conditional(r) {
			if !(r.Action == rule.Action && sameErrno(r.ErrnoRet, rule.ErrnoRet) && len(rule.Args) > 0) {
				other = append(other, r)
			}
		} else {
			uncond = append(uncond, r)
		}
	}
	switch {
	case len(uncond) > 0:
		m.note("keep", []string{h.Syscall}, fmt.Sprintf("already denied by the base (%s); vigil's hardening adds nothing", uncond[0].Action))
	case len(other) > 0:
		m.conflict(fmt.Sprintf("%s: the base restricts it for some calls (%s%s); vigil's hardening rule (%s) would overlap it. Add --no-hardening, or make the base's rule unconditional",
			h.Syscall, other[0].Action, describeConditions(other[0]), h.Why))
	default:
		m.out.Syscalls = append(m.out.Syscalls, rule)
		what := "SCMP_ACT_ERRNO (EPERM) rule added"
		if h.Syscall == "seccomp" {
			what = "SCMP_ACT_ERRNO (EPERM) rule added for SECCOMP_SET_MODE_FILTER + SECCOMP_FILTER_FLAG_NEW_LISTENER"
		}
		m.note("harden", []string{h.Syscall}, what)
	}
}

// addFlags adds the runtime's filter flags the profile lacks.
func (m *merger) addFlags(flags []specs.LinuxSeccompFlag, baseHadFlags bool) {
	var added []string
	for _, f := range flags {
		if !slices.Contains(m.out.Flags, f) {
			m.out.Flags = append(m.out.Flags, f)
			added = append(added, string(f))
		}
	}
	if len(added) > 0 && baseHadFlags {
		m.note("flags", added, "added to the base's flags for the runtime")
	} else if len(added) > 0 {
		m.note("flags", added, "set for the runtime (the base had none: the runtime's default)")
	}
}

// setListener names the agent's socket when a rule sends syscalls to it.
func (m *merger) setListener(o ProfileOptions) {
	hasNotify := slices.ContainsFunc(m.out.Syscalls, func(r *mseccomp.Syscall) bool { return r.Action == specs.ActNotify })
	if !hasNotify {
		m.note("listener", nil, "no syscall of the policy gets past the base: no listenerPath set, the agent is not involved")
		return
	}
	m.out.ListenerPath, m.out.ListenerMetadata = o.Socket, o.Metadata
	meta := ""
	if o.Metadata != "" {
		meta = ", listenerMetadata " + o.Metadata
	}
	m.note("listener", nil, "listenerPath "+o.Socket+meta)
}

// check refuses bases Merge cannot reason about.
func (m *merger) check(p *mseccomp.Seccomp) error {
	if p.DefaultAction == specs.ActNotify {
		return fmt.Errorf("the base profile's defaultAction is SCMP_ACT_NOTIFY: it already sends every syscall to a seccomp agent")
	}
	if p.ListenerPath != "" {
		return fmt.Errorf("the base profile already names a seccomp agent (listenerPath %s): merge into the profile it was made from", p.ListenerPath)
	}
	for i, r := range p.Syscalls {
		if r.Action == specs.ActNotify {
			return fmt.Errorf("syscalls[%d] of the base profile is SCMP_ACT_NOTIFY (%s): it already sends syscalls to a seccomp agent; merge into the profile it was made from", i, strings.Join(r.Names, ", "))
		}
		if classOf(r.Action) == unknownAction {
			return fmt.Errorf("syscalls[%d] of the base profile: unknown action %q", i, r.Action)
		}
	}
	if classOf(p.DefaultAction) == unknownAction {
		return fmt.Errorf("the base profile's defaultAction %q is unknown", p.DefaultAction)
	}
	return nil
}

type actionClass uint8

const (
	unknownAction actionClass = iota
	permissive
	restrictive
	notifying
)

// classOf sorts the actions runtimes accept into those that let a call
// run, those that stop it in the kernel, and the agent's.
func classOf(a specs.LinuxSeccompAction) actionClass {
	switch a {
	case specs.ActAllow, specs.ActLog:
		return permissive
	case specs.ActErrno, specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap, specs.ActTrace:
		// SCMP_ACT_TRACE fails the call with ENOSYS when no tracer is
		// attached; a tracer could let it run, but it is the base's
		// choice and Merge leaves it as it is.
		return restrictive
	case specs.ActNotify:
		return notifying
	}
	return unknownAction
}

// conditional reports whether r applies to only some calls or only some
// containers: libseccomp argument comparisons, or the engines' includes and
// excludes.
func conditional(r *mseccomp.Syscall) bool {
	return len(r.Args) > 0 || !emptyFilter(r.Includes) || !emptyFilter(r.Excludes)
}

func emptyFilter(f *mseccomp.Filter) bool {
	return f == nil || len(f.Caps) == 0 && len(f.Arches) == 0 && f.MinKernel == nil
}

func describeConditions(r *mseccomp.Syscall) string {
	var parts []string
	if len(r.Args) > 0 {
		parts = append(parts, fmt.Sprintf("%d argument condition%s", len(r.Args), plural(len(r.Args))))
	}
	if !emptyFilter(r.Includes) {
		parts = append(parts, "includes "+describeFilter(r.Includes))
	}
	if !emptyFilter(r.Excludes) {
		parts = append(parts, "excludes "+describeFilter(r.Excludes))
	}
	if len(parts) == 0 {
		return ""
	}
	return ", " + strings.Join(parts, ", ")
}

func describeFilter(f *mseccomp.Filter) string {
	var parts []string
	if len(f.Caps) > 0 {
		parts = append(parts, strings.Join(f.Caps, "+"))
	}
	if len(f.Arches) > 0 {
		parts = append(parts, "arches "+strings.Join(f.Arches, "/"))
	}
	if f.MinKernel != nil {
		parts = append(parts, "kernel >= "+f.MinKernel.String())
	}
	return strings.Join(parts, ", ")
}

func alsoConditional(cond []*mseccomp.Syscall) string {
	if len(cond) == 0 {
		return ""
	}
	return ", and " + string(cond[0].Action) + describeConditions(cond[0])
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

func indexList(idx []int) string {
	s := make([]string, len(idx))
	for i, n := range idx {
		s[i] = fmt.Sprintf("syscalls[%d]", n)
	}
	return strings.Join(s, ", ")
}

func sameErrno(a, b *uint) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// hardeningRule is h as a profile rule, as vigil's own filter has it
// (filter.addHardening): for seccomp only SECCOMP_SET_MODE_FILTER with
// SECCOMP_FILTER_FLAG_NEW_LISTENER, so containers may still restrict
// themselves further.
func hardeningRule(h filter.Hardening) *mseccomp.Syscall {
	errno := uint(h.Errno)
	r := &mseccomp.Syscall{LinuxSyscall: specs.LinuxSyscall{Names: []string{h.Syscall}, Action: specs.ActErrno, ErrnoRet: &errno}}
	if h.Syscall == "seccomp" {
		// Conditions on different arguments are ANDed; MASKED_EQ takes
		// the mask in value, the datum in valueTwo.
		r.Args = []specs.LinuxSeccompArg{
			{Index: 0, Value: unix.SECCOMP_SET_MODE_FILTER, Op: specs.OpEqualTo},
			{Index: 1, Value: unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, ValueTwo: unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, Op: specs.OpMaskedEqual},
		}
	}
	return r
}

// seccompComplement returns r for seccomp alone, split into the two rules
// that allow what r allowed except SECCOMP_SET_MODE_FILTER with
// SECCOMP_FILTER_FLAG_NEW_LISTENER: operation != SET_MODE_FILTER, or flags
// without NEW_LISTENER. It fails when r already compares those arguments
// (libseccomp takes one comparison per argument and rule).
func seccompComplement(r *mseccomp.Syscall) ([]*mseccomp.Syscall, error) {
	for _, a := range r.Args {
		if a.Index <= 1 {
			return nil, fmt.Errorf("argument %d already compared", a.Index)
		}
	}
	mk := func(arg specs.LinuxSeccompArg) *mseccomp.Syscall {
		c := *r
		c.Names = []string{"seccomp"}
		c.Args = append(append([]specs.LinuxSeccompArg(nil), r.Args...), arg)
		c.Comment = "vigil: seccomp allowed except a nested listener (SECCOMP_SET_MODE_FILTER + SECCOMP_FILTER_FLAG_NEW_LISTENER)"
		return &c
	}
	return []*mseccomp.Syscall{
		mk(specs.LinuxSeccompArg{Index: 0, Value: unix.SECCOMP_SET_MODE_FILTER, Op: specs.OpNotEqual}),
		mk(specs.LinuxSeccompArg{Index: 1, Value: unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, ValueTwo: 0, Op: specs.OpMaskedEqual}),
	}, nil
}

// sendtoDestArg is sendto's dest_addr: non-zero for a send with a
// destination address, which connect's address rules govern.
const sendtoDestArg = 4

// flagRules are the SCMP_ACT_NOTIFY rules for name (clone) that match a
// call whose first argument has a bit of mask set: one rule per bit, since
// a rule's conditions all must hold and rules are alternatives.
func flagRules(name string, mask uint64) []*mseccomp.Syscall {
	var rules []*mseccomp.Syscall
	for b := uint64(1); b != 0; b <<= 1 {
		if mask&b == 0 {
			continue
		}
		rules = append(rules, &mseccomp.Syscall{LinuxSyscall: specs.LinuxSyscall{Names: []string{name}, Action: specs.ActNotify,
			Args: []specs.LinuxSeccompArg{{Index: 0, Value: b, ValueTwo: b, Op: specs.OpMaskedEqual}}}})
	}
	return rules
}

func destinationArg(op specs.LinuxSeccompOperator) specs.LinuxSeccompArg {
	return specs.LinuxSeccompArg{Index: sendtoDestArg, Value: 0, Op: op}
}

// destinationSplit returns r for name alone, split into the rule that keeps
// r's action for sends without a destination and the SCMP_ACT_NOTIFY rule
// for those with one, both with r's conditions. It fails when r already
// compares the destination argument.
func destinationSplit(r *mseccomp.Syscall, name string) ([]*mseccomp.Syscall, error) {
	for _, a := range r.Args {
		if a.Index == sendtoDestArg {
			return nil, fmt.Errorf("argument %d already compared", a.Index)
		}
	}
	keep, notify := *r, *r
	keep.Names, notify.Names = []string{name}, []string{name}
	keep.Args = append(append([]specs.LinuxSeccompArg(nil), r.Args...), destinationArg(specs.OpEqualTo))
	notify.Args = append(append([]specs.LinuxSeccompArg(nil), r.Args...), destinationArg(specs.OpNotEqual))
	notify.Action, notify.ErrnoRet = specs.ActNotify, nil
	notify.Comment = "vigil: sends with a destination go to the agent; was " + string(r.Action)
	return []*mseccomp.Syscall{&keep, &notify}, nil
}

// cloneProfile deep-copies p and turns the legacy "name" into "names".
func cloneProfile(p *mseccomp.Seccomp) (*mseccomp.Seccomp, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("copying the base profile: %w", err)
	}
	var out mseccomp.Seccomp
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("copying the base profile: %w", err)
	}
	for i, r := range out.Syscalls {
		if r == nil {
			return nil, fmt.Errorf("syscalls[%d] of the base profile is null", i)
		}
		if r.Name != "" {
			if len(r.Names) > 0 {
				return nil, fmt.Errorf("syscalls[%d] of the base profile has both name and names", i)
			}
			r.Names, r.Name = []string{r.Name}, ""
		}
		if len(r.Names) == 0 {
			return nil, fmt.Errorf("syscalls[%d] of the base profile names no syscall", i)
		}
	}
	return &out, nil
}
