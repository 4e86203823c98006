package enforcer

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/notify"
	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/loader"
)

// The decision core without root: the supervisor decides notifications
// this test makes up about its own thread (whose memory process_vm_readv
// reads and whose /proc the resolver walks, as for any watchee), answers
// them on a fake listener and writes bindings into fake eBPF maps. The
// kernel paths (RECV, CONTINUE, the eBPF checks) have their own privileged
// tests; these pin down what is decided and what is pinned.

// fakeListener records answers.
type fakeListener struct {
	mu    sync.Mutex
	resps []notify.Resp
	gone  bool // the notification no longer waits
}

func (f *fakeListener) Valid(uint64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.gone {
		return notify.ErrGone
	}
	return nil
}

// Answer records r; for a call that no longer waits it fails as the
// kernel's SEND does (ENOENT).
func (f *fakeListener) Answer(r notify.Resp) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.resps = append(f.resps, r)
	if f.gone {
		return notify.ErrGone
	}
	return nil
}

func (f *fakeListener) AddFD(*notify.AddFD) (int, error) { return -1, unix.ENOSYS }

// fakeMaps stands for the loader's maps.
type fakeMaps struct {
	mu     sync.Mutex
	binds  map[int]loader.Binding
	writes int
	closed chan struct{}
	once   sync.Once
	// flushes counts Flush calls.
	flushes atomic.Int64
}

func newFakeMaps() *fakeMaps {
	return &fakeMaps{binds: map[int]loader.Binding{}, closed: make(chan struct{})}
}

func (m *fakeMaps) Close() error                                       { m.once.Do(func() { close(m.closed) }); return nil }
func (m *fakeMaps) Watch(int) error                                    { return nil }
func (m *fakeMaps) SharesFiles(int) (bool, error)                      { return false, nil }
func (m *fakeMaps) CheckLost() (uint64, error)                         { return 0, nil }
func (m *fakeMaps) Flush() error                                       { m.flushes.Add(1); return nil }
func (m *fakeMaps) ViewEpoch() (uint64, bool)                          { return 0, false }
func (m *fakeMaps) CommEpoch() (uint64, bool)                          { return 0, false }
func (m *fakeMaps) SyscallTracepointsAttached() (bool, uint64, uint64) { return true, 0, 0 }
func (m *fakeMaps) ReadEvents(func(*loader.Event)) error               { <-m.closed; return nil }

func (m *fakeMaps) Bind(tid int, b *loader.Binding) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := *b
	// Reuse the argument buffer of the thread's last binding: the hot
	// path benchmark counts the supervisor's allocations, not the fake's.
	c.Arg = append(m.binds[tid].Arg[:0], b.Arg...)
	m.binds[tid] = c
	m.writes++
	return nil
}

func (m *fakeMaps) Unbind(tid int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b, ok := m.binds[tid]; ok && b.Kind != 0 {
		m.binds[tid] = loader.Binding{Arg: b.Arg[:0]}
	}
	return nil
}

func (m *fakeMaps) binding(tid int) (loader.Binding, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.binds[tid]
	return b, ok && b.Kind != 0
}

// core is a supervisor deciding for the test's own thread.
type core struct {
	t    testing.TB
	sup  *Supervisor
	maps *fakeMaps
	tid  int
	// keep holds the argument buffers the made-up notifications point to.
	keep [][]byte
}

func newCore(t testing.TB, yaml string, unverified bool) *core {
	t.Helper()
	runtime.LockOSThread()
	t.Cleanup(runtime.UnlockOSThread)
	pol, err := policy.Parse("core.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	maps := newFakeMaps()
	// OwnRoot: the made-up watchee is this process, in vigil's own root and
	// mount namespace, as a `vigil run` watchee starts.
	cfg := Config{Policy: pol, Log: zerolog.Nop(), Audit: zerolog.Nop(), Unverified: unverified, OwnRoot: true}
	if !unverified {
		k := newKernel(maps, zerolog.Nop())
		cfg.Kernel = k
		t.Cleanup(func() {
			// No kernel confirms the bound calls here: drop their records
			// rather than wait for them.
			k.mu.Lock()
			clear(k.pending)
			k.mu.Unlock()
			k.Close()
		})
	}
	sup, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sup.ref.Close() })
	return &core{t: t, sup: sup, maps: maps, tid: unix.Gettid()}
}

