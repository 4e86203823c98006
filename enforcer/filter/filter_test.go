package filter

import (
	"encoding/binary"
	"fmt"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/sysinfo"
)

// seccompData is struct seccomp_data as the filter sees it.
type seccompData struct {
	nr   int32
	arch uint32
	ip   uint64
	args [6]uint64
}

func (d *seccompData) bytes() []byte {
	b := make([]byte, 64)
	binary.LittleEndian.PutUint32(b[0:], uint32(d.nr))
	binary.LittleEndian.PutUint32(b[4:], d.arch)
	binary.LittleEndian.PutUint64(b[8:], d.ip)
	for i, a := range d.args {
		binary.LittleEndian.PutUint64(b[16+8*i:], a)
	}
	return b
}

// run interprets a classic BPF seccomp program the way the kernel does,
// for the instructions libseccomp emits; anything else fails the test so a
// new libseccomp cannot silently go unchecked.
func run(t *testing.T, prog []byte, d seccompData) uint32 {
	t.Helper()
	data := d.bytes()
	var a, x uint32
	n := len(prog) / 8
	for pc := 0; pc < n; pc++ {
		ins := prog[pc*8:]
		code := binary.LittleEndian.Uint16(ins[0:])
		jt, jf := int(ins[2]), int(ins[3])
		k := binary.LittleEndian.Uint32(ins[4:])
		switch code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if int(k)+4 > len(data) {
				t.Fatalf("pc %d: load beyond seccomp_data at %d", pc, k)
			}
			a = binary.LittleEndian.Uint32(data[k:])
		case unix.BPF_LD | unix.BPF_IMM:
			a = k
		case unix.BPF_LDX | unix.BPF_IMM:
			x = k
		case unix.BPF_MISC | unix.BPF_TAX:
			x = a
		case unix.BPF_MISC | unix.BPF_TXA:
			a = x
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			a &= k
		case unix.BPF_ALU | unix.BPF_OR | unix.BPF_K:
			a |= k
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(k)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
			pc += cond(a == k, jt, jf)
		case unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K:
			pc += cond(a > k, jt, jf)
		case unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
			pc += cond(a >= k, jt, jf)
		case unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			pc += cond(a&k != 0, jt, jf)
		case unix.BPF_RET | unix.BPF_K:
			return k
		case unix.BPF_RET | unix.BPF_A:
			return a
		default:
			t.Fatalf("pc %d: instruction 0x%04x not interpreted", pc, code)
		}
	}
	t.Fatal("program fell off its end")
	return 0
}

func cond(c bool, jt, jf int) int {
	if c {
		return jt
	}
	return jf
}

func nr(t *testing.T, name string) int32 {
	n, ok := sysinfo.Number(name)
	if !ok {
		t.Fatalf("unknown syscall %s", name)
	}
	return int32(n)
}

const (
	retAllow       = unix.SECCOMP_RET_ALLOW
	retNotify      = unix.SECCOMP_RET_USER_NOTIF
	retKillProcess = unix.SECCOMP_RET_KILL_PROCESS
)

func retErrno(e unix.Errno) uint32 { return unix.SECCOMP_RET_ERRNO | uint32(e) }

func TestCompiledProgramTrapsOnlyWhatThePolicyNames(t *testing.T) {
	prog, err := Compile(Spec{Notify: []int{int(nr(t, "openat")), int(nr(t, "connect"))}, WatchRoot: true})
	if err != nil {
		t.Fatal(err)
	}
	x86 := uint32(unix.AUDIT_ARCH_X86_64)
	cases := []struct {
		name string
		d    seccompData
		want uint32
	}{
		{"openat is notified", seccompData{nr: nr(t, "openat"), arch: x86}, retNotify},
		{"connect is notified", seccompData{nr: nr(t, "connect"), arch: x86}, retNotify},
		{"read runs natively", seccompData{nr: nr(t, "read"), arch: x86}, retAllow},
		{"getpid runs natively", seccompData{nr: nr(t, "getpid"), arch: x86}, retAllow},
		{"open is not trapped", seccompData{nr: nr(t, "open"), arch: x86}, retAllow},
		{"i386 is killed", seccompData{nr: 5, arch: unix.AUDIT_ARCH_I386}, retKillProcess},
		{"unknown arch is killed", seccompData{nr: 0, arch: 0xdeadbeef}, retKillProcess},
		{"io_uring_setup is refused", seccompData{nr: nr(t, "io_uring_setup"), arch: x86}, retErrno(unix.EPERM)},
		{"ptrace is refused", seccompData{nr: nr(t, "ptrace"), arch: x86}, retErrno(unix.EPERM)},
		{"nested listener is refused", seccompData{nr: nr(t, "seccomp"), arch: x86,
			args: [6]uint64{unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC}}, retErrno(unix.EPERM)},
		{"plain nested filter is allowed", seccompData{nr: nr(t, "seccomp"), arch: x86,
			args: [6]uint64{unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC}}, retAllow},
		{"chroot is watched", seccompData{nr: nr(t, "chroot"), arch: x86}, retNotify},
		{"clone3 is watched", seccompData{nr: nr(t, "clone3"), arch: x86}, retNotify},
		{"clone with CLONE_NEWNS is watched", seccompData{nr: nr(t, "clone"), arch: x86, args: [6]uint64{unix.CLONE_NEWNS | uint64(unix.SIGCHLD)}}, retNotify},
		{"plain clone runs natively", seccompData{nr: nr(t, "clone"), arch: x86, args: [6]uint64{uint64(unix.SIGCHLD)}}, retAllow},
		{"unshare without CLONE_NEWNS runs natively", seccompData{nr: nr(t, "unshare"), arch: x86, args: [6]uint64{unix.CLONE_NEWUTS}}, retAllow},
	}
	for _, tc := range cases {
		if got := run(t, prog, tc.d); got != tc.want {
			t.Errorf("%s: filter returned %#x, want %#x", tc.name, got, tc.want)
		}
	}
}

