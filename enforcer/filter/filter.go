// Package filter compiles vigil's in-kernel seccomp program: the syscalls a
// policy inspects go to the user-notification listener, a few hardening rules
// answer in the kernel, and everything else runs natively.
//
// libseccomp builds the program but never loads it: seccomp_load would turn on
// TSYNC and filter the supervisor itself. The program is exported as raw
// sock_filter bytes and installed by the watchee's init step (package launch)
// with the flags vigil needs.
package filter

import (
	"fmt"
	"io"
	"os"
	"sort"

	seccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/sysinfo"
)

// Spec says what the program does.
type Spec struct {
	// Notify lists the syscall numbers sent to the listener.
	Notify []int
	// NoHardening drops the default hardening rules (docs/design.md §2); tests and
	// benchmarks that need a bare filter use it.
	NoHardening bool
	// DevicesOnly lists mknod/mknodat numbers (among Notify) to notify only
	// for character and block devices: FIFOs, sockets and regular files
	// need no privilege and run natively (LXD's S_IFCHR/S_IFBLK prefilter).
	DevicesOnly []int
	// FlagsOnly notifies syscalls (among Notify) only when their first
	// argument, a flags register, has one of the bits of their mask set:
	// clone(2) under a policy whose verdict depends on those bits alone and
	// is a plain allow without them (policy.RegisterFlagsPrescreen). The
	// other calls run natively.
	FlagsOnly map[int]uint64
	// AddrOnly lists sendto numbers (not among Notify) to notify only when
	// the destination address argument is not NULL: a send without one
	// goes to the socket's connected peer, which connect vetted, and runs
	// natively (issue 9: connect rules hold for sends that name a peer).
	// MSG_FASTOPEN needs no test of its own: without a destination it
	// connects nowhere new (tcp_sendmsg_fastopen's connect of a NULL
	// address is EINVAL, or goes to the address a TCP_FASTOPEN_CONNECT
	// connect(2) already gave).
	AddrOnly []int
	// WatchRoot also notifies the syscalls that can change a watchee's root
	// directory or mount namespace (RootWatch), so the supervisor knows when
	// it may no longer resolve paths from its own root.
	WatchRoot bool
	// WatchMounts also notifies the syscalls that can move, unmount or
	// create a mount (MountWatch), so the supervisor knows when the
	// kernel's path of an object may no longer be its name in the reference
	// view, and when a mount id it read may now stand for another mount.
	WatchMounts bool
}

// RootWatch lists the syscalls WatchRoot traps. unshare and clone are
// trapped only with CLONE_NEWNS (a register argument the filter can test);
// clone3 hides its flags behind a pointer and is trapped whole.
var RootWatch = []string{"chroot", "pivot_root", "setns", "unshare", "clone", "clone3"}

// MountWatch lists the syscalls WatchMounts traps: umount2 (it frees a
// mount id for reuse), move_mount and pivot_root, and those that create
// mounts, whose ids the kernel takes from freed ones: mount, open_tree (a
// clone of a tree) and fsmount. They are rare, and each one is answered
// only after vigil has dropped what it read of mount tables.
var MountWatch = []string{"mount", "umount2", "move_mount", "pivot_root", "open_tree", "fsmount"}

// Hardening is one in-kernel rule that stops a watchee from escaping
// supervision. Rules whose syscall a policy traps are left to the policy.
type Hardening struct {
	Syscall string
	Errno   unix.Errno
	// Why is shown by `vigil policy check` and in the docs.
	Why string
}

// HardeningRules returns the default hardening rules.
func HardeningRules() []Hardening {
	return []Hardening{
		{"seccomp", unix.EPERM, "a nested SECCOMP_FILTER_FLAG_NEW_LISTENER would let the watchee answer its own notifications"},
		{"io_uring_setup", unix.EPERM, "io_uring submits syscalls that per-syscall filtering never sees"},
		{"ptrace", unix.EPERM, "a supervised process must not trace or rewrite another supervised process"},
		{"open_by_handle_at", unix.EPERM, "opening by file handle names no path, so it would bypass every path rule"},
		// A root watchee must not switch supervision off (README, "What
		// vigil promises against a root watchee").
		{"bpf", unix.EPERM, "a root watchee could find vigil's maps and links by id and delete its own binding or detach the checks"},
		{"init_module", unix.EPERM, "a kernel module runs with the kernel's privilege and could undo any check"},
		{"finit_module", unix.EPERM, "a kernel module runs with the kernel's privilege and could undo any check"},
		{"delete_module", unix.EPERM, "unloading modules the system relies on is not the watchee's business under supervision"},
		{"kexec_load", unix.EPERM, "kexec replaces the running kernel, and with it every check"},
		{"kexec_file_load", unix.EPERM, "kexec replaces the running kernel, and with it every check"},
		{"pidfd_getfd", unix.EPERM, "a root watchee could take vigil's seccomp listener and answer its own calls, or take a descriptor from a sibling during a binding's kill window"},
		{"process_vm_writev", unix.EPERM, "a root watchee could rewrite vigil's memory (its policy, its answers)"},
		{"userfaultfd", unix.EPERM, "a userfaultfd page behind an argument stalls vigil's reads of the watchee's memory"},
		{"fanotify_init", unix.EPERM, "fanotify permission events would make vigil's own file accesses wait for the watchee's answer"},
		{"iopl", unix.EPERM, "raw I/O port access reaches the hardware under the kernel"},
		{"ioperm", unix.EPERM, "raw I/O port access reaches the hardware under the kernel"},
	}
}

