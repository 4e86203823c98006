package enforcer

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/vigilsec/vigil/enforcer/filter"
	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/sysinfo"
)

// Plan is what a policy asks of vigil, computed once by NewPlan: which
// syscalls the filter traps and how, which of vigil's mechanisms must run,
// and for each trapped syscall how an allow that looked at its pointer
// arguments is carried out. The filter compiler (FilterSpec), the OCI
// profile generator (TrappedNames), the CLI wiring (Kernel, Emulator), the
// supervisor (New) and `vigil policy check --explain` (Explain) all read
// this one value.
type Plan struct {
	Policy *policy.Policy
	// Unverified is the naive mode the plan was made for: content-
	// dependent allows continue unverified; only emulate verdicts are
	// performed.
	Unverified bool
	// Notify are the syscall numbers the filter traps whole, sorted: those
	// the policy names, and the sends its connect rules govern (send.go).
	Notify []int
	// AddrOnly are trapped only when they carry a destination address
	// (sendto governed by connect rules: filter.Spec.AddrOnly).
	AddrOnly []int
	// DevicesOnly are mknod and mknodat when the filter may trap them for
	// devices only (filter.Spec.DevicesOnly; see devicesOnly).
	DevicesOnly []int
	// FlagsOnly maps clone(2) to the flag bits the filter traps it for,
	// when calls without them get a plain allow (filter.Spec.FlagsOnly;
	// policy.RegisterFlagsPrescreen).
	FlagsOnly map[int]uint64
	// Kernel says some allow will be bound in eBPF: the loader is needed.
	Kernel bool
	// Emulator says vigil will perform some calls: the emulation engine is
	// needed.
	Emulator bool
	// Calls describes every trapped syscall, by name.
	Calls []CallPlan
}

// CallPlan is how vigil handles one trapped syscall.
type CallPlan struct {
	Name string
	Nr   int
	// Governed: trapped because the policy's connect rules govern it (a
	// send that may carry a destination), not because a rule names it.
	Governed bool
	// AddrOnly: trapped only with a destination address.
	AddrOnly bool
	// Keys are the match keys the rules naming it look at.
	Keys sysinfo.Key
	// ContentDependent: its verdict may depend on pointer arguments (the
	// first rule naming it has a match).
	ContentDependent bool
	// MayAllow: such a verdict may be allow or log.
	MayAllow bool
	// Emulates: an emulate rule names it.
	Emulates bool
	// Carry is how a content-dependent allow of it is carried out in this
	// plan; CarryNone when none can happen.
	Carry Carry
}

// CarryOf says how vigil can carry out a content-dependent allow of the
// named syscall when every mechanism runs.
func CarryOf(name string) Carry { return handlingNamed(name).carry() }

// NewPlan makes the plan of p, refusing policies vigil cannot carry out
// faithfully. unverified makes the naive mode's plan (`--unverified`).
func NewPlan(p *policy.Policy, unverified bool) (*Plan, error) {
	if p == nil {
		return nil, errors.New("planning: no policy")
	}
	if err := checkEmulateRules(p); err != nil {
		return nil, err
	}
	pl := &Plan{Policy: p, Unverified: unverified, DevicesOnly: devicesOnly(p)}
	governed, addrOnly := governedSends(p)
	for _, name := range p.Syscalls() {
		nr, ok := sysinfo.Number(name)
		if !ok {
			continue // the policy validator refuses unknown names
		}
		pl.Notify = append(pl.Notify, nr)
		pl.Calls = append(pl.Calls, pl.callPlan(name, nr, false, false))
		if mask, ok := p.RegisterFlagsPrescreen(nr); ok {
			if pl.FlagsOnly == nil {
				pl.FlagsOnly = make(map[int]uint64, 1)
			}
			pl.FlagsOnly[nr] = mask
		}
	}
	for _, nr := range governed {
		pl.Notify = append(pl.Notify, nr)
		pl.Calls = append(pl.Calls, pl.callPlan(sysinfo.Name(nr), nr, true, false))
	}
	for _, nr := range addrOnly {
		pl.AddrOnly = append(pl.AddrOnly, nr)
		pl.Calls = append(pl.Calls, pl.callPlan(sysinfo.Name(nr), nr, true, true))
	}
	slices.Sort(pl.Notify)
	slices.SortFunc(pl.Calls, func(a, b CallPlan) int { return strings.Compare(a.Name, b.Name) })
	for _, r := range p.Rules {
		pl.Emulator = pl.Emulator || r.Action == policy.ActionEmulate
	}
	for _, c := range pl.Calls {
		pl.Kernel = pl.Kernel || c.Carry == CarryBind || c.Carry == CarryBindOrEmulate
		pl.Emulator = pl.Emulator || c.Carry == CarryEmulate || c.Carry == CarryBindOrEmulate
	}
	return pl, nil
}

