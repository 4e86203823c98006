// Package doctor probes what the running kernel and libraries offer vigil:
// seccomp user notification and its flags, pidfds, cross-process memory
// reads, openat2, eBPF map and program types, lockdown and user namespaces.
//
// Every probe is feature detection, never a version comparison: an ioctl
// that returns EINVAL, a program load that returns EPERM, a flag the kernel
// refuses. Probes that need a real seccomp listener run in a throwaway
// re-execution of the current binary (see HelperRole), because a
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
	BindPrivateView         = "bind_private_view"
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
	// CanRun is true when `vigil run` works here in its default, secure
	// mode: every required feature and the eBPF binding are available.
	CanRun bool `json:"can_run"`
	// CanRunUnverified is true when every required feature is available:
	// `vigil run --unverified` works even where the binding does not.
	CanRunUnverified bool `json:"can_run_unverified"`
	// UID is the effective user id the probes ran as.
	UID int `json:"uid"`
	// Limits say what this user cannot do with vigil here, and why.
	Limits []string `json:"limits,omitempty"`
}

// bindingFeatures are what the eBPF binding needs (loader.Load): without
// any of them, policies whose allows depend on pointer arguments are
// refused unless --unverified is given.
var bindingFeatures = []string{BPFRingbuf, BPFRawTracepoint, BPFSendSignal, BPFProbeReadUser, BTFVmlinux}

// BindingMissing returns the binding's features that are not available.
func (r *Report) BindingMissing() []Feature {
	var out []Feature
	for _, name := range bindingFeatures {
		if f, ok := r.Feature(name); !ok || !f.Available {
			out = append(out, f)
		}
	}
	return out
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
	probeBindView(found)
	r := assemble(kernelRelease(), found)
	r.UID = os.Geteuid()
	r.Limits = limits(&r)
	return r
}

// limits says what the user the probes ran as cannot do, and why: the
// privileges vigil's modes need beyond the probed features.
func limits(r *Report) []string {
	var out []string
	if missing := r.BindingMissing(); len(missing) > 0 {
		names := make([]string, len(missing))
		for i, f := range missing {
			names[i] = f.Name
		}
		why := "the eBPF binding cannot be loaded (" + strings.Join(names, ", ") + " unavailable)"
		if r.UID != 0 {
			why = fmt.Sprintf("the eBPF binding cannot be loaded as uid %d: loading BPF programs and maps needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_RESOURCE)", r.UID)
		}
		out = append(out, "vigil run: "+why+"; policies whose allows depend on pointer arguments (the default policy among them) are refused, "+
			"and only --unverified runs them, with such allows continued unbound")
	}
	if r.UID != 0 {
		out = append(out,
			fmt.Sprintf("vigil run --userns: mapping host ids 100000-165535 needs root (CAP_SETUID and CAP_SETGID in the initial user namespace); uid %d is not root", r.UID),
			"vigil agent: runtimes hand listeners over as root, and supervising their containers means reading and answering root's processes: run it as root",
			"vigil observe: loads eBPF programs, which needs root")
	}
	return out
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
	r := Report{Kernel: kernel, CanRun: true, CanRunUnverified: true}
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
			r.CanRun, r.CanRunUnverified = false, false
		}
	}
	if len(r.BindingMissing()) > 0 {
		r.CanRun = false
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
