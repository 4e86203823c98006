package emulate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"golang.org/x/sys/unix"
)

// Since Linux 6.10 (commit 42bd2af59504, "vfs: relax linkat() AT_EMPTY_PATH
// - aka flink() - requirements") linkat(fd, "", ..., AT_EMPTY_PATH) links
// the file fd refers to when the caller has CAP_DAC_READ_SEARCH in the
// file's opener's user namespace, or when the file was opened with the
// caller's current credentials: path_init compares the struct cred pointers,
// f_cred == current_cred(). A process's cred pointer changes at every
// execve, credential change (setuid, capset, setfsuid...) and for every new
// process (fork copies the struct), so the second condition means "opened by
// this process since its credentials last changed". Nothing in /proc shows
// it; a BPF iterator over the caller's descriptors does: for each one it
// reports whether the file's f_cred is the task's cred.
//
// credIter is that program, loaded on first use. Its output is one record
// per descriptor: fd (u32) and 1 when f_cred == task->cred, else 0 (u32).
type credIter struct {
	prog *ebpf.Program
}

// credRecordSize is the size of one record the iterator writes.
const credRecordSize = 8

// loadCredIter builds and loads the iterator for this kernel: the offsets of
// task_struct.cred and file.f_cred come from the kernel's BTF.
func loadCredIter() (*credIter, error) {
	spec, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("loading kernel BTF: %w", err)
	}
	credOff, err := memberOffset(spec, "task_struct", "cred")
	if err != nil {
		return nil, err
	}
	fcredOff, err := memberOffset(spec, "file", "f_cred")
	if err != nil {
		return nil, err
	}
	// struct bpf_iter__task_file { meta; task; u32 fd; file; }: every
	// pointer is 8 bytes, fd at 16, file at 24. The creds are read with
	// bpf_probe_read_kernel into the stack, so the comparison is of two
	// scalars (the verifier refuses pointer comparisons to unprivileged
	// loaders, and this way nothing depends on it).
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.LoadMem(asm.R7, asm.R6, 8, asm.DWord), // ctx->task
		asm.JEq.Imm(asm.R7, 0, "out"),
		asm.LoadMem(asm.R8, asm.R6, 24, asm.DWord), // ctx->file
		asm.JEq.Imm(asm.R8, 0, "out"),
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, -16),
		asm.Mov.Imm(asm.R2, 8),
		asm.Mov.Reg(asm.R3, asm.R7),
		asm.Add.Imm(asm.R3, int32(credOff)),
		asm.FnProbeReadKernel.Call(), // fp-16 = task->cred
		asm.Mov.Reg(asm.R1, asm.RFP),
		asm.Add.Imm(asm.R1, -24),
		asm.Mov.Imm(asm.R2, 8),
		asm.Mov.Reg(asm.R3, asm.R8),
		asm.Add.Imm(asm.R3, int32(fcredOff)),
		asm.FnProbeReadKernel.Call(), // fp-24 = file->f_cred
		asm.LoadMem(asm.R1, asm.RFP, -16, asm.DWord),
		asm.LoadMem(asm.R2, asm.RFP, -24, asm.DWord),
		asm.Mov.Imm(asm.R3, 0),
		asm.JNE.Reg(asm.R1, asm.R2, "store"),
		asm.Mov.Imm(asm.R3, 1),
		asm.LoadMem(asm.R4, asm.R6, 16, asm.Word).WithSymbol("store"), // ctx->fd
		asm.StoreMem(asm.RFP, -8, asm.R4, asm.Word),
		asm.StoreMem(asm.RFP, -4, asm.R3, asm.Word),
		asm.LoadMem(asm.R1, asm.R6, 0, asm.DWord), // ctx->meta
		asm.LoadMem(asm.R1, asm.R1, 0, asm.DWord), // meta->seq
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -8),
		asm.Mov.Imm(asm.R3, credRecordSize),
		asm.FnSeqWrite.Call(),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	}
	prog, err := ebpf.NewProgramWithOptions(&ebpf.ProgramSpec{
		Name:         "vigil_fcred",
		Type:         ebpf.Tracing,
		AttachType:   ebpf.AttachTraceIter,
		AttachTo:     "task_file",
		Instructions: insns,
		// bpf_probe_read_kernel and bpf_seq_write are GPL-only helpers.
		License: "Dual BSD/GPL",
	}, ebpf.ProgramOptions{KernelTypes: spec})
	if err != nil {
		return nil, fmt.Errorf("loading the f_cred iterator: %w", err)
	}
	return &credIter{prog: prog}, nil
}