// cstr returns the address of a NUL-terminated copy of s that lives as
// long as the core.
func (c *core) cstr(s string) uint64 {
	b := append([]byte(s), 0)
	c.keep = append(c.keep, b)
	return uint64(uintptr(unsafe.Pointer(&b[0])))
}

// bytesAt returns the address of a copy of b.
func (c *core) bytesAt(b []byte) uint64 {
	b = append([]byte(nil), b...)
	c.keep = append(c.keep, b)
	return uint64(uintptr(unsafe.Pointer(&b[0])))
}

// decide has the supervisor decide syscall nr with args, and returns its
// answer.
func (c *core) decide(l *fakeListener, nr int, args ...uint64) notify.Resp {
	c.t.Helper()
	n := notify.Notif{ID: 7, Pid: uint32(c.tid)}
	n.Data.Nr = int32(nr)
	n.Data.Arch = notify.AuditArchX86_64
	copy(n.Data.Args[:], args)
	c.sup.first.handle(l, &n)
	if len(l.resps) != 1 {
		c.t.Fatalf("syscall %d: %d answers, want 1", nr, len(l.resps))
	}
	return l.resps[0]
}

const continueFlag = unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE

func TestDecideOpens(t *testing.T) {
	dir := t.TempDir()
	allowed, secret := filepath.Join(dir, "allowed"), filepath.Join(dir, "secret")
	for _, f := range []string{allowed, secret} {
		if err := os.WriteFile(f, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("secret", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(allowed, &st); err != nil {
		t.Fatal(err)
	}
	yaml := fmt.Sprintf("version: 1\nrules:\n  - syscalls: [openat]\n    match: { path: [%q] }\n    action: deny\n    errno: EACCES\n", secret)
	c := newCore(t, yaml, false)

	t.Run("allowed read is bound to the vetted file", func(t *testing.T) {
		r := c.decide(&fakeListener{}, unix.SYS_OPENAT, uint64(unix.AT_FDCWD&0xffffffff), c.cstr(allowed), unix.O_RDONLY)
		if r.Flags != continueFlag || r.Error != 0 {
			t.Fatalf("answer %+v, want CONTINUE", r)
		}
		b, ok := c.maps.binding(c.tid)
		if !ok {
			t.Fatal("CONTINUE without a binding")
		}
		if b.Kind != loader.BindFile || b.Dev != st.Dev || b.Ino != st.Ino || string(b.Arg) != allowed || b.ArgIndex != 1 || b.Nr != unix.SYS_OPENAT {
			t.Fatalf("binding %+v, want FILE of %s (%d:%d) with its path as tripwire", b, allowed, st.Dev, st.Ino)
		}
	})
	for _, tc := range []struct {
		name string
		path uint64
		want unix.Errno
	}{
		{"denied path gets the rule's errno", c.cstr(secret), unix.EACCES},
		{"another spelling of the denied path", c.cstr(dir + "//./secret"), unix.EACCES},
		{"a symlink to the denied path", c.cstr(filepath.Join(dir, "link")), unix.EACCES},
		{"missing file gets the kernel's errno", c.cstr(filepath.Join(dir, "missing")), unix.ENOENT},
		{"bad pointer gets EFAULT", 1, unix.EFAULT},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.maps.Unbind(c.tid)
			r := c.decide(&fakeListener{}, unix.SYS_OPENAT, uint64(unix.AT_FDCWD&0xffffffff), tc.path, unix.O_RDONLY)
			if r.Flags != 0 || r.Error != -int32(tc.want) {
				t.Fatalf("answer %+v, want -%v", r, tc.want)
			}
			if _, ok := c.maps.binding(c.tid); ok {
				t.Fatal("a denied call left a binding")
			}
		})
	}
	t.Run("no binding is left for a call that stopped waiting", func(t *testing.T) {
		// The CONTINUE is the check (no ID_VALID before it): the kernel
		// refuses it for a call that no longer waits, and the binding
		// written for it goes.
		c.maps.Unbind(c.tid)
		writes := c.maps.writes
		gone := c.sup.Stats().Gone
		c.decide(&fakeListener{gone: true}, unix.SYS_OPENAT, uint64(unix.AT_FDCWD&0xffffffff), c.cstr(allowed), unix.O_RDONLY)
		if c.maps.writes == writes {
			t.Fatal("no binding was written: the test no longer reaches the bound path")
		}
		if _, ok := c.maps.binding(c.tid); ok {
			t.Fatal("the binding of a withdrawn call was left in place")
		}
		if got := c.sup.Stats().Gone; got != gone+1 {
			t.Fatalf("withdrawn calls counted %d, want %d", got, gone+1)
		}
	})
	t.Run("other ABIs are refused", func(t *testing.T) {
		l := &fakeListener{}
		n := notify.Notif{ID: 8, Pid: uint32(c.tid)}
		n.Data.Nr = unix.SYS_OPENAT | notify.X32SyscallBit
		n.Data.Arch = notify.AuditArchX86_64
		c.sup.first.handle(l, &n)
		if len(l.resps) != 1 || l.resps[0].Error != -int32(unix.ENOSYS) {
			t.Fatalf("x32 call answered %+v, want -ENOSYS", l.resps)
		}
	})
	t.Run("calls the policy does not name pass on", func(t *testing.T) {
		r := c.decide(&fakeListener{}, unix.SYS_CHROOT, c.cstr("/"))
		if r.Flags != continueFlag {
			t.Fatalf("answer %+v, want CONTINUE of a call trapped for root tracking", r)
		}
	})
}

func TestDecideUnverifiedModeContinuesWithoutBinding(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c := newCore(t, "version: 1\nrules:\n  - syscalls: [openat]\n    match: { path: [\"/nonexistent/**\"] }\n    action: deny\n", true)
	r := c.decide(&fakeListener{}, unix.SYS_OPENAT, uint64(unix.AT_FDCWD&0xffffffff), c.cstr(f), unix.O_RDONLY)
	if r.Flags != continueFlag {
		t.Fatalf("answer %+v, want CONTINUE", r)
	}
	if c.maps.writes != 0 {
		t.Fatal("the naive mode wrote a binding")
	}
}

func TestDecideConnects(t *testing.T) {
	c := newCore(t, "version: 1\nrules:\n  - syscalls: [connect]\n    match: { addr: [\"127.0.0.1:9\"] }\n    action: deny\n", false)
	sa := func(port int) []byte {
		b := make([]byte, unix.SizeofSockaddrInet4)
		b[0] = unix.AF_INET
		b[2], b[3] = byte(port>>8), byte(port)
		b[4], b[7] = 127, 1
		return b
	}
	r := c.decide(&fakeListener{}, unix.SYS_CONNECT, 3, c.bytesAt(sa(9)), unix.SizeofSockaddrInet4)
	if r.Error != -int32(unix.EPERM) {
		t.Fatalf("denied address answered %+v, want -EPERM", r)
	}
	// Without the emulation engine an allowed IP connect is bound to its
	// peer (vigil's default mode performs it instead).
	r = c.decide(&fakeListener{}, unix.SYS_CONNECT, 3, c.bytesAt(sa(80)), unix.SizeofSockaddrInet4)
	if r.Flags != continueFlag {
		t.Fatalf("allowed address answered %+v, want CONTINUE", r)
	}
	b, ok := c.maps.binding(c.tid)
	if !ok || b.Kind != loader.BindConnect || b.Port != 80 || b.Addr.String() != "127.0.0.1" || len(b.Arg) != unix.SizeofSockaddrInet4 {
		t.Fatalf("binding %+v (present %v), want CONNECT to 127.0.0.1:80 with the sockaddr as tripwire", b, ok)
	}
}

func TestDecideExecBindsTheInterpreterOfAScript(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "s")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	sh, err := filepath.EvalSymlinks("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Stat(sh, &st); err != nil {
		t.Fatal(err)
	}
	c := newCore(t, "version: 1\nrules:\n  - syscalls: [execve]\n    match: { path: [\"/nonexistent/**\"] }\n    action: deny\n", false)
	r := c.decide(&fakeListener{}, unix.SYS_EXECVE, c.cstr(script), 0, 0)
	if r.Flags != continueFlag {
		t.Fatalf("answer %+v, want CONTINUE", r)
	}
	b, ok := c.maps.binding(c.tid)
	if !ok || b.Kind != loader.BindExec || b.Dev != st.Dev || b.Ino != st.Ino || string(b.Arg) != script {
		t.Fatalf("binding %+v, want EXEC of the interpreter %s (%d:%d) with the script's path as tripwire", b, sh, st.Dev, st.Ino)
	}
}

