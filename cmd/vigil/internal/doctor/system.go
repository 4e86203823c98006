package doctor

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/vigilsec/vigil/enforcer/emulate"
)

// securityfsDir is where securityfs is mounted when it is.
const securityfsDir = "/sys/kernel/security"

// securityfs is what securityfs says of the running kernel's LSMs.
type securityfs struct {
	lockdown string // the lockdown file, "none [integrity] confidentiality"
	lsm      string // the active LSMs in order, "lockdown,capability,...,bpf"
	how      string // where it was read
	err      error  // why it could not be read (then the rest is empty)
}

// readSecurityfs reads the lockdown mode and the active LSM list. When
// securityfs is not mounted (containers, minimal VMs) and this process is
// root, a helper mounts it in a private mount namespace that vanishes with
// it, so the host stays as it was.
func readSecurityfs() securityfs {
	if b, err := os.ReadFile(securityfsDir + "/lockdown"); err == nil {
		s := securityfs{lockdown: string(b), how: "read from " + securityfsDir}
		if l, err := os.ReadFile(securityfsDir + "/lsm"); err == nil {
			s.lsm = string(l)
		}
		return s
	}
	if !isRoot() {
		return securityfs{err: errors.New("securityfs not mounted; run as root to probe it")}
	}
	out, err := securityfsViaHelper()
	if err != nil {
		return securityfs{err: fmt.Errorf("securityfs not mounted and mounting it privately failed: %w", err)}
	}
	return securityfs{lockdown: out.Lockdown, lsm: out.LSM, how: "securityfs mounted in a private mount namespace"}
}

// probeLockdown reports the lockdown mode securityfs gives.
func probeLockdown(found map[string]result, sec securityfs) {
	if sec.err != nil {
		found[Lockdown] = no("%v", sec.err)
		return
	}
	mode, lsm, how := sec.lockdown, sec.lsm, sec.how
	active := activeLockdown(mode)
	if active == "" {
		found[Lockdown] = no("lockdown file says %q (%s)", strings.TrimSpace(mode), how)
		return
	}
	detail := active + " (" + how
	if lsm = strings.TrimSpace(lsm); lsm != "" {
		detail += "; LSMs " + lsm
	}
	detail += ")"
	if active == "confidentiality" {
		found[Lockdown] = no("%s", detail)
		return
	}
	found[Lockdown] = yes("%s", detail)
}

// activeLockdown extracts the bracketed mode from "none [integrity]
// confidentiality".
func activeLockdown(s string) string {
	i, j := strings.IndexByte(s, '['), strings.IndexByte(s, ']')
	if i < 0 || j < i {
		return ""
	}
	return s[i+1 : j]
}

func securityfsViaHelper() (securityfsOutput, error) {
	var out securityfsOutput
	// Go makes the new mount namespace's mounts private before the exec,
	// so nothing the helper mounts propagates back.
	h, err := startHelper(modeSecurityfs, &syscall.SysProcAttr{Unshareflags: syscall.CLONE_NEWNS})
	if err != nil {
		return out, err
	}
	err = h.readJSON(&out)
	if ferr := h.finish(); err == nil {
		err = ferr
	}
	return out, err
}

// probeTracefs reports whether tracefs is mounted. vigil does not need it;
// the detail says whether the kernel has it to mount.
func probeTracefs(found map[string]result) {
	mounts, err := os.Open("/proc/self/mounts")
	if err == nil {
		defer mounts.Close()
		sc := bufio.NewScanner(mounts)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) >= 3 && f[2] == "tracefs" {
				found[Tracefs] = yes("mounted at %s", f[1])
				return
			}
		}
	}
	fs, _ := os.ReadFile("/proc/filesystems")
	if strings.Contains(string(fs), "\ttracefs\n") {
		found[Tracefs] = no("not mounted (the kernel has tracefs)")
		return
	}
	found[Tracefs] = no("not mounted, and the kernel lists no tracefs")
}

// probeBindView performs one bind the way the emulator performs an AF_UNIX
// path with directories (emulate.ProbeBind), for a socket of its own.
func probeBindView(found map[string]result) {
	if err := emulate.ProbeBind(); err != nil {
		found[BindPrivateView] = no("%s", errText(err))
		return
	}
	found[BindPrivateView] = yes("bound a socket at its spelled path through a private mount namespace and a clone of the directory's mount")
}
