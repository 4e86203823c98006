package doctor

import (
	"fmt"
	"io"
	"text/tabwriter"
)

// WriteTable writes the report for a terminal: an aligned table (feature,
// status, detail; required features marked *), what each unavailable
// feature means for vigil, and a last line "vigil can run: yes" or "no".
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "kernel %s\n\n", r.Kernel)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FEATURE\tSTATUS\tDETAIL")
	for _, f := range r.Features {
		name := f.Name
		if f.Required {
			name += " *"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", name, status(f), f.Detail)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("writing doctor table: %w", err)
	}
	fmt.Fprintln(w, "* required by vigil run")
	var optional, required []Feature
	for _, f := range r.Features {
		switch {
		case f.Available:
		case f.Required:
			required = append(required, f)
		default:
			optional = append(optional, f)
		}
	}
	if len(optional) > 0 {
		fmt.Fprintln(w, "\nunavailable, optional:")
		for _, f := range optional {
			fmt.Fprintf(w, "  %s: %s\n", f.Name, f.Use)
		}
	}
	if len(required) > 0 {
		fmt.Fprintln(w, "\nMISSING, required:")
		for _, f := range required {
			fmt.Fprintf(w, "  %s: needed for %s\n    to fix: %s\n", f.Name, f.Use, f.Remedy)
		}
	}
	if len(r.Limits) > 0 {
		who := "this user"
		if r.UID != 0 {
			who = fmt.Sprintf("uid %d (not root)", r.UID)
		}
		fmt.Fprintf(w, "\nwhat %s cannot do here:\n", who)
		for _, l := range r.Limits {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	verdict := "yes"
	switch {
	case !r.CanRun && r.CanRunUnverified:
		verdict = "no (only 'vigil run --unverified', without the eBPF binding; see above)"
	case !r.CanRun:
		verdict = "no"
	}
	_, err := fmt.Fprintf(w, "\nvigil can run: %s\n", verdict)
	return err
}

func status(f Feature) string {
	switch {
	case f.Available:
		return "yes"
	case f.Required:
		return "MISSING"
	}
	return "no"
}