// memberOffset returns the byte offset of member in struct name, looking
// into anonymous structs and unions.
func memberOffset(spec *btf.Spec, name, member string) (uint32, error) {
	var st *btf.Struct
	if err := spec.TypeByName(name, &st); err != nil {
		return 0, fmt.Errorf("finding struct %s in kernel BTF: %w", name, err)
	}
	if off, ok := findMember(st.Members, member); ok {
		return off, nil
	}
	return 0, fmt.Errorf("struct %s has no member %s in kernel BTF", name, member)
}

func findMember(ms []btf.Member, name string) (uint32, bool) {
	for _, m := range ms {
		if m.Name == name {
			return m.Offset.Bytes(), true
		}
		if m.Name != "" {
			continue
		}
		var inner []btf.Member
		switch t := btf.UnderlyingType(m.Type).(type) {
		case *btf.Struct:
			inner = t.Members
		case *btf.Union:
			inner = t.Members
		}
		if off, ok := findMember(inner, name); ok {
			return m.Offset.Bytes() + off, true
		}
	}
	return 0, false
}

// openedWithCurrentCreds reports whether descriptor fd of thread tid refers
// to a file opened with tid's current credentials (f_cred == current_cred()).
func (it *credIter) openedWithCurrentCreds(tid, fd int) (bool, error) {
	r, err := it.open(tid)
	if err != nil {
		return false, err
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		return false, fmt.Errorf("reading the f_cred iterator: %w", err)
	}
	for ; len(b) >= credRecordSize; b = b[credRecordSize:] {
		if int(binary.NativeEndian.Uint32(b)) == fd {
			return binary.NativeEndian.Uint32(b[4:]) == 1, nil
		}
	}
	return false, unix.EBADF
}

// open links the iterator to thread tid only and returns its output.
func (it *credIter) open(tid int) (io.ReadCloser, error) {
	lfd, err := linkIterToTask(it.prog.FD(), tid)
	if err != nil {
		return nil, fmt.Errorf("linking the f_cred iterator to thread %d: %w", tid, err)
	}
	defer unix.Close(lfd)
	fd, err := createIter(lfd)
	if err != nil {
		return nil, fmt.Errorf("creating the f_cred iterator: %w", err)
	}
	return os.NewFile(uintptr(fd), "vigil-fcred-iter"), nil
}

func (it *credIter) close() {
	if it != nil && it.prog != nil {
		it.prog.Close()
	}
}

// errNoCredIter is returned when this kernel cannot run the iterator; the
// caller then applies only the capability half of the rule, which is the
// whole rule before Linux 6.10.
var errNoCredIter = errors.New("f_cred iterator unavailable")

// credCheck returns the f_cred iterator, loading it on first use. On a
// kernel without the credential half of the rule (before 6.10) there is
// nothing to check.
func (e *Emulator) credCheck() (*credIter, error) {
	e.credOnce.Do(func() {
		relaxed, err := flinkProbe()
		if err != nil || !relaxed {
			if err == nil {
				err = errors.New("this kernel links a descriptor only with CAP_DAC_READ_SEARCH (before Linux 6.10)")
			}
			e.credErr = fmt.Errorf("%w: %v", errNoCredIter, err)
			return
		}
		e.cred, e.credErr = loadCredIter()
		if e.credErr != nil {
			e.log.Warn().Err(e.credErr).Msg("linkat(fd, \"\", AT_EMPTY_PATH) without CAP_DAC_READ_SEARCH is refused under vigil even for the watchee's own files")
			e.credErr = fmt.Errorf("%w: %v", errNoCredIter, e.credErr)
		}
	})
	return e.cred, e.credErr
}

