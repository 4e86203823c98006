package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// helperSecurityfs runs in a private mount namespace: it mounts securityfs
// and reports the lockdown mode and the active LSMs.
func helperSecurityfs(stdout io.Writer) error {
	if err := unix.Mount("securityfs", securityfsDir, "securityfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting securityfs: %w", err)
	}
	var out securityfsOutput
	b, err := os.ReadFile(securityfsDir + "/lockdown")
	if err != nil {
		return fmt.Errorf("reading lockdown mode: %w", err)
	}
	out.Lockdown = string(b)
	if l, err := os.ReadFile(securityfsDir + "/lsm"); err == nil {
		out.LSM = string(l)
	}
	enc, err := json.Marshal(out)
	if err != nil {
		return fmt.Errorf("encoding lockdown mode: %w", err)
	}
	_, err = stdout.Write(append(enc, '\n'))
	return err
}
