package main

import (
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vigilsec/vigil/cmd/vigil/internal/version"
)

func newVersionCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version [--json]",
		Short: "Print vigil's version, commit and build settings, and the libseccomp and kernel it runs on",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := version.Get()
			if asJSON {
				return in.WriteJSON(os.Stdout)
			}
			return in.Write(os.Stdout)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print as JSON")
	return cmd
}

// setVersionFlag gives root a --version flag that prints what `vigil
// version` prints. cobra adds the flag only when Version is set; the full
// text is computed when asked for, since it probes the kernel.
func setVersionFlag(root *cobra.Command) {
	root.Version = version.Version
	if root.Version == "" {
		root.Version = "(devel)"
	}
	cobra.AddTemplateFunc("vigilVersion", func() string {
		var b strings.Builder
		_ = version.Get().Write(&b)
		return b.String()
	})
	root.SetVersionTemplate(`{{vigilVersion}}`)
}
