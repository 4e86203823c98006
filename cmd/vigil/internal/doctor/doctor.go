// Package doctor probes what the running kernel and libraries offer vigil:
// seccomp user notification and its flags, pidfds, cross-process memory
// reads, openat2, eBPF map and program types, lockdown and user namespaces.
//
// Every probe is feature detection, never a version comparison: an ioctl
// that returns EINVAL, a program load that returns EPERM, a flag the kernel
// refuses. Probes that need a real seccomp listener run in a throwaway
// re-execution of the current binary (see RunHelperIfRequested), because a
// filter can never be removed from the process that installed it.
package doctor

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// Feature names, stable: they are the "name" field of the JSON report.
const (
	SeccompUserNotif        = "seccomp_user_notif"
	SeccompContinue         = "seccomp_continue"
	SeccompAddFD            = "seccomp_addfd"
	SeccompAddFDSend        = "seccomp_addfd_send"
	SeccompWaitKillableRecv = "seccomp_wait_killable_recv"
	SeccompSyncWakeUp       = "seccomp_sync_wake_up"
	PidfdOpen               = "pidfd_open"
	PidfdGetfd              = "pidfd_getfd"
	ProcessVMReadv          = "process_vm_readv"
	Openat2                 = "openat2"
	Libseccomp              = "libseccomp"
	BPFRingbuf              = "bpf_ringbuf"
	BPFRawTracepoint        = "bpf_raw_tracepoint"
	BPFSendSignal           = "bpf_send_signal"
	BPFProbeReadUser        = "bpf_probe_read_user"
	BTFVmlinux              = "btf_vmlinux"
	BPFFentry               = "bpf_fentry"
	BPFLSM                  = "bpf_lsm"
	Kprobes                 = "kprobes"
	Lockdown                = "lockdown"
	UsernsUnprivileged      = "userns_unprivileged"
	UsernsPrivileged        = "userns_privileged"
	Tracefs                 = "tracefs"
)

// Feature is what one probe found.
type Feature struct {
	// Name is one of the feature name constants.
	Name string `json:"name"`
	// Available says the kernel (or library) offers the feature to this
	// process as it runs now (privileges included).
	Available bool `json:"available"`
	// Detail is what the probe observed: the errno, the version, the mode.
	Detail string `json:"detail"`
	// Required features must be available for `vigil run` to work.
	Required bool `json:"required"`
	// Use says what vigil uses the feature for.
	Use string `json:"use"`
	// Remedy says what to do when the feature is missing.
	Remedy string `json:"remedy"`
}

// Report is the result of Probe: one entry per feature, in a fixed order.
type Report struct {
	// Kernel is the release string (uname -r), for the reader only: no
	// probe looks at it.
	Kernel   string    `json:"kernel"`
	Features []Feature `json:"features"`
	// CanRun is true when every required feature is available.
	CanRun bool `json:"can_run"`
}

// Feature returns the named entry, or false when the report has none.
func (r *Report) Feature(name string) (Feature, bool) {
	for _, f := range r.Features {
		if f.Name == name {
			return f, true
		}
	}
	return Feature{}, false
}

// Missing returns the required features that are not available.
func (r *Report) Missing() []Feature {
	var out []Feature
	for _, f := range r.Features {
		if f.Required && !f.Available {
			out = append(out, f)
		}
	}
	return out
}

// Probe runs every probe and returns the report. It never fails: a probe that
// cannot run reports its feature unavailable and says why in Detail.
func Probe() Report {
	found := map[string]result{}
	probeSeccompLocal(found)
	probeHelper(found)
	probeSyscalls(found)
	probeLibseccomp(found)
	sec := readSecurityfs()
	probeBPF(found, sec)
	probeLockdown(found, sec)
	probeTracefs(found)
	return assemble(kernelRelease(), found)
}

// result is one probe's raw outcome, before the catalog adds its text.
type result struct {
	Available bool   `json:"available"`
	Detail    string `json:"detail"`
}

func yes(detail string, args ...any) result {
	return result{Available: true, Detail: fmt.Sprintf(detail, args...)}
}

func no(detail string, args ...any) result {
	return result{Available: false, Detail: fmt.Sprintf(detail, args...)}
}

// assemble orders the results by the catalog and fills in the fixed texts.
// A feature no probe reported is unavailable ("not probed").
func assemble(kernel string, found map[string]result) Report {
	r := Report{Kernel: kernel, CanRun: true}
	for _, c := range catalog {
		res, ok := found[c.name]
		if !ok {
			res = no("not probed")
		}
		r.Features = append(r.Features, Feature{
			Name: c.name, Available: res.Available, Detail: res.Detail,
			Required: c.required, Use: c.use, Remedy: c.remedy,
		})
		if c.required && !res.Available {
			r.CanRun = false
		}
	}
	return r
}

func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// WriteJSON writes the report as indented JSON.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("encoding doctor report: %w", err)
	}
	return nil
}

// ReadJSON decodes a report written by WriteJSON.
func ReadJSON(rd io.Reader) (Report, error) {
	var r Report
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("decoding doctor report: %w", err)
	}
	return r, nil
}

// errText renders an errno the way the table shows it: "EPERM (operation
// not permitted)".
func errText(err error) string {
	if err == nil {
		return "ok"
	}
	var e unix.Errno
	if errors.As(err, &e) {
		name := unix.ErrnoName(e)
		if name == "" {
			name = fmt.Sprintf("errno %d", int(e))
		}
		return fmt.Sprintf("%s (%s)", name, e.Error())
	}
	return strings.TrimSpace(err.Error())
}

func isRoot() bool { return os.Geteuid() == 0 }