// callPlan describes syscall name (number nr) under pl's policy.
func (pl *Plan) callPlan(name string, nr int, governed, addrOnly bool) CallPlan {
	p := pl.Policy
	c := CallPlan{Name: name, Nr: nr, Governed: governed, AddrOnly: addrOnly}
	evalNr := nr
	if governed {
		evalNr = nrConnect // a governed send is decided by connect's rules
	}
	c.Keys = p.Needs(evalNr)
	c.ContentDependent = p.ContentDependent(evalNr)
	c.Emulates = emulateRuleNames(p, name)
	h := handlingOf(nr)
	if h.send != sendNone {
		// A send without a destination goes to the connected peer and is
		// allowed, so every send vigil decides may be allowed (send.go).
		c.MayAllow = c.ContentDependent || governed
		c.ContentDependent = c.MayAllow
	} else {
		c.MayAllow = c.ContentDependent && mayAllow(p, name)
	}
	switch {
	case !c.MayAllow:
		c.Carry = CarryNone
	case pl.Unverified:
		c.Carry = CarryUnverified
	default:
		c.Carry = h.carry()
	}
	return c
}

// checkEmulateRules refuses emulate rules on calls vigil cannot emulate.
func checkEmulateRules(p *policy.Policy) error {
	for _, r := range p.Rules {
		if r.Action != policy.ActionEmulate {
			continue
		}
		for _, name := range r.Syscalls {
			if handlingNamed(name).emulation == nil {
				return fmt.Errorf("%s: rule %q: vigil cannot emulate %s; emulable are mknod, setxattr and the path calls (unlink, rename, mkdir, link, symlink, chmod, chown, truncate)", r.Pos, ruleName(r), name)
			}
		}
	}
	return nil
}

// Supported reports policies this build cannot enforce faithfully.
func Supported(p *policy.Policy) error { return checkEmulateRules(p) }

func emulateRuleNames(p *policy.Policy, name string) bool {
	for _, r := range p.Rules {
		if r.Action == policy.ActionEmulate && slices.Contains(r.Syscalls, name) {
			return true
		}
	}
	return false
}

// mayAllow reports whether some rule naming syscall, or the default, allows.
func mayAllow(p *policy.Policy, syscall string) bool {
	for _, r := range p.Rules {
		if !slices.Contains(r.Syscalls, syscall) {
			continue
		}
		if r.Action == policy.ActionAllow || r.Action == policy.ActionLog {
			return true
		}
		if r.Keys() == 0 {
			// A rule without match ends the search for this syscall.
			return false
		}
	}
	return p.Default == policy.ActionAllow || p.Default == policy.ActionLog
}

// devicesOnly returns the mknod/mknodat numbers the filter may trap for
// devices only: when every rule naming them matches on dev (so a FIFO or
// socket matches none) and the default allows, an untrapped FIFO gets the
// verdict a trapped one would.
func devicesOnly(p *policy.Policy) []int {
	if p.Default != policy.ActionAllow {
		return nil
	}
	var out []int
	for _, name := range []string{"mknod", "mknodat"} {
		named, allDev := false, true
		for _, r := range p.Rules {
			if slices.Contains(r.Syscalls, name) {
				named = true
				allDev = allDev && r.Keys().Has(sysinfo.KeyDev)
			}
		}
		if named && allDev {
			nr, _ := sysinfo.Number(name)
			out = append(out, nr)
		}
	}
	return out
}

// FilterSpec is the filter.Spec of the plan's traps; the caller adds how
// the filter is installed (hardening, root and mount tracking).
func (pl *Plan) FilterSpec() filter.Spec {
	return filter.Spec{Notify: pl.Notify, DevicesOnly: pl.DevicesOnly, FlagsOnly: pl.FlagsOnly, AddrOnly: pl.AddrOnly}
}

// TrappedNames returns the names of the syscalls the plan traps whole and
// with a destination only, sorted, for OCI profiles.
func (pl *Plan) TrappedNames() (whole, addrOnly []string) {
	for _, c := range pl.Calls {
		if c.AddrOnly {
			addrOnly = append(addrOnly, c.Name)
		} else {
			whole = append(whole, c.Name)
		}
	}
	return whole, addrOnly
}

