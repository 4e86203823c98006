package doctor

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Use is one mechanism vigil chooses from the features a kernel offers.
type Use struct {
	// What names the mechanism's role; How is what vigil uses there.
	What, How string
}

// Uses says which mechanism vigil uses on the kernel of r, decided from the
// features as vigil decides at run time: the listener's flags, the wake-up
// mode, whether the eBPF binding loads (without it only --unverified runs),
// and the emulator's needs.
func (r *Report) Uses() []Use {
	has := func(name string) bool { f, ok := r.Feature(name); return ok && f.Available }
	pick := func(ok bool, yes, no string) string {
		if ok {
			return yes
		}
		return no
	}
	trap := "seccomp user notification"
	if !r.CanRunUnverified {
		trap = "none: vigil cannot run"
	}
	lock, _ := r.Feature(Lockdown)
	binding := has(BPFRingbuf) && has(BPFRawTracepoint) && has(BPFSendSignal) && has(BPFProbeReadUser) &&
		has(BTFVmlinux) && !strings.HasPrefix(lock.Detail, "confidentiality")
	return []Use{
		{"trap", trap},
		{"listener", pick(has(SeccompWaitKillableRecv), "WAIT_KILLABLE_RECV", "plain (signals restart calls)")},
		{"wake-up", pick(has(SeccompSyncWakeUp), "SYNC_WAKE_UP", "scheduler default")},
		{"binding", pick(binding, "eBPF raw tracepoints", "none: --unverified only")},
		{"emulation", pick(has(SeccompAddFDSend), "ADDFD_SEND", "no ADDFD_SEND: opens fail closed")},
		{"watchee dirfds", pick(has(PidfdGetfd), "pidfd_getfd", "unavailable")},
	}
}

// WriteComparison writes runs side by side, one column per kernel: the
// features each offers, what vigil uses there, the tests that ran (a count
// per package, then every test that did not pass everywhere), the time each
// step of the pass took, and each mechanism's cost relative to that
// kernel's own bare run. Absolute times from different kernels or machines
// are not comparable (a guest under emulation is many times slower); ratios
// to the same kernel's bare run are.
func WriteComparison(w io.Writer, runs []Run) error {
	if len(runs) == 0 {
		return fmt.Errorf("comparing: no runs")
	}
	t := &grid{cols: len(runs)}
	names := make([]string, len(runs))
	for i, r := range runs {
		names[i] = r.Name
	}
	t.row("", names...)
	t.row("kernel", each(runs, func(r Run) string { return r.Report.Kernel })...)
	t.row("vigil can run", each(runs, func(r Run) string { return canRun(r.Report) })...)

	t.section("FEATURES (* required)")
	for _, name := range featureNames(runs) {
		label := name
		if isRequired(runs, name) {
			label += " *"
		}
		t.row(label, each(runs, func(r Run) string {
			f, ok := r.Report.Feature(name)
			if !ok {
				return "—"
			}
			return status(f)
		})...)
	}

	t.section("VIGIL USES")
	for i, u := range runs[0].Report.Uses() {
		t.row(u.What, each(runs, func(r Run) string { return r.Report.Uses()[i].How })...)
	}

	writeTests(t, runs)
	writeSteps(t, runs)
	writeCosts(t, runs)
	if err := t.write(w); err != nil {
		return fmt.Errorf("writing comparison: %w", err)
	}
	return writeDetails(w, runs)
}

func each(runs []Run, f func(Run) string) []string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = f(r)
	}
	return out
}

// featureNames lists the features of all runs: the catalog's order, then
// names only older or newer reports have.
func featureNames(runs []Run) []string {
	seen := map[string]bool{}
	var out []string
	for _, c := range catalog {
		seen[c.name] = true
		out = append(out, c.name)
	}
	for _, r := range runs {
		for _, f := range r.Report.Features {
			if !seen[f.Name] {
				seen[f.Name] = true
				out = append(out, f.Name)
			}
		}
	}
	return out
}

func isRequired(runs []Run, name string) bool {
	for _, r := range runs {
		if f, ok := r.Report.Feature(name); ok && f.Required {
			return true
		}
	}
	return false
}

// writeTests adds a passed/ran count per package, then a row for every test
// that did not pass on every kernel that ran it.
func writeTests(t *grid, runs []Run) {
	var pkgs []string
	seen := map[string]bool{}
	for _, r := range runs {
		for _, o := range r.Tests {
			if !seen[o.Package] {
				seen[o.Package] = true
				pkgs = append(pkgs, o.Package)
			}
		}
	}
	if len(pkgs) == 0 {
		return
	}
	t.section("TESTS (passed/ran, skipped)")
	for _, p := range pkgs {
		t.row(p, each(runs, func(r Run) string {
			var ran, passed, skipped int
			for _, o := range r.Tests {
				if o.Package != p || o.Test == "" {
					continue
				}
				ran++
				switch o.Action {
				case "pass":
					passed++
				case "skip":
					skipped++
				}
			}
			if ran == 0 {
				return "—"
			}
			s := fmt.Sprintf("%d/%d", passed, ran)
			if skipped > 0 {
				s += fmt.Sprintf(", %d skipped", skipped)
			}
			return s
		})...)
	}
	type key struct{ pkg, test string }
	var odd []key
	oddSeen := map[key]bool{}
	for _, r := range runs {
		for _, o := range r.Tests {
			k := key{o.Package, o.Test}
			if o.Action != "pass" && !oddSeen[k] {
				oddSeen[k] = true
				odd = append(odd, k)
			}
		}
	}
	if len(odd) == 0 {
		t.section("every test that ran passed on every kernel")
		return
	}
	t.section("TESTS THAT DID NOT PASS EVERYWHERE")
	for _, k := range odd {
		label := k.pkg + " " + k.test
		if k.test == "" {
			label = k.pkg + " (the test binary failed)"
		}
		t.row(label, each(runs, func(r Run) string {
			for _, o := range r.Tests {
				if o.Package == k.pkg && o.Test == k.test {
					if o.Action == "fail" {
						return "FAIL"
					}
					return o.Action
				}
			}
			return "—"
		})...)
	}
}