func TestX32CallsAreNeverTreatedAsNative(t *testing.T) {
	prog, err := Compile(Spec{Notify: []int{int(nr(t, "openat"))}})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"openat", "getpid", "io_uring_setup"} {
		d := seccompData{nr: nr(t, name) | 0x40000000, arch: unix.AUDIT_ARCH_X86_64}
		got := run(t, prog, d)
		if got == retAllow || got == retNotify {
			t.Errorf("x32 %s: filter returned %#x; an x32 call must be killed or refused", name, got)
		}
	}
}

func TestNoHardeningLeavesEscapesToTheKernel(t *testing.T) {
	prog, err := Compile(Spec{Notify: []int{int(nr(t, "openat"))}, NoHardening: true})
	if err != nil {
		t.Fatal(err)
	}
	d := seccompData{nr: nr(t, "ptrace"), arch: unix.AUDIT_ARCH_X86_64}
	if got := run(t, prog, d); got != retAllow {
		t.Fatalf("ptrace without hardening: %#x", got)
	}
}

func TestPolicyTrappingAHardenedSyscallWins(t *testing.T) {
	prog, err := Compile(Spec{Notify: []int{int(nr(t, "ptrace"))}})
	if err != nil {
		t.Fatal(err)
	}
	d := seccompData{nr: nr(t, "ptrace"), arch: unix.AUDIT_ARCH_X86_64}
	if got := run(t, prog, d); got != retNotify {
		t.Fatalf("ptrace named by the policy: %#x, want notify", got)
	}
}

func ExampleHardeningRules() {
	for _, h := range HardeningRules() {
		fmt.Println(h.Syscall, h.Errno)
	}
	// Output:
	// seccomp operation not permitted
	// io_uring_setup operation not permitted
	// ptrace operation not permitted
	// open_by_handle_at operation not permitted
	// bpf operation not permitted
	// init_module operation not permitted
	// finit_module operation not permitted
	// delete_module operation not permitted
	// kexec_load operation not permitted
	// kexec_file_load operation not permitted
	// pidfd_getfd operation not permitted
	// process_vm_writev operation not permitted
	// userfaultfd operation not permitted
	// fanotify_init operation not permitted
	// iopl operation not permitted
	// ioperm operation not permitted
}

func TestDeviceOnlyMknodLeavesFIFOsUntrapped(t *testing.T) {
	mknodat := int(nr(t, "mknodat"))
	prog, err := Compile(Spec{Notify: []int{mknodat, int(nr(t, "mknod"))}, DevicesOnly: []int{mknodat, int(nr(t, "mknod"))}})
	if err != nil {
		t.Fatal(err)
	}
	x86 := uint32(unix.AUDIT_ARCH_X86_64)
	for _, tc := range []struct {
		name string
		d    seccompData
		want uint32
	}{
		{"char device", seccompData{nr: int32(mknodat), arch: x86, args: [6]uint64{0, 0, unix.S_IFCHR | 0o666, 0x103}}, retNotify},
		{"block device", seccompData{nr: int32(mknodat), arch: x86, args: [6]uint64{0, 0, unix.S_IFBLK | 0o600, 0x800}}, retNotify},
		{"fifo", seccompData{nr: int32(mknodat), arch: x86, args: [6]uint64{0, 0, unix.S_IFIFO | 0o644}}, retAllow},
		{"socket", seccompData{nr: int32(mknodat), arch: x86, args: [6]uint64{0, 0, unix.S_IFSOCK | 0o644}}, retAllow},
		{"mknod fifo", seccompData{nr: nr(t, "mknod"), arch: x86, args: [6]uint64{0, unix.S_IFIFO | 0o644}}, retAllow},
		{"mknod char", seccompData{nr: nr(t, "mknod"), arch: x86, args: [6]uint64{0, unix.S_IFCHR | 0o644, 0x101}}, retNotify},
	} {
		if got := run(t, prog, tc.d); got != tc.want {
			t.Errorf("%s: %#x, want %#x", tc.name, got, tc.want)
		}
	}
}

