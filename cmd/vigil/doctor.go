package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/cmd/vigil/internal/doctor"
)

func newDoctorCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "doctor [--json]",
		Short: "Probe which kernel features vigil can use; exit 1 if a required one is missing",
		Long: `Probe, by trying them, the kernel features vigil uses or avoids: seccomp user
notification and its flags (CONTINUE, ADDFD, WAIT_KILLABLE_RECV, SYNC_WAKE_UP),
pidfds, process_vm_readv, openat2, eBPF map and program types (ring buffer, raw
tracepoints, bpf_send_signal, BTF, fentry, LSM, kprobes), lockdown, user
namespaces and tracefs. The last line says whether vigil can run here; the exit
status is 1 when a required feature is missing. Run as root for a full answer.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := doctor.Probe()
			var err error
			if asJSON {
				err = r.WriteJSON(os.Stdout)
			} else {
				err = r.WriteTable(os.Stdout)
			}
			if err != nil {
				return &exitError{code: 2, err: err}
			}
			if !r.CanRun {
				return &exitError{code: 1}
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	cmd.AddCommand(newDoctorCompareCmd())
	return cmd
}

func newDoctorCompareCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "compare RUN...",
		Short: "Compare kernels side by side: features, what vigil uses, tests, cost",
		Long: `Print one table with a column per RUN: the features each kernel offers,
the mechanism vigil uses there, and, where the RUN has them, the tests that
ran (passed/ran per package, then every test that did not pass everywhere),
the time each step took, and each mechanism's cost relative to that kernel's
own bare run. Then, for every feature that differs, what each probe saw.

A RUN is a 'vigil doctor --json' file, a 'vigil bench --json' file (it
embeds the report), or a result directory of scripts/kernel-matrix.sh
(doctor.json, tests.jsonl, steps, bench.json).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			runs := make([]doctor.Run, 0, len(args))
			for _, a := range args {
				r, err := doctor.LoadRun(a)
				if err != nil {
					return &exitError{code: 2, err: err}
				}
				runs = append(runs, r)
			}
			if err := doctor.WriteComparison(os.Stdout, runs); err != nil {
				return &exitError{code: 2, err: err}
			}
			return nil
		},
	}
}