// Compile returns the program as raw struct sock_filter bytes (8 bytes per
// instruction, native endian), ready for seccomp(SECCOMP_SET_MODE_FILTER).
//
// Non-native architectures (i386 via int $0x80, x32) hit libseccomp's
// bad-arch action, set to KILL_PROCESS: vigil decodes only x86_64 calls and a
// mis-decoded compat call would be a bypass.
func Compile(spec Spec) ([]byte, error) {
	f, err := seccomp.NewFilter(seccomp.ActAllow)
	if err != nil {
		return nil, fmt.Errorf("creating seccomp filter: %w", err)
	}
	defer f.Release()
	if err := f.SetBadArchAction(seccomp.ActKillProcess); err != nil {
		return nil, fmt.Errorf("setting bad-arch action: %w", err)
	}
	// The program is installed by the init step, which decides about
	// NO_NEW_PRIVS itself; libseccomp's attribute only matters for Load.
	if err := f.SetNoNewPrivsBit(false); err != nil {
		return nil, fmt.Errorf("clearing no-new-privs attribute: %w", err)
	}
	notify := append([]int(nil), spec.Notify...)
	sort.Ints(notify)
	trapped := make(map[int]bool, len(notify))
	devOnly := make(map[int]bool, len(spec.DevicesOnly))
	for _, nr := range spec.DevicesOnly {
		devOnly[nr] = true
	}
	for i, nr := range notify {
		if i > 0 && notify[i-1] == nr {
			continue
		}
		// A flags-only call is not marked trapped: the root watch still
		// adds its own CLONE_NEWNS condition, ORed with these.
		mask, flagsOnly := spec.FlagsOnly[nr]
		trapped[nr] = !flagsOnly
		var err error
		switch {
		case flagsOnly:
			err = addFlagRules(f, nr, mask)
		case devOnly[nr]:
			err = addDeviceRules(f, nr)
		default:
			err = f.AddRuleExact(seccomp.ScmpSyscall(nr), seccomp.ActNotify)
		}
		if err != nil {
			return nil, fmt.Errorf("adding notify rule for %s: %w", sysinfo.Name(nr), err)
		}
	}
	for _, nr := range spec.AddrOnly {
		if trapped[nr] {
			continue // the policy traps it whole already
		}
		if err := addAddrOnly(f, nr); err != nil {
			return nil, fmt.Errorf("adding address rule for %s: %w", sysinfo.Name(nr), err)
		}
		trapped[nr] = true
	}
	if spec.WatchRoot {
		if err := addRootWatch(f, trapped); err != nil {
			return nil, err
		}
	}
	if spec.WatchMounts {
		if err := addMountWatch(f, trapped); err != nil {
			return nil, err
		}
	}
	if !spec.NoHardening {
		if err := addHardening(f, trapped); err != nil {
			return nil, err
		}
	}
	return export(f)
}

func addHardening(f *seccomp.ScmpFilter, trapped map[int]bool) error {
	for _, h := range HardeningRules() {
		nr, ok := sysinfo.Number(h.Syscall)
		if !ok {
			return fmt.Errorf("hardening rule names unknown syscall %s", h.Syscall)
		}
		if trapped[nr] {
			continue
		}
		act := seccomp.ActErrno.SetReturnCode(int16(h.Errno))
		var err error
		if h.Syscall == "seccomp" {
			// Only SECCOMP_SET_MODE_FILTER with NEW_LISTENER is refused:
			// watchees may still add filters that restrict themselves.
			var c1, c2 seccomp.ScmpCondition
			c1, err = seccomp.MakeCondition(0, seccomp.CompareEqual, unix.SECCOMP_SET_MODE_FILTER)
			if err == nil {
				c2, err = seccomp.MakeCondition(1, seccomp.CompareMaskedEqual,
					unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER)
			}
			if err == nil {
				err = f.AddRuleConditionalExact(seccomp.ScmpSyscall(nr), act, []seccomp.ScmpCondition{c1, c2})
			}
		} else {
			err = f.AddRuleExact(seccomp.ScmpSyscall(nr), act)
		}
		if err != nil {
			return fmt.Errorf("adding hardening rule for %s: %w", h.Syscall, err)
		}
	}
	return nil
}