// GovernedSends returns the names of the sends the plan traps although no
// rule names them (whole, and with a destination only).
func (pl *Plan) GovernedSends() (whole, addrOnly []string) {
	for _, c := range pl.Calls {
		switch {
		case c.Governed && c.AddrOnly:
			addrOnly = append(addrOnly, c.Name)
		case c.Governed:
			whole = append(whole, c.Name)
		}
	}
	return whole, addrOnly
}

// Require checks that the mechanisms the plan needs run: kernel says the
// eBPF binding is loaded, emulator that the emulation engine runs. Without
// the binding, allows of calls vigil would bind are refused at startup
// (unless the plan is the naive mode's); without the engine, the binding
// alone carries out what it can (opens and connects are then bound, the
// bound-only mode the race tests use), and sends vigil would perform are
// denied. It returns the calls whose allows will continue unverified for
// want of any mechanism (the caller warns).
func (pl *Plan) Require(kernel, emulator bool) (unverified []string, err error) {
	if !emulator {
		for _, r := range pl.Policy.Rules {
			if r.Action == policy.ActionEmulate {
				return nil, fmt.Errorf("%s: rule %q: action emulate needs the emulation engine, which is not running", r.Pos, ruleName(r))
			}
		}
	}
	if pl.Unverified {
		return nil, nil
	}
	var needKernel []string
	for _, c := range pl.Calls {
		switch c.Carry {
		case CarryBind, CarryBindOrEmulate:
			if !kernel {
				needKernel = append(needKernel, c.Name)
			}
		case CarryEmulate:
			switch {
			case emulator || handlingOf(c.Nr).send != sendNone:
			case kernel:
				unverified = append(unverified, c.Name)
			default:
				needKernel = append(needKernel, c.Name)
			}
		case CarryUnverified:
			unverified = append(unverified, c.Name)
		}
	}
	if len(needKernel) > 0 {
		return nil, fmt.Errorf("the policy allows %s depending on pointer arguments, which needs the eBPF binding, and it is not loaded; "+
			"run where vigil can load BPF (see 'vigil doctor'), or pass --unverified to continue such calls unbound (a racing thread can then change what the kernel uses)",
			strings.Join(needKernel, ", "))
	}
	return unverified, nil
}

// Explain writes what the plan traps, what each trapped syscall's rules look
// at, and how an allow of it is made safe (`vigil policy check --explain`).
func (pl *Plan) Explain(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SYSCALL\tTRAPPED\tRULES LOOK AT\tALLOW CARRIED OUT BY")
	for _, c := range pl.Calls {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.Name, c.trapped(pl), keyNames(c.Keys), c.explainCarry())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "needs: eBPF binding %s, emulation engine %s\n", yesNo(pl.Kernel), yesNo(pl.Emulator))
	return err
}

func (c *CallPlan) trapped(pl *Plan) string {
	how := "whole"
	switch {
	case c.AddrOnly:
		how = "with a destination"
	case slices.Contains(pl.DevicesOnly, c.Nr):
		how = "devices only"
	case pl.FlagsOnly[c.Nr] != 0:
		how = "with a flag its rules test"
	}
	if c.Governed {
		how += " (connect's rules)"
	}
	return how
}

func (c *CallPlan) explainCarry() string {
	s := ""
	switch c.Carry {
	case CarryNone:
		switch {
		case !c.ContentDependent:
			s = "none needed: the verdict is by number"
		default:
			s = "none needed: only denials depend on the arguments"
		}
	case CarryBind:
		s = "eBPF binding"
	case CarryEmulate:
		s = "vigil performs it"
	case CarryBindOrEmulate:
		s = handlingOf(c.Nr).explain
	case CarryUnverified:
		s = "nothing: continued unverified (records say verified none)"
	}
	if c.Emulates {
		s += "; emulate rules: vigil performs it"
	}
	return s
}

func keyNames(k sysinfo.Key) string {
	var names []string
	for _, key := range []sysinfo.Key{sysinfo.KeyPath, sysinfo.KeyFlags, sysinfo.KeyResolve, sysinfo.KeyAddr, sysinfo.KeyDev, sysinfo.KeyXattr} {
		if k.Has(key) {
			names = append(names, key.String())
		}
	}
	if len(names) == 0 {
		return "-"
	}
	return strings.Join(names, ",")
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