// BenchmarkDecideBoundOpen is the notify thread's hot path for the
// everyday call, a read open a path rule allowed: decode (process_vm_readv),
// resolve, evaluate, bind and answer, on a fake listener and fake maps. Allow
// records are off, as by default, so the grant is quiet.
func BenchmarkDecideBoundOpen(b *testing.B) { benchDecideBoundOpen(b, false) }

// BenchmarkDecideBoundOpenRecorded is the same with allow records written:
// the record is parked for the kernel's confirmation (withdrawn here, as no
// kernel confirms).
func BenchmarkDecideBoundOpenRecorded(b *testing.B) { benchDecideBoundOpen(b, true) }

func benchDecideBoundOpen(b *testing.B, recorded bool) {
	f := filepath.Join(b.TempDir(), "f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		b.Fatal(err)
	}
	c := newCore(b, "version: 1\nrules:\n  - syscalls: [openat]\n    match: { path: [\"/nonexistent/**\"] }\n    action: deny\n", false)
	if recorded {
		c.sup.quietAllows = false
	}
	path := c.cstr(f)
	l := &fakeListener{resps: make([]notify.Resp, 0, 1)}
	n := notify.Notif{ID: 7, Pid: uint32(c.tid)}
	n.Data.Nr = unix.SYS_OPENAT
	n.Data.Arch = notify.AuditArchX86_64
	n.Data.Args = [6]uint64{uint64(unix.AT_FDCWD & 0xffffffff), path, unix.O_RDONLY}
	// The kernel's confirmation would take each parked record: drop them.
	k := c.sup.cfg.Kernel
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		l.resps = l.resps[:0]
		c.sup.first.handle(l, &n)
		if len(l.resps) != 1 || l.resps[0].Flags != continueFlag {
			b.Fatalf("answer %+v", l.resps)
		}
		k.withdraw(c.tid)
	}
}