func TestFlagsOnlyCloneIsNotifiedOnlyWithItsBits(t *testing.T) {
	clone := int(nr(t, "clone"))
	mask := uint64(unix.CLONE_NEWUSER | unix.CLONE_NEWNET)
	prog, err := Compile(Spec{Notify: []int{clone}, FlagsOnly: map[int]uint64{clone: mask}, WatchRoot: true})
	if err != nil {
		t.Fatal(err)
	}
	x86 := uint32(unix.AUDIT_ARCH_X86_64)
	for _, tc := range []struct {
		name  string
		flags uint64
		want  uint32
	}{
		{"fork", uint64(unix.SIGCHLD), retAllow},
		{"thread", unix.CLONE_VM | unix.CLONE_FS | unix.CLONE_FILES | unix.CLONE_SIGHAND | unix.CLONE_THREAD, retAllow},
		{"new user namespace", unix.CLONE_NEWUSER | uint64(unix.SIGCHLD), retNotify},
		{"new network namespace", unix.CLONE_NEWNET, retNotify},
		{"both", mask, retNotify},
		// The root watch's own condition still holds for clone.
		{"new mount namespace", unix.CLONE_NEWNS, retNotify},
		// The kernel drops the upper half of clone(2)'s flags: so does the
		// policy, and a bit there must not trap (nor hide a lower one).
		{"upper half only", 1 << 40, retAllow},
		{"upper half and a bit", 1<<40 | unix.CLONE_NEWUSER, retNotify},
	} {
		d := seccompData{nr: int32(clone), arch: x86, args: [6]uint64{tc.flags}}
		if got := run(t, prog, d); got != tc.want {
			t.Errorf("%s (%#x): %#x, want %#x", tc.name, tc.flags, got, tc.want)
		}
	}
}

func TestEveryHardeningRuleRefusesInTheKernel(t *testing.T) {
	prog, err := Compile(Spec{Notify: []int{int(nr(t, "openat"))}})
	if err != nil {
		t.Fatal(err)
	}
	bare, err := Compile(Spec{Notify: []int{int(nr(t, "openat"))}, NoHardening: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range HardeningRules() {
		d := seccompData{nr: nr(t, h.Syscall), arch: unix.AUDIT_ARCH_X86_64}
		if h.Syscall == "seccomp" {
			d.args = [6]uint64{unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER}
		}
		if got := run(t, prog, d); got != retErrno(h.Errno) {
			t.Errorf("%s: filter returned %#x, want errno %d", h.Syscall, got, h.Errno)
		}
		if got := run(t, bare, d); got != retAllow {
			t.Errorf("%s without hardening: filter returned %#x, want allow", h.Syscall, got)
		}
	}
}

func TestAddrOnlySendtoIsNotifiedOnlyWithADestination(t *testing.T) {
	sendto := int(nr(t, "sendto"))
	prog, err := Compile(Spec{Notify: []int{int(nr(t, "sendmsg"))}, AddrOnly: []int{sendto}})
	if err != nil {
		t.Fatal(err)
	}
	x86 := uint32(unix.AUDIT_ARCH_X86_64)
	for _, tc := range []struct {
		name string
		d    seccompData
		want uint32
	}{
		{"with an address", seccompData{nr: int32(sendto), arch: x86, args: [6]uint64{3, 0x1000, 5, 0, 0x7ffd0000, 16}}, retNotify},
		{"high address bits only", seccompData{nr: int32(sendto), arch: x86, args: [6]uint64{3, 0x1000, 5, 0, 1 << 40, 16}}, retNotify},
		{"MSG_FASTOPEN with an address", seccompData{nr: int32(sendto), arch: x86, args: [6]uint64{3, 0x1000, 5, unix.MSG_FASTOPEN, 0x7ffd0000, 16}}, retNotify},
		{"without an address", seccompData{nr: int32(sendto), arch: x86, args: [6]uint64{3, 0x1000, 5, unix.MSG_FASTOPEN, 0, 16}}, retAllow},
		{"sendmsg is notified whole", seccompData{nr: nr(t, "sendmsg"), arch: x86}, retNotify},
		{"send is write, not sendto", seccompData{nr: nr(t, "write"), arch: x86}, retAllow},
	} {
		if got := run(t, prog, tc.d); got != tc.want {
			t.Errorf("%s: %#x, want %#x", tc.name, got, tc.want)
		}
	}
	// A policy that names sendto itself traps it whole.
	prog, err = Compile(Spec{Notify: []int{sendto}, AddrOnly: []int{sendto}})
	if err != nil {
		t.Fatal(err)
	}
	if got := run(t, prog, seccompData{nr: int32(sendto), arch: x86}); got != retNotify {
		t.Fatalf("sendto named by the policy, NULL address: %#x, want notify", got)
	}
}