// linkOwnFile finishes linkat(fd, "", ..., AT_EMPTY_PATH) after the
// worker's own attempt failed with ENOENT (first). The worker, with the
// watchee's capabilities, settles the CAP_DAC_READ_SEARCH half of the
// kernel's rule, but its credentials are never the file's f_cred: the
// watchee's may be. When they are, the kernel would have let the watchee
// link the file, so the worker links it through its /proc magic link with
// AT_SYMLINK_FOLLOW, which has no credential condition and reaches the same
// vfs_link and may_linkat checks (a file that is not linkable still gets
// ENOENT). When the check cannot be made (no BTF, no iterators), the
// capability half is all vigil applies, which is the whole rule before
// Linux 6.10.
func (e *Emulator) linkOwnFile(oldp, newp *Prepared, first Result) (Result, error) {
	it, err := e.credCheck()
	if err != nil {
		return first, nil
	}
	same, err := it.openedWithCurrentCreds(oldp.c.Tid, oldp.watcheeFd)
	if err != nil {
		// The descriptor is gone (EBADF), or the iterator failed: the
		// answer stays the kernel's without the credential half.
		e.log.Debug().Err(err).Msg("f_cred check of a linkat descriptor failed")
		return first, nil
	}
	if !same || !sameFile(oldp) {
		return first, nil
	}
	in := emptyFdSet()
	in.parent2, in.obj2 = newp.ParentFd, oldp.ObjectFd
	return e.do(oldp, &request{Op: opLink, Lookup: LookupFollow, Name2: newp.Name}, in)
}

// sameFile reports whether the watchee's descriptor still refers to the open
// file description vigil holds (kcmp KCMP_FILE), so the iterator judged the
// file vigil will link. Without kcmp (CONFIG_KCMP off) it trusts the
// descriptor number.
func sameFile(p *Prepared) bool {
	r, _, e := unix.Syscall6(unix.SYS_KCMP, uintptr(os.Getpid()), uintptr(p.c.Tid), kcmpFile,
		uintptr(p.ObjectFd), uintptr(p.watcheeFd), 0)
	if e == unix.ENOSYS {
		return true
	}
	return e == 0 && r == 0
}

// kcmpFile is KCMP_FILE (include/uapi/linux/kcmp.h).
const kcmpFile = 0

// LinkatEmptyPathNeedsCapability reports whether this kernel refuses every
// linkat with AT_EMPTY_PATH, named or not, with ENOENT unless the caller has
// CAP_DAC_READ_SEARCH (Linux before 6.10), where later kernels look only at
// empty names and also accept the caller's own files (credIter).
func LinkatEmptyPathNeedsCapability() bool {
	relaxed, err := flinkProbe()
	return err == nil && !relaxed
}

var (
	flinkOnce    sync.Once
	flinkRelaxed bool
	flinkErr     error
)

// flinkProbe asks the kernel once (flinkAsk).
func flinkProbe() (bool, error) {
	flinkOnce.Do(func() { flinkRelaxed, flinkErr = flinkAsk() })
	return flinkRelaxed, flinkErr
}

// flinkAsk reports whether this kernel lets linkat(fd, "", ...,
// AT_EMPTY_PATH) use a file its caller opened with its current credentials
// without CAP_DAC_READ_SEARCH (Linux 6.10, see credIter). It asks the kernel
// on a thread whose effective set lacks that capability, with a file the
// thread opens then and a new name relative to descriptor -1: a kernel with
// the relaxed rule accepts the file and fails the new name with EBADF, one
// without refuses with ENOENT before any lookup. Nothing is linked either way.
func flinkAsk() (bool, error) {
	runtime.LockOSThread()
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var saved [2]unix.CapUserData
	if err := unix.Capget(&hdr, &saved[0]); err != nil {
		runtime.UnlockOSThread()
		return false, fmt.Errorf("capget: %w", err)
	}
	probe := saved
	probe[0].Effective &^= 1 << unix.CAP_DAC_READ_SEARCH
	if err := unix.Capset(&hdr, &probe[0]); err != nil {
		runtime.UnlockOSThread()
		return false, fmt.Errorf("capset: %w", err)
	}
	var errno error
	fd, err := unix.Open("/", unix.O_PATH|unix.O_CLOEXEC, 0)
	if err == nil {
		errno = unix.Linkat(fd, "", -1, "vigil-probe", unix.AT_EMPTY_PATH)
		unix.Close(fd)
	}
	if rerr := unix.Capset(&hdr, &saved[0]); rerr != nil {
		// The thread keeps a smaller effective set: let it end with
		// this goroutine rather than serve others.
		return false, fmt.Errorf("restoring capabilities: %w", rerr)
	}
	runtime.UnlockOSThread()
	if err != nil {
		return false, fmt.Errorf("opening /: %w", err)
	}
	return errno == unix.EBADF, nil
}