// TestDecidePassthroughReadsNothingWhenUnrecorded: an allow by number whose
// record the audit level leaves out is passed on without reading the
// watchee (no decode); recorded, it is decoded for the record (an unreadable
// path argument shows in it). Neither asks ID_VALID: the answer to a call
// that stopped waiting fails, and the call is counted as withdrawn.
func TestDecidePassthroughReadsNothingWhenUnrecorded(t *testing.T) {
	yaml := "version: 1\nrules:\n  - syscalls: [openat]\n    action: allow\n"
	for _, recordedAllows := range []bool{false, true} {
		c := newCore(t, yaml, false)
		c.sup.quietAllows = !recordedAllows // recorded as with --log FILE (debug records)
		gone := &fakeListener{gone: true}
		if r := c.decide(gone, unix.SYS_OPENAT, uint64(unix.AT_FDCWD&0xffffffff), 1, unix.O_RDONLY); r.Flags != continueFlag {
			t.Fatalf("passthrough (recorded %v) answered %+v, want CONTINUE", recordedAllows, r)
		}
		if got := c.sup.Stats().Gone; got != 1 {
			t.Fatalf("passthrough (recorded %v) of a withdrawn call counted %d withdrawn, want 1", recordedAllows, got)
		}
		if decoded := c.sup.first.c.paths[0] != "" || c.sup.first.c.err != 0; decoded != recordedAllows {
			t.Fatalf("passthrough (recorded %v) decoded the path argument: %v", recordedAllows, decoded)
		}
	}
}