// addDeviceRules notifies mknod/mknodat only when the mode's file type is
// S_IFCHR or S_IFBLK.
func addDeviceRules(f *seccomp.ScmpFilter, nr int) error {
	modeArg := uint(1) // mknod(path, mode, dev)
	if sysinfo.Name(nr) == "mknodat" {
		modeArg = 2 // mknodat(dirfd, path, mode, dev)
	}
	for _, typ := range []uint64{unix.S_IFCHR, unix.S_IFBLK} {
		c, err := seccomp.MakeCondition(modeArg, seccomp.CompareMaskedEqual, unix.S_IFMT, typ)
		if err != nil {
			return err
		}
		if err := f.AddRuleConditionalExact(seccomp.ScmpSyscall(nr), seccomp.ActNotify, []seccomp.ScmpCondition{c}); err != nil {
			return err
		}
	}
	return nil
}

// addFlagRules notifies syscall nr when its first argument has any bit of
// mask set: one rule per bit (libseccomp ORs the rules of a syscall and has
// no "masked not equal").
func addFlagRules(f *seccomp.ScmpFilter, nr int, mask uint64) error {
	for b := uint64(1); b != 0; b <<= 1 {
		if mask&b == 0 {
			continue
		}
		c, err := seccomp.MakeCondition(0, seccomp.CompareMaskedEqual, b, b)
		if err != nil {
			return err
		}
		if err := f.AddRuleConditionalExact(seccomp.ScmpSyscall(nr), seccomp.ActNotify, []seccomp.ScmpCondition{c}); err != nil {
			return err
		}
	}
	return nil
}

// addAddrOnly notifies sendto(fd, buf, len, flags, dest_addr, addrlen)
// only when dest_addr (argument 4) is not NULL.
func addAddrOnly(f *seccomp.ScmpFilter, nr int) error {
	c, err := seccomp.MakeCondition(4, seccomp.CompareNotEqual, 0)
	if err != nil {
		return err
	}
	return f.AddRuleConditionalExact(seccomp.ScmpSyscall(nr), seccomp.ActNotify, []seccomp.ScmpCondition{c})
}

func addRootWatch(f *seccomp.ScmpFilter, trapped map[int]bool) error {
	for _, name := range RootWatch {
		nr, ok := sysinfo.Number(name)
		if !ok {
			return fmt.Errorf("root watch names unknown syscall %s", name)
		}
		if trapped[nr] {
			continue // the policy traps it whole already
		}
		var err error
		switch name {
		case "unshare", "clone":
			var c seccomp.ScmpCondition
			c, err = seccomp.MakeCondition(0, seccomp.CompareMaskedEqual, unix.CLONE_NEWNS, unix.CLONE_NEWNS)
			if err == nil {
				err = f.AddRuleConditionalExact(seccomp.ScmpSyscall(nr), seccomp.ActNotify, []seccomp.ScmpCondition{c})
			}
		default:
			err = f.AddRuleExact(seccomp.ScmpSyscall(nr), seccomp.ActNotify)
		}
		if err != nil {
			return fmt.Errorf("adding root-watch rule for %s: %w", name, err)
		}
		trapped[nr] = true
	}
	return nil
}

func addMountWatch(f *seccomp.ScmpFilter, trapped map[int]bool) error {
	for _, name := range MountWatch {
		nr, ok := sysinfo.Number(name)
		if !ok {
			return fmt.Errorf("mount watch names unknown syscall %s", name)
		}
		if trapped[nr] {
			continue
		}
		if err := f.AddRuleExact(seccomp.ScmpSyscall(nr), seccomp.ActNotify); err != nil {
			return fmt.Errorf("adding mount-watch rule for %s: %w", name, err)
		}
		trapped[nr] = true
	}
	return nil
}

// export writes the program through a memfd: libseccomp 2.5 has no in-memory
// export (ExportBPFMem needs 2.6).
func export(f *seccomp.ScmpFilter) ([]byte, error) {
	fd, err := unix.MemfdCreate("vigil-filter", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("creating memfd for filter export: %w", err)
	}
	file := os.NewFile(uintptr(fd), "vigil-filter")
	defer file.Close()
	if err := f.ExportBPF(file); err != nil {
		return nil, fmt.Errorf("exporting seccomp filter: %w", err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("rewinding filter memfd: %w", err)
	}
	prog, err := io.ReadAll(file)
	if err != nil {
		return nil, fmt.Errorf("reading exported filter: %w", err)
	}
	if len(prog) == 0 || len(prog)%8 != 0 {
		return nil, fmt.Errorf("exported filter has invalid length %d", len(prog))
	}
	return prog, nil
}