// writeSteps adds each step's seconds (and its exit status when not 0).
func writeSteps(t *grid, runs []Run) {
	var names []string
	seen := map[string]bool{}
	for _, r := range runs {
		for _, s := range r.Steps {
			if !seen[s.Name] {
				seen[s.Name] = true
				names = append(names, s.Name)
			}
		}
	}
	if len(names) == 0 {
		return
	}
	t.section("PASS TIME (s; exit status if not 0)")
	for _, n := range names {
		t.row(n, each(runs, func(r Run) string {
			for _, s := range r.Steps {
				if s.Name == n {
					v := strconv.FormatFloat(s.Seconds, 'f', 1, 64)
					if s.Status != 0 {
						v += fmt.Sprintf(" (exit %d)", s.Status)
					}
					return v
				}
			}
			return "—"
		})...)
	}
}

// writeCosts adds each workload × mechanism's ratio to the same kernel's
// bare run; † marks denied operations.
func writeCosts(t *grid, runs []Run) {
	type key struct{ w, m string }
	var keys []key
	seen := map[key]bool{}
	for _, r := range runs {
		for _, c := range r.Costs {
			if k := (key{c.Workload, c.Mechanism}); !seen[k] && c.Mechanism != "bare" {
				seen[k] = true
				keys = append(keys, k)
			}
		}
	}
	if len(keys) == 0 {
		return
	}
	// Group by workload, keeping first-seen order within each.
	order := map[string]int{}
	for _, k := range keys {
		if _, ok := order[k.w]; !ok {
			order[k.w] = len(order)
		}
	}
	sort.SliceStable(keys, func(i, j int) bool { return order[keys[i].w] < order[keys[j].w] })
	t.section("COST (× the same kernel's bare run; † denied)")
	for _, k := range keys {
		t.row(k.w+" "+k.m, each(runs, func(r Run) string {
			for _, c := range r.Costs {
				if c.Workload == k.w && c.Mechanism == k.m {
					if c.RatioBare == 0 {
						return "—"
					}
					v := fmt.Sprintf("%.2f×", c.RatioBare)
					if c.Denied {
						v += " †"
					}
					return v
				}
			}
			return "—"
		})...)
	}
}

// writeDetails prints, for every feature whose status differs between the
// runs, what each run's probe observed.
func writeDetails(w io.Writer, runs []Run) error {
	var b strings.Builder
	for _, name := range featureNames(runs) {
		statuses := map[string]bool{}
		for _, r := range runs {
			f, _ := r.Report.Feature(name)
			statuses[status(f)] = true
		}
		if len(statuses) < 2 {
			continue
		}
		fmt.Fprintf(&b, "  %s\n", name)
		for _, r := range runs {
			f, ok := r.Report.Feature(name)
			if !ok {
				fmt.Fprintf(&b, "    %s: not in this report\n", r.Name)
				continue
			}
			fmt.Fprintf(&b, "    %s: %s: %s\n", r.Name, status(f), f.Detail)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	_, err := fmt.Fprintf(w, "\nfeatures that differ, as each probe saw them:\n%s", b.String())
	return err
}

// grid is a text table with a label column and one column per run; a
// section row has only its title, which does not widen the label column.
type grid struct {
	cols int
	rows []gridRow
}

type gridRow struct {
	section bool
	cells   []string
}

func (t *grid) row(label string, cells ...string) {
	t.rows = append(t.rows, gridRow{cells: append([]string{label}, cells...)})
}

func (t *grid) section(title string) {
	t.rows = append(t.rows, gridRow{section: true, cells: []string{title}})
}

func (t *grid) write(w io.Writer) error {
	widths := make([]int, t.cols+1)
	for _, r := range t.rows {
		if r.section {
			continue
		}
		for i, c := range r.cells {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, r := range t.rows {
		if r.section {
			fmt.Fprintf(&b, "\n%s\n", r.cells[0])
			continue
		}
		var line strings.Builder
		for i, c := range r.cells {
			if i > 0 {
				line.WriteString("  ")
			}
			line.WriteString(c)
			line.WriteString(strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c)))
		}
		b.WriteString(strings.TrimRight(line.String(), " "))
		b.WriteString("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// canRun says in one cell whether vigil runs on a kernel in its default,
// secure mode, only as --unverified (the binding cannot load), or not at all.
func canRun(r Report) string {
	switch {
	case r.CanRun:
		return "yes"
	case r.CanRunUnverified:
		return "--unverified only"
	}
	return "no"
}
