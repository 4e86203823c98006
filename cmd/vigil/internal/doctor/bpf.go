package doctor

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/features"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
)

// btfPath is where the kernel publishes its own BTF.
const btfPath = "/sys/kernel/btf/vmlinux"

// probeBPF loads (and where it matters attaches and detaches at once) the
// smallest program of each kind vigil's eBPF side uses or avoids. Loads are
// the test: a lockdown or an LSM that refuses a program type answers EPERM
// however new the kernel is.
func probeBPF(found map[string]result, sec securityfs) {
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK; RemoveMemlock
	// raises it only on those.
	_ = rlimit.RemoveMemlock()
	found[BPFRingbuf] = fromFeature(features.HaveMapType(ebpf.RingBuf), "BPF_MAP_TYPE_RINGBUF")
	found[BPFRawTracepoint] = rawTracepoint()
	found[BPFSendSignal] = fromFeature(features.HaveProgramHelper(ebpf.RawTracepoint, asm.FnSendSignal), "bpf_send_signal in a raw tracepoint program")
	found[BPFProbeReadUser] = fromFeature(features.HaveProgramHelper(ebpf.RawTracepoint, asm.FnProbeReadUser), "bpf_probe_read_user in a raw tracepoint program")
	found[BTFVmlinux] = kernelBTF()
	found[BPFFentry] = btfProgram(ebpf.Tracing, ebpf.AttachTraceFEntry, "do_sys_openat2", "fentry/do_sys_openat2")
	found[BPFLSM] = bpfLSM(btfProgram(ebpf.LSM, ebpf.AttachLSMMac, "file_open", "lsm/file_open"), sec)
	found[Kprobes] = kprobe()
}

// fromFeature turns a features.Have* answer into a result; only nil and
// ErrNotSupported are conclusive, anything else (EPERM without root) is
// reported as it is.
func fromFeature(err error, what string) result {
	switch {
	case err == nil:
		return yes("%s", what)
	case errors.Is(err, ebpf.ErrNotSupported):
		return no("%s: not supported", what)
	}
	return no("%s: %s%s", what, errText(err), rootHint())
}

func rootHint() string {
	if isRoot() {
		return ""
	}
	return " (run as root)"
}

// trivialProgram returns "r0 = 0; exit".
func trivialProgram() asm.Instructions {
	return asm.Instructions{asm.LoadImm(asm.R0, 0, asm.DWord), asm.Return()}
}

// rawTracepoint loads a raw tracepoint program and attaches it to sys_enter,
// the tracepoint the eBPF binding uses, then detaches it.
func rawTracepoint() result {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.RawTracepoint, License: "GPL", Instructions: trivialProgram(),
	})
	if err != nil {
		return no("loading a raw tracepoint program: %s%s", errText(err), rootHint())
	}
	defer prog.Close()
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sys_enter", Program: prog})
	if err != nil {
		return no("attaching to raw_tp/sys_enter: %s", errText(err))
	}
	l.Close()
	return yes("attached to raw_tp/sys_enter and detached")
}

// kernelBTF checks that the kernel's BTF is there and parses.
func kernelBTF() result {
	if _, err := os.Stat(btfPath); err != nil {
		return no("%s: %s", btfPath, errText(err))
	}
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return no("parsing %s: %v", btfPath, err)
	}
	if _, err := spec.AnyTypeByName("task_struct"); err != nil {
		return no("%s has no task_struct: %v", btfPath, err)
	}
	return yes("%s parses (task_struct found)", btfPath)
}

// btfProgram loads a BTF-attached program (fentry, LSM) against target and,
// if the load succeeds, attaches and detaches it.
func btfProgram(typ ebpf.ProgramType, at ebpf.AttachType, target, what string) result {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: typ, AttachType: at, AttachTo: target, License: "GPL", Instructions: trivialProgram(),
	})
	if err != nil {
		return no("loading %s: %s%s", what, errText(err), rootHint())
	}
	defer prog.Close()
	var l link.Link
	if typ == ebpf.LSM {
		l, err = link.AttachLSM(link.LSMOptions{Program: prog})
	} else {
		l, err = link.AttachTracing(link.TracingOptions{Program: prog, AttachType: at})
	}
	if err != nil {
		return no("%s loads but attaching fails: %s", what, errText(err))
	}
	l.Close()
	return yes("%s loaded, attached and detached", what)
}

// bpfLSM qualifies the LSM program probe with the active LSM list: a kernel
// built with CONFIG_BPF_LSM loads and attaches BPF LSM programs even when it
// was booted without "bpf" in its LSM list (lsm= or CONFIG_LSM), and then
// never runs them. Only a list that names bpf makes the feature available.
func bpfLSM(prog result, sec securityfs) result {
	if !prog.Available {
		return prog
	}
	if sec.err != nil {
		return no("%s, but whether it runs is unknown: %v", prog.Detail, sec.err)
	}
	list := strings.TrimSpace(sec.lsm)
	if list == "" {
		return no("%s, but %s/lsm is missing or empty: whether it runs is unknown", prog.Detail, securityfsDir)
	}
	if !lsmActive(list, "bpf") {
		return no("%s, but bpf is not in the active LSM list (%s): BPF LSM programs never run; boot with lsm=%s,bpf", prog.Detail, list, list)
	}
	return yes("%s; bpf is in the active LSM list (%s)", prog.Detail, list)
}

// lsmActive reports whether name is in a comma-separated LSM list.
func lsmActive(list, name string) bool {
	for _, l := range strings.Split(list, ",") {
		if strings.TrimSpace(l) == name {
			return true
		}
	}
	return false
}

// kprobe attaches a kprobe program to do_sys_openat2 through whichever
// interface cilium/ebpf finds (the kprobe PMU, else tracefs).
func kprobe() result {
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.Kprobe, License: "GPL", Instructions: trivialProgram(),
	})
	if err != nil {
		return no("loading a kprobe program: %s%s", errText(err), rootHint())
	}
	defer prog.Close()
	l, err := link.Kprobe("do_sys_openat2", prog, nil)
	if err != nil {
		return no("attaching kprobe/do_sys_openat2: %s", kprobeError(err))
	}
	l.Close()
	return yes("attached kprobe/do_sys_openat2 and detached")
}

// kprobePMU is the perf event source a kernel with kprobes registers.
const kprobePMU = "/sys/bus/event_source/devices/kprobe"

// kprobeError condenses cilium/ebpf's chain of fallbacks (kprobe PMU, then
// tracefs kprobe_events) into what failed at each step.
func kprobeError(err error) string {
	pmu := "kprobe PMU present"
	if _, serr := os.Stat(kprobePMU); serr != nil {
		pmu = "no kprobe PMU (" + kprobePMU + ")"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return fmt.Sprintf("%s; tracefs fallback: %s", pmu, msg)
}
