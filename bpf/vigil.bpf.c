// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * vigil.bpf.c — binds seccomp CONTINUE grants to the kernel's own objects.
 *
 * The supervisor (enforcer/) vets a watchee's path argument while the
 * watchee waits in seccomp, writes a binding for the waiting thread, then
 * answers CONTINUE. seccomp runs before the sys_enter tracepoint, so these
 * programs cannot feed the decision; they check, before the thread returns
 * to user mode, that the decision still holds:
 *
 *   sys_enter  re-reads the bound argument and compares it with the vetted
 *              bytes (a tripwire against a sibling thread rewriting it);
 *   sys_exit   follows the returned fd to its struct file and compares the
 *              inode (or, for O_CREAT, the parent directory and the name)
 *              with the vetted identity (the guarantee: a racer can change
 *              memory, not which object the kernel handed out); for connect,
 *              follows the fd argument to its socket and compares the peer;
 *   sched_process_exec  compares the file an execve is about to run;
 *   sched_process_fork  compares a clone child's namespaces with its
 *              parent's, and dooms the child when they do not hold;
 *   task_rename  counts the renames of watched threads, for the comm in
 *              records (no part of any binding).
 *
 * A violation sends SIGKILL to the calling process from its own context, so
 * the signal is pending before the syscall returns and the thread group dies
 * on its way back to user mode.
 *
 * x86_64 only: syscall numbers and pt_regs register names below are x86_64's.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "vigil.h"

/* bpf_probe_read_user_str and bpf_send_signal are GPL-only helpers. */
char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Single, untorn accesses the compiler keeps in program order (x86_64 keeps
 * stores, and loads, in order too). */
#define READ_ONCE(x) (*(volatile typeof(x) *)&(x))
#define WRITE_ONCE(x, v) (*(volatile typeof(x) *)&(x) = (v))
/* Keeps the compiler from moving plain accesses across it. */
#define vigil_barrier() asm volatile("" ::: "memory")

#define VIGIL_SIGKILL 9
#define VIGIL_NAME_MAX 255
/* include/linux/fs.h: set in f_mode when the open created the file (the same
 * bit from 4.19 through 6.18; loader tests catch a move). */
#define VIGIL_FMODE_CREATED (1U << 20)
/* Scratch is twice PATH_MAX so that a masked offset (< PATH_MAX) plus a
 * bounded length (<= PATH_MAX) always stays inside it, which is what the
 * verifier needs to accept variable-offset copies. */
#define VIGIL_SCRATCH (2 * VIGIL_PATH_MAX)
/* Components of a kernel path walked at most, and loop steps (components
 * plus mount crossings). */
#define VIGIL_KPATH_DEPTH 32
#define VIGIL_KPATH_STEPS 64

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

/* x86_64 syscall numbers the programs know. */
#define NR_open 2
#define NR_connect 42
#define NR_clone 56
#define NR_fork 57
#define NR_vfork 58
#define NR_execve 59
#define NR_creat 85
#define NR_openat 257
#define NR_execveat 322
#define NR_clone3 435
#define NR_openat2 437

/* Kernel ABI constants vmlinux.h has no macros for. */
#define VIGIL_AF_UNSPEC 0
#define VIGIL_AF_UNIX 1
#define VIGIL_AF_INET 2
#define VIGIL_AF_INET6 10
#define VIGIL_S_IFMT 0170000
#define VIGIL_S_IFSOCK 0140000
#define VIGIL_EINTR 4
#define VIGIL_EEXIST 17
#define VIGIL_EINPROGRESS 115
#define VIGIL_ERESTARTSYS 512     /* include/linux/errno.h: never seen by user space; */
#define VIGIL_ERESTARTNOINTR 513  /* a connect interrupted by a signal returns one of */
#define VIGIL_ERESTARTNOHAND 514  /* these at sys_exit, before signal delivery turns */
#define VIGIL_ERESTART_RESTARTBLOCK 516 /* it into EINTR or a restart */
/* include/uapi/linux/sched.h */
#define VIGIL_CSIGNAL 0xffULL
#define VIGIL_CLONE_NEWTIME 0x00000080ULL
#define VIGIL_CLONE_NEWNS 0x00020000ULL
#define VIGIL_CLONE_NEWCGROUP 0x02000000ULL
#define VIGIL_CLONE_NEWUTS 0x04000000ULL
#define VIGIL_CLONE_NEWIPC 0x08000000ULL
#define VIGIL_CLONE_NEWUSER 0x10000000ULL
#define VIGIL_CLONE_NEWPID 0x20000000ULL
#define VIGIL_CLONE_NEWNET 0x40000000ULL
#define VIGIL_CLONE_NS (VIGIL_CLONE_NEWTIME | VIGIL_CLONE_NEWNS | VIGIL_CLONE_NEWCGROUP | \
			VIGIL_CLONE_NEWUTS | VIGIL_CLONE_NEWIPC | VIGIL_CLONE_NEWUSER | \
			VIGIL_CLONE_NEWPID | VIGIL_CLONE_NEWNET)
/* include/net/tcp_states.h: also the state of an unconnected UDP socket */
#define VIGIL_TCP_CLOSE 7
/* Children that must die at their first return to user mode, at most. */
#define VIGIL_MAX_DOOMED 4096
/* Threads of one group group_binds_fd visits before it fails closed. */
#define VIGIL_MAX_GROUP 4096

/* The socket at a connect's fd, as sys_exit finds it. */
struct peer_view {
	/* Addresses rather than pointers: the struct is in a map value (the
	 * scratch's exit_note), whose generated Go type cannot hold pointers. */
	__u64 sk;      /* struct sock *; 0: the fd holds no socket (any more) */
	__u64 upeer;   /* AF_UNIX: unix_sk(sk)->peer */
	__u64 addr[2]; /* AF_INET: skc_daddr in the first 4 bytes; AF_INET6: skc_v6_daddr */
	__u32 daddr4;  /* skc_daddr, network order (also set for a v4-mapped AF_INET6 peer) */
	__u16 family;
	__u16 port;    /* host order */
	__u8 state;    /* skc_state */
};

/* exit_note is what sys_exit found, handed to emit_exit for its record. It
 * lives in scratch: on the stack it would leave too little of the 512 bytes
 * a program and the functions it calls share (Linux 6.1 counts each frame
 * rounded up to 32 bytes). */
struct exit_note {
	__s64 ret;
	__s64 nr;
	__u64 file;     /* the struct file * the call returned or runs; 0: none */
	__u64 dev;      /* file's identity */
	__u64 ino;
	__u64 child_ns; /* has_child: the CLONE_NEW* bits the child got */
	__u32 child_tid;
	__u32 has_child;
	__u32 reason;
	__u32 flags;
	struct peer_view peer;
};

struct vigil_scratch {
	char buf[VIGIL_SCRATCH];
	__u64 opaque; /* see opaque() */
	struct exit_note exit; /* sys_exit's, for emit_exit */
};

/* watched: thread groups under supervision (tgid -> 1); seeded by the loader, follows fork/exit. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_MAX_WATCHED);
	__type(key, __u32);
	__type(value, __u8);
} watched SEC(".maps");

/* slots: the grant a thread is about to be CONTINUEd with, in slot
 * tid & (VIGIL_BIND_SLOTS-1) (see struct vigil_slot); written by userspace
 * through its mmap. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, VIGIL_BIND_SLOTS);
	__type(key, __u32);
	__type(value, struct vigil_slot);
} slots SEC(".maps");

/* bind_ctl: how many entries the bindings hash may hold (struct vigil_bind_ctl). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_bind_ctl);
} bind_ctl SEC(".maps");

/* bindings: the grants whose thread's slot another thread's pending binding
 * held (tid -> binding). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_MAX_BINDINGS);
	__type(key, __u32);
	__type(value, struct vigil_binding);
} bindings SEC(".maps");

/* events: ENTER/EXIT/VIOLATION records for the loader's reader (size set by the loader). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
	__type(value, struct vigil_event); /* not used by the kernel: puts the layout in BTF for bpf2go */
} events SEC(".maps");

/* lost: per-CPU count of events dropped because the ring buffer was full. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} lost SEC(".maps");

/* scratch: per-CPU buffer for path reads, hashing and building kernel paths. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vigil_scratch);
} scratch SEC(".maps");

/* Why a doomed child dies: reported in its VIOLATION. */
struct vigil_doom {
	__u64 ns;     /* CLONE_NEW* bits the child did not share with its parent */
	__u32 reason; /* enum vigil_reason of the parent's violation */
	__u32 pad;
};

/* doomed: children of a clone that did not hold (tid -> why); killed at their first sys_exit. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_MAX_DOOMED);
	__type(key, __u32);
	__type(value, struct vigil_doom);
} doomed SEC(".maps");

/* The child a bound clone created, from sched_process_fork to the parent's sys_exit. */
struct vigil_fork {
	__u64 ns;    /* CLONE_NEW* bits the child did not share with its parent */
	__u32 child; /* the child's tid */
	__u32 pad;
};

/* forked: bound clones between fork and sys_exit (parent tid -> child). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_MAX_BINDINGS);
	__type(key, __u32);
	__type(value, struct vigil_fork);
} forked SEC(".maps");

/* shared_files: thread groups whose descriptor table another thread group shares
 * (clone(CLONE_FILES) without CLONE_THREAD), both sides, set at fork; userspace
 * emulates their fd-returning grants instead of binding them. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_MAX_WATCHED);
	__type(key, __u32);
	__type(value, __u8);
} shared_files SEC(".maps");

/* Entries in doomed: lets sys_exit skip the lookup on every other return. */
__u64 doomed_pending = 0;

/* Moves of a binding by vigil_exec (a non-leader thread's exec taking the
 * leader's id), counted when one begins (before the old slot is dropped) and
 * when it is done (after the new one is written). In between, the binding is
 * in no slot: the loader, before it detaches the syscall tracepoints, reads
 * done, scans the slots, then reads begun; equal, no move overlapped its scan
 * (loader/lazy.go). */
__u64 exec_moves_begun = 0;
__u64 exec_moves_done = 0;

/* Bitmap of syscall numbers (0..VIGIL_CAPTURE_NR-1) that get ENTER/EXIT
 * events: observe mode and audit correlation. Set by the loader. */
const volatile __u64 capture_mask[VIGIL_CAPTURE_NR / 64] = {};
/* Some syscall is captured (capture_mask is not empty). Set by the loader. */
const volatile bool capturing = false;
/* vigil's own tgid: never watched, whatever the maps say. */
const volatile __u32 self_tgid = 0;
/* Pending bytes past which a plain captured event wakes the reader (see
 * submit_event). Set by the loader from the ring buffer's size. */
const volatile __u64 wakeup_bytes = 256 << 10;

static __always_inline struct vigil_scratch *get_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scratch, &zero);
}

/*
 * opaque returns v as a value the verifier knows nothing about. Before Linux
 * 6.7 it checked a bpf_loop callback as if it ran once, so what a loop leaves
 * in its context after several iterations (a walk that climbed more than one
 * component and then reached the root) was never among the states it saw,
 * and a branch on such a value could look always taken — the verifier then
 * removes the other side (Debian 12's 6.1: same_name could never match, and
 * atomically replaced files were killed as mismatches). A round trip
 * through map memory, which the verifier does not track, keeps both sides.
 */
static __always_inline __u32 opaque(__u32 v)
{
	__u32 zero = 0;
	struct vigil_scratch *s = bpf_map_lookup_elem(&scratch, &zero);

	if (!s)
		return v;
	WRITE_ONCE(s->opaque, v);
	return (__u32)READ_ONCE(s->opaque);
}

#define VIGIL_SECCOMP_MODE_FILTER 2

/*
 * seccomp_filtered reports whether current runs under a seccomp filter. A
 * thread can only have a binding while it waits in a seccomp notification
 * and after, so every other thread leaves the syscall programs here: one
 * load from its own task_struct, no map lookup.
 */
static __always_inline bool seccomp_filtered(void)
{
	struct task_struct *task = bpf_get_current_task_btf();

	return task->seccomp.mode == VIGIL_SECCOMP_MODE_FILTER;
}

/*
 * The syscalls after which a snapshot the emulator took of a caller
 * (credentials, groups, capabilities, umask, root, user and mount namespaces,
 * resource limits: enforcer/emulate) may no longer hold, and those that make
 * a task, whose id may be a dead thread's. Every other way to change these
 * acts on current only, or on a process that is not watched (prlimit from
 * outside: the emulator reads the limits on every call). x86_64 numbers (x32
 * with its bit cleared, plus its own execve and execveat), and i386 ones for
 * int $0x80 under a filter that lets them through (a runtime's).
 */
#define VIGIL_X32_BIT 0x40000000L
#define VIGIL_TS_COMPAT 0x0002

static __always_inline bool changes_view_native(long nr)
{
	switch (nr & ~VIGIL_X32_BIT) {
	case 56: case 57: case 58:           /* clone fork vfork */
	case 59: case 322: case 520: case 545: /* execve execveat, x32's */
	case 95:                              /* umask */
	case 105: case 106: case 113: case 114: /* setuid setgid setreuid setregid */
	case 116: case 117: case 119:         /* setgroups setresuid setresgid */
	case 122: case 123: case 126:         /* setfsuid setfsgid capset */
	case 155: case 157: case 160: case 161: /* pivot_root prctl setrlimit chroot */
	case 272: case 302: case 308: case 435: /* unshare prlimit64 setns clone3 */
		return true;
	}
	return false;
}

static __always_inline bool changes_view_ia32(long nr)
{
	switch (nr) {
	case 2: case 11: case 23: case 46: case 60: case 61: case 70: case 71:
	case 75: case 81: case 120: case 138: case 139: case 164: case 170:
	case 172: case 185: case 190: case 203: case 204: case 206: case 208:
	case 210: case 213: case 214: case 215: case 216: case 217: case 310:
	case 340: case 346: case 358: case 435:
		return true;
	}
	return false;
}

/* changes_view reports whether nr, entered by current, is one of them. */
static __always_inline bool changes_view(long nr)
{
	struct task_struct *task;

	if (changes_view_native(nr))
		return true;
	if (!changes_view_ia32(nr))
		return false;
	task = bpf_get_current_task_btf();
	return task->thread_info.status & VIGIL_TS_COMPAT;
}

/*
 * view_change_enter and view_change_exit bump bind_ctl.view_epoch around
 * such a syscall: before it can change anything and after it has. A snapshot
 * tagged with the epoch read before it was taken therefore holds while the
 * epoch stays put.
 *
 * The syscall tracepoints are attached only while vigil needs them
 * (loader: lazy attachment), and a call that entered before they were never
 * runs sys_enter (the kernel reads a task's syscall work once at entry). So
 * the exit looks at every filtered thread's syscall number rather than only
 * at those whose entry it saw: a change in flight when the tracepoints came
 * is counted when it completes. Userspace bumps the epoch itself after each
 * attach, for the changes made while nothing was attached.
 */
static __always_inline void view_change_enter(void)
{
	__u32 zero = 0;
	struct vigil_bind_ctl *c = bpf_map_lookup_elem(&bind_ctl, &zero);

	if (c)
		__sync_fetch_and_add(&c->view_epoch, 1);
}

/* It reads the syscall number itself although sys_exit reads it again for a
 * bound call: sharing one read made Debian 6.1's verifier lose a bound
 * further down sys_exit and refuse the program (2026-12-03). */
static __always_inline void view_change_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 zero = 0;
	struct vigil_bind_ctl *c;
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	long nr = BPF_CORE_READ(regs, orig_ax);

	/* No compat test here: an exit counts whenever its entry may have. */
	if (!changes_view_native(nr) && !changes_view_ia32(nr))
		return;
	c = bpf_map_lookup_elem(&bind_ctl, &zero);
	if (c)
		__sync_fetch_and_add(&c->view_epoch, 1);
}

/* comm_changed bumps bind_ctl.comm_epoch: a watched thread has a new comm
 * (an exec, PR_SET_NAME), so userspace reads it again instead of naming the
 * old one in records. */
static __always_inline void comm_changed(void)
{
	__u32 zero = 0;
	struct vigil_bind_ctl *c = bpf_map_lookup_elem(&bind_ctl, &zero);

	if (c)
		__sync_fetch_and_add(&c->comm_epoch, 1);
}

static __always_inline __u64 slot_published(__u32 tid)
{
	return (__u64)tid | VIGIL_SLOT_PUBLISHED << 32;
}

static __always_inline struct vigil_slot *slot_of(__u32 tid)
{
	__u32 i = tid & (VIGIL_BIND_SLOTS - 1);

	return bpf_map_lookup_elem(&slots, &i);
}

/* hash_may_hold reports whether the bindings hash may hold an entry; when
 * the counter cannot be read, it may. */
static __always_inline bool hash_may_hold(void)
{
	__u32 zero = 0;
	struct vigil_bind_ctl *c = bpf_map_lookup_elem(&bind_ctl, &zero);

	return !c || READ_ONCE(c->hashed) != 0;
}

static __always_inline void hash_count(long d)
{
	__u32 zero = 0;
	struct vigil_bind_ctl *c = bpf_map_lookup_elem(&bind_ctl, &zero);

	if (c)
		__sync_fetch_and_add(&c->hashed, d);
}

/*
 * find_binding returns tid's pending binding, or NULL: its slot when the
 * slot's key is tid's and published (*slotp is then the slot), else its
 * entry in the bindings hash while that may hold any. A published key was
 * stored after the binding was complete (x86_64 keeps stores in order, and
 * the key is read first); nothing rewrites a published binding while its
 * thread runs, since userspace writes one only for a thread that waits in
 * a seccomp notification.
 */
static __always_inline struct vigil_binding *find_binding(__u32 tid, struct vigil_slot **slotp)
{
	struct vigil_slot *s = slot_of(tid);

	*slotp = NULL;
	if (s && READ_ONCE(s->key) == slot_published(tid)) {
		vigil_barrier(); /* b is read after the key */
		*slotp = s;
		return &s->b;
	}
	if (!hash_may_hold())
		return NULL;
	return bpf_map_lookup_elem(&bindings, &tid);
}

/* drop_binding removes tid's binding found by find_binding (in slot, or the
 * hash when slot is NULL) once it has been copied. */
static __always_inline void drop_binding(__u32 tid, struct vigil_slot *slot)
{
	if (slot) {
		vigil_barrier(); /* the copy is made before the slot is freed */
		WRITE_ONCE(slot->key, 0);
		return;
	}
	if (bpf_map_delete_elem(&bindings, &tid) == 0)
		hash_count(-1);
}

/* forget_thread drops whatever binding tid (a thread that is exiting) left,
 * in its slot or the hash. */
static __always_inline void forget_thread(__u32 tid)
{
	struct vigil_slot *s = slot_of(tid);
	__u64 k;

	if (s) {
		k = READ_ONCE(s->key);
		if (k && (__u32)k == tid)
			__sync_val_compare_and_swap(&s->key, k, 0);
	}
	if (hash_may_hold() && bpf_map_delete_elem(&bindings, &tid) == 0)
		hash_count(-1);
}

/* put_binding stores b as tid's binding: in tid's slot when it is free (or
 * tid's own), else in the bindings hash. Returns 0 or a negative error. */
static __always_inline long put_binding(__u32 tid, const struct vigil_binding *b)
{
	struct vigil_slot *s = slot_of(tid);
	long err;

	if (s) {
		__u64 k = READ_ONCE(s->key);

		if ((k == 0 && __sync_val_compare_and_swap(&s->key, 0, (__u64)tid) == 0) ||
		    (k && (__u32)k == tid && __sync_val_compare_and_swap(&s->key, k, (__u64)tid) == k)) {
			s->b = *b;
			vigil_barrier(); /* b is complete before it is published */
			WRITE_ONCE(s->key, slot_published(tid));
			return 0;
		}
	}
	hash_count(1);
	err = bpf_map_update_elem(&bindings, &tid, b, BPF_NOEXIST);
	if (err)
		hash_count(-1);
	return err;
}

static __always_inline bool captured(long nr)
{
	if (nr < 0 || nr >= VIGIL_CAPTURE_NR)
		return false;
	return capture_mask[nr >> 6] & (1ULL << (nr & 63));
}

/* path_arg returns the register index of the path argument of nr, or -1. */
static __always_inline int path_arg(long nr)
{
	switch (nr) {
	case NR_open:
	case NR_creat:
	case NR_execve:
		return 0;
	case NR_openat:
	case NR_openat2:
	case NR_execveat:
		return 1;
	}
	return -1;
}

/* returns_fd reports whether a non-negative return of nr is a new fd. */
static __always_inline bool returns_fd(long nr)
{
	return nr == NR_open || nr == NR_creat || nr == NR_openat || nr == NR_openat2;
}

static __always_inline bool is_exec(long nr)
{
	return nr == NR_execve || nr == NR_execveat;
}

static __always_inline bool is_clone(long nr)
{
	return nr == NR_clone || nr == NR_clone3;
}

/* kind_fits reports whether a binding of kind can be checked on syscall nr;
 * one that cannot fails closed. */
static __always_inline bool kind_fits(__u32 kind, long nr)
{
	switch (kind) {
	case VIGIL_BIND_FILE:
	case VIGIL_BIND_CREATE:
		return returns_fd(nr);
	case VIGIL_BIND_EXEC:
		return is_exec(nr);
	case VIGIL_BIND_CONNECT:
		return nr == NR_connect;
	case VIGIL_BIND_CLONE:
		return is_clone(nr);
	}
	return false;
}

/*
 * passed_entry reports whether a binding in state is one whose call got past
 * sys_enter without a kill: ENTERED (sys_enter re-read the argument and it
 * matched) or ARMED (sys_enter never ran for it). A call sees ARMED after its
 * entry only when it entered before the syscall tracepoints were attached
 * (vigil attaches them lazily, before it writes a binding, while the call
 * waits in seccomp; the kernel decides at entry whether the tracepoint runs).
 * The entry re-read is a tripwire that kills a racer early; the guarantee is
 * the object check at sched_process_exec/fork or sys_exit, which every such
 * call still meets, so ARMED is checked like ENTERED.
 */
static __always_inline bool passed_entry(__u32 state)
{
	return state == VIGIL_STATE_ENTERED || state == VIGIL_STATE_ARMED;
}

/* binds_bytes reports whether kind's tripwire argument is a fixed-length
 * byte block (a sockaddr, a clone_args) rather than a NUL-terminated path. */
static __always_inline bool binds_bytes(__u32 kind)
{
	return kind == VIGIL_BIND_CONNECT || kind == VIGIL_BIND_CLONE;
}

/* syscall_arg reads syscall argument i from the x86_64 entry registers. */
static __always_inline __u64 syscall_arg(struct pt_regs *regs, __u32 i)
{
	switch (i) {
	case 0:
		return BPF_CORE_READ(regs, di);
	case 1:
		return BPF_CORE_READ(regs, si);
	case 2:
		return BPF_CORE_READ(regs, dx);
	case 3:
		return BPF_CORE_READ(regs, r10);
	case 4:
		return BPF_CORE_READ(regs, r8);
	case 5:
		return BPF_CORE_READ(regs, r9);
	}
	return 0;
}

/*
 * read_args copies the six argument registers into e with one probe read:
 * x86_64 keeps r10..di contiguous in pt_regs (r10 r9 r8 ax cx dx si di),
 * which is the ptrace ABI. The offsets are still CO-RE relocations; six
 * separate reads cost about 100ns more per event.
 */
static __always_inline void read_args(struct vigil_event *e, struct pt_regs *regs)
{
	__u64 v[8] = {};
	__u32 base = bpf_core_field_offset(struct pt_regs, r10);

	bpf_probe_read_kernel(v, sizeof(v), (void *)regs + base);
	e->args[0] = v[((bpf_core_field_offset(struct pt_regs, di) - base) / 8) & 7];
	e->args[1] = v[((bpf_core_field_offset(struct pt_regs, si) - base) / 8) & 7];
	e->args[2] = v[((bpf_core_field_offset(struct pt_regs, dx) - base) / 8) & 7];
	e->args[3] = v[((bpf_core_field_offset(struct pt_regs, r10) - base) / 8) & 7];
	e->args[4] = v[((bpf_core_field_offset(struct pt_regs, r8) - base) / 8) & 7];
	e->args[5] = v[((bpf_core_field_offset(struct pt_regs, r9) - base) / 8) & 7];
}

#define VIGIL_O_PATH 010000000

/* opath_open reports an open(2) or openat(2) with O_PATH in its flags
 * register: it acts on nothing, and what its descriptor is used for is
 * vetted again, so another process sharing the descriptor table may hold
 * it. (openat2 keeps its flags in user memory: not exempted.) */
static __always_inline bool opath_open(long nr, struct pt_regs *regs)
{
	if (nr == NR_open)
		return syscall_arg(regs, 1) & VIGIL_O_PATH;
	if (nr == NR_openat)
		return syscall_arg(regs, 2) & VIGIL_O_PATH;
	return false;
}

/* kill_current sends SIGKILL to the current thread group. bpf_send_signal
 * acts on current, which is why every check runs in the offending task. */
static __always_inline __u32 kill_current(void)
{
	return bpf_send_signal(VIGIL_SIGKILL) == 0 ? VIGIL_F_KILLED : 0;
}

struct fnv_ctx {
	__u64 h;
	__u32 off;
	__u32 len;
};

/* fnv_step hashes scratch bytes [off+8i, off+8i+8) that lie below off+len. */
static long fnv_step(__u32 i, void *data)
{
	struct fnv_ctx *c = data;
	struct vigil_scratch *s = get_scratch();
	__u32 j = i * 8;

	if (!s)
		return 1;
#pragma unroll
	for (int k = 0; k < 8; k++, j++) {
		if (j >= c->len)
			return 1;
		c->h ^= (__u8)s->buf[(c->off + j) & (VIGIL_SCRATCH - 1)];
		c->h *= FNV_PRIME;
	}
	return 0;
}

/* fnv1a_scratch is FNV-1a 64 over scratch[off, off+len), len <= PATH_MAX;
 * loader.FNV1a computes the same hash. */
static __always_inline __u64 fnv1a_scratch(__u32 off, __u32 len)
{
	struct fnv_ctx c = { .h = FNV_OFFSET, .off = off, .len = len };

	if (len > VIGIL_PATH_MAX)
		return 0;
	bpf_loop((len + 7) / 8, fnv_step, &c, 0);
	return c.h;
}

/* reserve_event reserves and fills the header of one record, counting a
 * drop in lost when the ring buffer is full. */
static __always_inline struct vigil_event *reserve_event(__u32 type, __u64 pid_tgid, long nr)
{
	struct vigil_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		__u32 zero = 0;
		__u64 *n = bpf_map_lookup_elem(&lost, &zero);

		if (n)
			__sync_fetch_and_add(n, 1);
		return NULL;
	}
	e->type = type;
	e->tgid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->nr = (__u32)nr;
	e->ts_ns = bpf_ktime_get_ns();
	e->ret = 0;
	e->dev = 0;
	e->ino = 0;
	e->reason = VIGIL_OK;
	e->flags = 0;
	e->path_len = 0;
	e->kpath_len = 0;
	e->child_tid = 0;
	e->child_ns = 0;
	e->peer_family = 0;
	e->peer_port = 0;
	e->pad = 0;
	__builtin_memset(e->peer, 0, sizeof(e->peer));
	return e;
}

/*
 * submit_event commits e. When the reader keeps up, the kernel's default
 * policy wakes it for every record, and that wake-up (irq_work, then a
 * cross-CPU wake of the epoll waiter) costs more than producing the event.
 * So plain captured events (observe mode) are committed without a wake-up
 * until wakeup_bytes are pending, and the loader's reader polls for the
 * tail. Violations always force a wake-up: mixing in silent commits breaks
 * the default policy's "wake if the reader has caught up" test, so they
 * cannot rely on it. Confirmed bound calls are batched like captured events.
 */
static __always_inline void submit_event(struct vigil_event *e, bool urgent)
{
	__u64 flags = BPF_RB_FORCE_WAKEUP;

	if (!urgent && bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) < wakeup_bytes)
		flags = BPF_RB_NO_WAKEUP;
	bpf_ringbuf_submit(e, flags);
}

/* copy_path puts the first VIGIL_EVENT_PATH bytes of the n-byte (NUL
 * included, as bpf_probe_read_user_str returns) string in scratch into e. */
static __always_inline void copy_path(struct vigil_event *e, struct vigil_scratch *s, long n)
{
	__u32 len;

	if (n <= 0)
		return;
	len = n - 1;
	if (len > VIGIL_EVENT_PATH) {
		len = VIGIL_EVENT_PATH;
		e->flags |= VIGIL_F_PATH_TRUNC;
	}
	bpf_probe_read_kernel(e->path, VIGIL_EVENT_PATH, s->buf);
	e->path_len = len;
}

/*
 * sys_enter — runs after seccomp let the syscall through.
 *
 *   unless capturing: if current has no seccomp filter: return
 *   if filtered and nr may change an emulation snapshot: bump view_epoch
 *   unless capturing: if no binding: return
 *   if tgid is vigil or not watched: return
 *   b = binding of tid (its published slot, or bindings[tid])
 *   if b and b.nr == nr and b.state == ARMED:
 *       if b.kind is CONNECT or CLONE (a byte block: sockaddr, clone_args):
 *           read b.arg_len bytes at reg[b.arg_index] (none if 0)
 *           if the read fails:                         reason = ARG_UNREADABLE
 *           elif fnv(bytes) != b.arg_hash:             reason = ARG_CHANGED
 *       else (a path):
 *           n = probe_read_user_str(scratch, reg[b.arg_index])
 *           if n fails:                                reason = ARG_UNREADABLE
 *           elif n-1 != b.arg_len or fnv(scratch) != b.arg_hash: reason = ARG_CHANGED
 *       if reason: SIGKILL; b.state = KILLED  else: b.state = ENTERED
 *   if reason: emit VIOLATION (args, path as user memory now holds it)
 *   elif nr in capture_mask: emit ENTER (args, path if nr has one)
 */
SEC("raw_tp/sys_enter")
int vigil_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 pid_tgid;
	__u32 tgid, tid;
	struct pt_regs *regs;
	struct vigil_binding *b;
	struct vigil_slot *slot;
	struct vigil_scratch *s;
	struct vigil_event *e;
	__u32 reason = VIGIL_OK, flags = 0;
	bool bound, capture, filtered;
	long nr, n = 0;
	int idx;

	/* Every syscall of the host comes here: leave at the cheapest test. */
	filtered = seccomp_filtered();
	if (!capturing && !filtered)
		return 0;
	pid_tgid = bpf_get_current_pid_tgid();
	tgid = pid_tgid >> 32;
	tid = (__u32)pid_tgid;
	if (filtered && changes_view((long)ctx->args[1]))
		view_change_enter();
	b = find_binding(tid, &slot);
	if (!capturing && !b)
		return 0;
	if (tgid == self_tgid || !bpf_map_lookup_elem(&watched, &tgid))
		return 0;

	regs = (struct pt_regs *)ctx->args[0];
	nr = (long)ctx->args[1];
	bound = b && (long)b->nr == nr && b->state == VIGIL_STATE_ARMED;
	capture = captured(nr);
	if (!bound && !capture)
		return 0;
	s = get_scratch();
	if (!s)
		return 0;

	if (bound) {
		flags |= VIGIL_F_BOUND;
		idx = b->arg_index;
		if ((b->kind == VIGIL_BIND_FILE || b->kind == VIGIL_BIND_CREATE) &&
		    !opath_open(nr, regs) && bpf_map_lookup_elem(&shared_files, &tgid)) {
			/* Another process shares the table the fd would land in:
			 * a kill after the fact could not take it back. The
			 * supervisor emulates such calls; this one raced a fork. */
			reason = VIGIL_SHARED_FILES;
		} else if (binds_bytes(b->kind)) {
			__u32 len = b->arg_len;

			if (len > VIGIL_PATH_MAX - 1)
				reason = VIGIL_ARG_CHANGED; /* no loader writes that */
			else if (len && bpf_probe_read_user(s->buf, len & (VIGIL_PATH_MAX - 1),
							    (const void *)syscall_arg(regs, idx)))
				reason = VIGIL_ARG_UNREADABLE;
			else if (fnv1a_scratch(0, len) != b->arg_hash)
				reason = VIGIL_ARG_CHANGED;
		} else {
			n = bpf_probe_read_user_str(s->buf, VIGIL_PATH_MAX, (const void *)syscall_arg(regs, idx));
			/* An empty string reads as 1 (its NUL) on 6.18 but as 0 on
			 * Debian's 6.1 and 6.12 (strncpy_from_user_nofault counts no
			 * NUL for it); errors are negative. Both are "" (fexecve's
			 * execveat(fd, "", AT_EMPTY_PATH)), not unreadable. */
			if (n == 0)
				n = 1;
			if (n < 0)
				reason = VIGIL_ARG_UNREADABLE;
			else if ((__u32)(n - 1) != b->arg_len || fnv1a_scratch(0, n - 1) != b->arg_hash)
				reason = VIGIL_ARG_CHANGED;
		}
		if (reason != VIGIL_OK) {
			flags |= kill_current();
			b->state = VIGIL_STATE_KILLED;
		} else {
			b->state = VIGIL_STATE_ENTERED;
		}
	} else {
		idx = path_arg(nr);
		if (idx >= 0)
			n = bpf_probe_read_user_str(s->buf, VIGIL_PATH_MAX, (const void *)syscall_arg(regs, idx));
	}
	if (reason == VIGIL_OK && !capture)
		return 0;

	e = reserve_event(reason != VIGIL_OK ? VIGIL_EV_VIOLATION : VIGIL_EV_ENTER, pid_tgid, nr);
	if (!e)
		return 0;
	e->reason = reason;
	e->flags = flags;
	read_args(e, regs);
	copy_path(e, s, n);
	submit_event(e, reason != VIGIL_OK);
	return 0;
}

/* fd_file returns current's struct file for fd, or NULL. */
static __always_inline struct file *fd_file(long fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	struct file **fds;
	struct file *f = NULL;
	unsigned int max;

	if (!fdt || fd < 0)
		return NULL;
	max = BPF_CORE_READ(fdt, max_fds);
	if ((unsigned long)fd >= max)
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_core_read(&f, sizeof(f), &fds[fd]))
		return NULL;
	return f;
}

static __always_inline struct vfsmount *mount_vfs(struct mount *m)
{
	return (struct vfsmount *)((void *)m + bpf_core_field_offset(struct mount, mnt));
}

static __always_inline struct mount *real_mount(struct vfsmount *v)
{
	return (struct mount *)((void *)v - bpf_core_field_offset(struct mount, mnt));
}

struct walk_ctx {
	struct dentry *dentry;
	struct mount *mnt;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	__u32 pos;   /* the path built so far is scratch[pos, PATH_MAX) */
	__u32 depth; /* components prepended */
	__u32 done;  /* reached the task's root or the namespace's */
	__u32 trunc; /* gave up: too deep, too long, or a name out of range */
};

/*
 * walk_step is one step of prepend_path() (fs/d_path.c): at the root of a
 * mount, climb to its mountpoint in the parent mount; otherwise prepend
 * "/name" and go to d_parent. Stops at the task's root, the mount
 * namespace's root, or the root of a disconnected tree.
 */
static long walk_step(__u32 i, void *data)
{
	struct walk_ctx *w = data;
	struct vigil_scratch *s = get_scratch();
	/* Copies: BPF_CORE_READ would otherwise relocate the walk_ctx field
	 * access against kernel BTF, where walk_ctx does not exist. */
	struct dentry *dentry = w->dentry;
	struct mount *mnt = w->mnt;
	struct vfsmount *vfsmnt = mount_vfs(mnt);
	struct dentry *parent;
	const unsigned char *name;
	struct mount *up;
	__u32 len;

	if (!s)
		return 1;
	if (dentry == w->root_dentry && vfsmnt == w->root_mnt) {
		w->done = 1;
		return 1;
	}
	if (dentry == BPF_CORE_READ(vfsmnt, mnt_root)) {
		up = BPF_CORE_READ(mnt, mnt_parent);
		if (!up || up == mnt) {
			w->done = 1;
			return 1;
		}
		w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = up;
		return 0;
	}
	parent = BPF_CORE_READ(dentry, d_parent);
	if (!parent || parent == dentry) {
		w->done = 1;
		return 1;
	}
	if (w->depth >= VIGIL_KPATH_DEPTH) {
		w->trunc = 1;
		return 1;
	}
	len = BPF_CORE_READ(dentry, d_name.len);
	name = BPF_CORE_READ(dentry, d_name.name);
	if (len > VIGIL_NAME_MAX || len + 1 > w->pos) {
		w->trunc = 1;
		return 1;
	}
	w->pos -= len;
	bpf_probe_read_kernel(&s->buf[w->pos & (VIGIL_PATH_MAX - 1)], len & VIGIL_NAME_MAX, name);
	w->pos--;
	s->buf[w->pos & (VIGIL_PATH_MAX - 1)] = '/';
	w->depth++;
	w->dentry = parent;
	return 0;
}

/* fill_kpath writes the kernel's path of (dentry, mnt), as seen from
 * current's root, into e->kpath. */
static __always_inline void fill_kpath(struct vigil_event *e, struct dentry *dentry, struct vfsmount *mnt)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct vigil_scratch *s = get_scratch();
	struct walk_ctx w = {};
	__u32 len;

	if (!s)
		return;
	w.dentry = dentry;
	w.mnt = real_mount(mnt);
	w.root_dentry = BPF_CORE_READ(task, fs, root.dentry);
	w.root_mnt = BPF_CORE_READ(task, fs, root.mnt);
	w.pos = VIGIL_PATH_MAX;
	bpf_loop(VIGIL_KPATH_STEPS, walk_step, &w, 0);
	w.done = opaque(w.done);
	w.trunc = opaque(w.trunc);
	w.pos = opaque(w.pos);
	if (!w.done)
		w.trunc = 1;
	if (w.pos == VIGIL_PATH_MAX) {
		w.pos--;
		s->buf[w.pos & (VIGIL_PATH_MAX - 1)] = '/';
	}
	len = VIGIL_PATH_MAX - w.pos;
	if (len > VIGIL_EVENT_PATH) {
		len = VIGIL_EVENT_PATH;
		w.trunc = 1;
	}
	bpf_probe_read_kernel(e->kpath, VIGIL_EVENT_PATH, &s->buf[w.pos & (VIGIL_PATH_MAX - 1)]);
	e->kpath_len = len;
	if (w.trunc)
		e->flags |= VIGIL_F_KPATH_TRUNC;
}

/* fill_file puts f's identity and kernel path into e. */
static __always_inline void fill_file(struct vigil_event *e, struct file *f)
{
	struct inode *inode = BPF_CORE_READ(f, f_inode);

	e->flags |= VIGIL_F_HAS_OBJECT;
	e->dev = BPF_CORE_READ(inode, i_sb, s_dev);
	e->ino = BPF_CORE_READ(inode, i_ino);
	fill_kpath(e, BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt));
}

/*
 * same_name reports whether (dentry, mnt) — the object the kernel used — is
 * the vetted object's path in the vetted view although it is another object:
 * on the vetted mount, with current's root still the vetted root, and the
 * path from that root (built as fill_kpath builds it, whole: a truncated
 * walk never matches) hashing to b->path_hash.
 *
 * It is a global function: the verifier checks it once, on its own, rather
 * than once for every path through sys_exit that reaches it (see
 * emit_exit).
 */
__noinline int same_name(__u64 dentry_addr, __u64 mnt_addr, const struct vigil_binding *b)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct dentry *dentry = (struct dentry *)dentry_addr;
	struct vfsmount *mnt = (struct vfsmount *)mnt_addr;
	struct vigil_scratch *s = get_scratch();
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	struct inode *root_inode;
	struct walk_ctx w = {};

	if (!s || !b || !b->path_hash || !dentry || !mnt)
		return false;
	if ((__u32)BPF_CORE_READ(real_mount(mnt), mnt_id) != b->mnt_id)
		return false;
	root_dentry = BPF_CORE_READ(task, fs, root.dentry);
	root_mnt = BPF_CORE_READ(task, fs, root.mnt);
	root_inode = BPF_CORE_READ(root_dentry, d_inode);
	if (!root_inode || BPF_CORE_READ(root_inode, i_sb, s_dev) != b->root_dev ||
	    BPF_CORE_READ(root_inode, i_ino) != b->root_ino ||
	    (__u32)BPF_CORE_READ(real_mount(root_mnt), mnt_id) != b->root_mnt)
		return false;
	w.dentry = dentry;
	w.mnt = real_mount(mnt);
	w.root_dentry = root_dentry;
	w.root_mnt = root_mnt;
	w.pos = VIGIL_PATH_MAX;
	bpf_loop(VIGIL_KPATH_STEPS, walk_step, &w, 0);
	w.done = opaque(w.done);
	w.trunc = opaque(w.trunc);
	w.pos = opaque(w.pos);
	if (!w.done || w.trunc || w.pos >= VIGIL_PATH_MAX)
		return false;
	return fnv1a_scratch(w.pos, VIGIL_PATH_MAX - w.pos) == b->path_hash;
}

/* check_create reports whether the open created f, in directory (dev, ino),
 * under a name hashing to name_hash. Requiring creation matters: an O_CREAT
 * without O_EXCL opens whatever appeared under the vetted name since the
 * vetting, e.g. a hard link to a file the policy denies. Global, as
 * same_name is. */
__noinline int check_create(__u64 file_addr, const struct vigil_binding *b)
{
	struct file *f = (struct file *)file_addr;
	struct dentry *d = BPF_CORE_READ(f, f_path.dentry);
	struct inode *dir = BPF_CORE_READ(d, d_parent, d_inode);
	struct vigil_scratch *s = get_scratch();
	const unsigned char *name;
	__u32 len;

	if (!s || !b || !dir)
		return false;
	if (!(BPF_CORE_READ(f, f_mode) & VIGIL_FMODE_CREATED))
		return false;
	if (BPF_CORE_READ(dir, i_sb, s_dev) != b->dev || BPF_CORE_READ(dir, i_ino) != b->ino)
		return false;
	len = BPF_CORE_READ(d, d_name.len);
	name = BPF_CORE_READ(d, d_name.name);
	if (len > VIGIL_NAME_MAX)
		return false;
	if (bpf_probe_read_kernel(s->buf, len & VIGIL_NAME_MAX, name))
		return false;
	return fnv1a_scratch(0, len) == b->name_hash;
}

/*
 * view_socket follows fd to the struct sock of current's socket. A socket
 * file is the one whose f_inode is a sockfs inode (S_IFSOCK) and whose
 * private_data is a struct socket pointing back at the file: an O_PATH fd
 * on a socket file on disk is S_IFSOCK too, but has no struct socket.
 */
static __always_inline void view_socket(struct peer_view *p, long fd)
{
	struct file *f = fd_file(fd);
	struct socket *sock;
	struct sock *sk;

	if (!f)
		return;
	if ((BPF_CORE_READ(f, f_inode, i_mode) & VIGIL_S_IFMT) != VIGIL_S_IFSOCK)
		return;
	sock = (struct socket *)BPF_CORE_READ(f, private_data);
	if (!sock || BPF_CORE_READ(sock, file) != f)
		return;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return;
	p->sk = (__u64)sk;
	p->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	p->state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if (p->family == VIGIL_AF_INET || p->family == VIGIL_AF_INET6) {
		p->port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
		p->daddr4 = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		if (p->family == VIGIL_AF_INET6)
			bpf_core_read(p->addr, sizeof(p->addr), &sk->__sk_common.skc_v6_daddr);
		else
			p->addr[0] = p->daddr4;
	} else if (p->family == VIGIL_AF_UNIX) {
		p->upeer = (__u64)BPF_CORE_READ((struct unix_sock *)sk, peer);
	}
}

/* unix_name returns the address of an AF_UNIX socket's sun_path and its
 * length (sun_path bytes: the bound length minus sun_family), or NULL. */
static __always_inline const char *unix_name(struct sock *sk, __u32 *len)
{
	struct unix_address *a = BPF_CORE_READ((struct unix_sock *)sk, addr);
	int n;

	if (!a)
		return NULL;
	n = BPF_CORE_READ(a, len);
	/* sun_family (2 bytes) is part of len; sun_path holds at most 108. */
	if (n <= 2 || n > 2 + 108)
		return NULL;
	*len = n - 2;
	return (const char *)a + bpf_core_field_offset(struct unix_address, name) +
	       __builtin_offsetof(struct sockaddr_un, sun_path);
}

/* unix_peer_holds compares an AF_UNIX peer with the binding: the socket
 * file it is bound to, or its abstract name. */
static __always_inline bool unix_peer_holds(const struct vigil_binding *b, struct sock *peer)
{
	struct vigil_scratch *s = get_scratch();
	const char *name;
	__u32 len = 0;
	char first = 1;

	if (!s)
		return false;
	if (b->addr[0] == VIGIL_UNIX_PATH) {
		struct inode *inode = BPF_CORE_READ((struct unix_sock *)peer, path.dentry, d_inode);

		return inode && BPF_CORE_READ(inode, i_sb, s_dev) == b->dev && BPF_CORE_READ(inode, i_ino) == b->ino;
	}
	if (b->addr[0] != VIGIL_UNIX_ABSTRACT)
		return false;
	name = unix_name(peer, &len);
	if (!name || len < 1 || bpf_probe_read_kernel(&first, 1, name) || first != 0)
		return false;
	len--;
	if (bpf_probe_read_kernel(s->buf, len & 127, name + 1))
		return false;
	return fnv1a_scratch(0, len & 127) == b->name_hash;
}

/* connect_may_have_connected reports whether a connect that returned ret
 * may have left its socket connected or connecting: success, a
 * non-blocking TCP connect under way, or a blocking one interrupted by a
 * signal (the handshake goes on: inet_stream_connect). */
static __always_inline bool connect_may_have_connected(long ret)
{
	return ret == 0 || ret == -VIGIL_EINPROGRESS || ret == -VIGIL_EINTR || ret == -VIGIL_ERESTARTSYS ||
	       ret == -VIGIL_ERESTARTNOINTR || ret == -VIGIL_ERESTARTNOHAND || ret == -VIGIL_ERESTART_RESTARTBLOCK;
}

/*
 * connect_holds compares the socket a connect used with the binding. With
 * strict (the call returned 0 or EINPROGRESS) the socket must be connected
 * exactly as vetted; otherwise (interrupted) it may also be connected to
 * nothing at all. A vetted AF_UNSPEC (a disconnect) requires that nothing
 * is connected. A socket of another family than vetted is a mismatch, but
 * for one case the kernel allows: an AF_INET6 datagram socket connected
 * with a sockaddr_in (ip6_datagram_connect), which then holds the address
 * v4-mapped.
 */
static __always_inline bool connect_holds(const struct vigil_binding *b, struct peer_view *p, bool strict)
{
	__u64 b0, b1, mapped;
	__u32 b4;
	bool connected;

	if (p->family == VIGIL_AF_UNIX)
		connected = p->upeer != 0;
	else if (p->family == VIGIL_AF_INET || p->family == VIGIL_AF_INET6)
		connected = p->state != VIGIL_TCP_CLOSE;
	else
		return false;
	if (b->family == VIGIL_AF_UNSPEC)
		return !connected;
	if (!strict && !connected)
		return true;

	__builtin_memcpy(&b0, &b->addr[0], 8);
	__builtin_memcpy(&b1, &b->addr[8], 8);
	__builtin_memcpy(&b4, &b->addr[0], 4);
	switch (b->family) {
	case VIGIL_AF_INET:
		if (p->daddr4 != b4 || p->port != b->port)
			return false;
		if (p->family == VIGIL_AF_INET)
			return true;
		/* ::ffff:a.b.c.d in memory order, read as two little-endian words */
		mapped = (__u64)b4 << 32 | 0xffff0000ULL;
		return p->family == VIGIL_AF_INET6 && p->addr[0] == 0 && p->addr[1] == mapped;
	case VIGIL_AF_INET6:
		if (p->family != VIGIL_AF_INET6 || p->port != b->port || p->addr[0] != b0 || p->addr[1] != b1)
			return false;
		/* A v4-mapped peer was connected by the IPv4 code, which routes by
		 * skc_daddr: that must be the vetted address too. */
		if (b0 == 0 && (__u32)b1 == 0xffff0000U)
			return p->daddr4 == (__u32)(b1 >> 32);
		return true;
	case VIGIL_AF_UNIX:
		return p->family == VIGIL_AF_UNIX && p->upeer && unix_peer_holds(b, (struct sock *)p->upeer);
	}
	return false;
}

/* fill_peer puts the socket's peer into e: address and port, or for
 * AF_UNIX the peer's socket file (identity and kernel path) or its
 * abstract name. */
static __always_inline void fill_peer(struct vigil_event *e, const struct peer_view *p)
{
	/* A copy: BPF_CORE_READ would otherwise relocate the peer_view field
	 * access against kernel BTF, where peer_view does not exist. */
	struct unix_sock *u = (struct unix_sock *)p->upeer;
	struct dentry *d;
	const char *name;
	__u32 len = 0;

	if (!p->sk)
		return;
	e->flags |= VIGIL_F_HAS_PEER;
	e->peer_family = p->family;
	e->peer_port = p->port;
	__builtin_memcpy(e->peer, p->addr, sizeof(e->peer));
	if (p->family != VIGIL_AF_UNIX || !u)
		return;
	d = BPF_CORE_READ(u, path.dentry);
	if (d) {
		struct inode *inode = BPF_CORE_READ(d, d_inode);

		e->flags |= VIGIL_F_HAS_OBJECT;
		e->dev = BPF_CORE_READ(inode, i_sb, s_dev);
		e->ino = BPF_CORE_READ(inode, i_ino);
		fill_kpath(e, d, BPF_CORE_READ(u, path.mnt));
		return;
	}
	name = unix_name((struct sock *)u, &len);
	if (name && bpf_probe_read_kernel(e->kpath, len & 127, name) == 0)
		e->kpath_len = len & 127;
}

/* doom marks child (a tid) to be killed at its first sys_exit: a new task
 * returns to user mode through ret_from_fork -> syscall_exit_to_user_mode,
 * which fires sys_exit (the syscall-tracepoint work flag is inherited) and
 * handles the pending SIGKILL before the first user instruction. The
 * tracepoints that see the child earlier run in its parent, and
 * bpf_send_signal can only signal current. */
static __always_inline bool doom(__u32 child, __u64 ns, __u32 reason)
{
	struct vigil_doom d = { .ns = ns, .reason = reason };
	long err = bpf_map_update_elem(&doomed, &child, &d, BPF_NOEXIST);

	if (err == 0)
		__sync_fetch_and_add(&doomed_pending, 1);
	return err == 0 || err == -VIGIL_EEXIST; /* counted once per entry */
}

static __always_inline void undoom(__u32 tid)
{
	if (bpf_map_delete_elem(&doomed, &tid) == 0)
		__sync_fetch_and_add(&doomed_pending, -1);
}

/*
 * kill_doomed kills current if it is a doomed clone child, at its first
 * sys_exit, and reports it with a VIOLATION whose child_tid is its own tid.
 * It runs before the watched-set check: a child that could not be added to
 * the watched set (UNTRACKED) is doomed too. The first sys_exit is the
 * return from the clone (0) while the tracepoints are attached; a child
 * doomed while they were not (UNTRACKED needs no binding) dies at the first
 * one after they are, which comes before any bound grant of it can stand
 * (vigil attaches before it writes a binding).
 */
static __always_inline bool kill_doomed(struct bpf_raw_tracepoint_args *ctx, __u64 pid_tgid)
{
	__u32 tid = (__u32)pid_tgid;
	struct vigil_doom *d = bpf_map_lookup_elem(&doomed, &tid);
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	struct vigil_event *e;
	__u32 flags, reason;
	__u64 ns;

	if (!d)
		return false;
	ns = d->ns;
	reason = d->reason;
	undoom(tid);
	flags = kill_current();
	e = reserve_event(VIGIL_EV_VIOLATION, pid_tgid, BPF_CORE_READ(regs, orig_ax));
	if (!e)
		return true;
	e->reason = reason;
	e->flags = flags | VIGIL_F_AT_EXIT | VIGIL_F_HAS_CHILD;
	e->child_tid = tid;
	e->child_ns = ns;
	read_args(e, regs);
	submit_event(e, true);
	return true;
}

/*
 * emit_exit writes the EXIT (or VIOLATION) record of n. It is a global
 * function, so the verifier checks it once, with n unknown, instead of once
 * for every combination of outcomes sys_exit can reach it with: inlined,
 * the record's kernel-path walk and peer multiplied sys_exit's states and
 * made it most of the time vigil takes to start.
 */
__noinline int emit_exit(__u64 pid_tgid, __u64 regs_addr, const struct exit_note *n)
{
	struct vigil_event *e;

	if (!n)
		return 0;
	e = reserve_event(n->reason != VIGIL_OK ? VIGIL_EV_VIOLATION : VIGIL_EV_EXIT, pid_tgid, n->nr);
	if (!e)
		return 0;
	e->ret = n->ret;
	e->reason = n->reason;
	e->flags = n->flags | VIGIL_F_AT_EXIT;
	read_args(e, (struct pt_regs *)regs_addr);
	if (n->file) {
		struct file *f = (struct file *)n->file;

		e->flags |= VIGIL_F_HAS_OBJECT;
		e->dev = n->dev;
		e->ino = n->ino;
		fill_kpath(e, BPF_CORE_READ(f, f_path.dentry), BPF_CORE_READ(f, f_path.mnt));
	}
	fill_peer(e, &n->peer);
	if (n->has_child) {
		e->flags |= VIGIL_F_HAS_CHILD;
		e->child_tid = n->child_tid;
		e->child_ns = n->child_ns;
	}
	/* A confirmed bound call is only owed an audit record, which can wait
	 * for the reader's next batch; waking it for every bound open cost
	 * more than the open itself. Violations wake it at once. */
	submit_event(e, n->reason != VIGIL_OK);
	return 0;
}

/*
 * sys_exit — the kernel-object check, before the return to user mode.
 *
 *   if doomed children are pending and doomed[tid]: SIGKILL, VIOLATION; return
 *   unless capturing: if current has no seccomp filter: return
 *   if filtered and nr may change an emulation snapshot: bump view_epoch
 *   unless capturing: if no binding: return
 *   if tgid is vigil or not watched: return
 *   nr = regs->orig_ax
 *   if tid has a binding (its published slot, or bindings[tid]) and its nr == nr
 *       (execve and execveat count as one):
 *       b = copy; free the slot or delete bindings[tid]
 *   if not b and nr not in capture_mask: return
 *   object: open family, ret >= 0:  f = fd table[ret]
 *           execve/execveat, ret 0: f = current->mm->exe_file (set from bprm->file)
 *           connect:                sk = socket of fd table[arg0]
 *           bound clone:            child = forked[tid] (from sched_process_fork)
 *   if b:
 *       state KILLED (a check killed)    -> report only
 *       kind does not fit nr             -> OBJECT_MISMATCH (fail closed)
 *       (state ARMED: the call entered before the tracepoints were attached, so
 *        sys_enter never saw it; the object check below is what holds a grant)
 *       FILE/CREATE: ret < 0 -> ok; state not ARMED/ENTERED -> ARG_UNREADABLE; no f -> NO_OBJECT;
 *                    FILE: f's (dev, ino) != b's; CREATE: parent or name differ -> OBJECT_MISMATCH
 *       EXEC/CLONE:  ret < 0 -> ok;
 *                    state ARMED or ENTERED (sched_process_exec/fork never checked) -> UNCHECKED
 *       CONNECT:     nothing may be connected (ret) -> ok; state not ARMED/ENTERED -> ARG_UNREADABLE;
 *                    no socket -> NO_OBJECT; peer differs (connect_holds) -> OBJECT_MISMATCH
 *       any reason: SIGKILL
 *   b held, b.flags QUIET and nr not captured: return (nothing waits for it)
 *   emit VIOLATION if reason else EXIT, flagged AT_EXIT (ret, args, the object)
 */
SEC("raw_tp/sys_exit")
int vigil_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u32 tid = (__u32)pid_tgid;
	struct vigil_binding b = {};
	struct vigil_binding *bp;
	struct vigil_slot *slot;
	struct vigil_scratch *s;
	struct exit_note *n;
	struct vigil_fork *cp;
	struct pt_regs *regs;
	struct file *f = NULL;
	__u32 reason = VIGIL_OK, flags = 0;
	__u64 dev = 0, ino = 0;
	bool bound = false, filtered;
	long nr, ret;

	ret = (long)ctx->args[1];
	if (doomed_pending && kill_doomed(ctx, pid_tgid))
		return 0;
	filtered = seccomp_filtered();
	if (!capturing && !filtered)
		return 0;
	if (filtered)
		view_change_exit(ctx);
	bp = find_binding(tid, &slot);
	if (!capturing && !bp)
		return 0;
	if (tgid == self_tgid || !bpf_map_lookup_elem(&watched, &tgid))
		return 0;

	regs = (struct pt_regs *)ctx->args[0];
	nr = BPF_CORE_READ(regs, orig_ax);
	/* A successful execveat returns with orig_ax reading __NR_execve (seen
	 * on 6.18): match the exec pair as one, and report the bound number. */
	if (bp && ((long)bp->nr == nr || (is_exec(bp->nr) && is_exec(nr)))) {
		b = *bp;
		bound = true;
		nr = b.nr;
	}
	if (!bound && !captured(nr))
		return 0;
	s = get_scratch();
	if (!s) {
		/* Never (a one-entry per-CPU array); were it so, fail closed. */
		if (bound)
			kill_current();
		return 0;
	}
	n = &s->exit;
	__builtin_memset(n, 0, sizeof(*n));

	if (returns_fd(nr)) {
		if (ret >= 0)
			f = fd_file(ret);
	} else if (is_exec(nr)) {
		if (ret == 0) {
			struct task_struct *task = (struct task_struct *)bpf_get_current_task();

			f = BPF_CORE_READ(task, mm, exe_file);
		}
	} else if (nr == NR_connect) {
		if (connect_may_have_connected(ret))
			view_socket(&n->peer, syscall_arg(regs, 0));
	} else if (bound && is_clone(nr)) {
		cp = bpf_map_lookup_elem(&forked, &tid);
		if (cp) {
			n->child_tid = cp->child;
			n->child_ns = cp->ns;
			n->has_child = 1;
			bpf_map_delete_elem(&forked, &tid);
		}
	}
	if (f) {
		struct inode *inode = BPF_CORE_READ(f, f_inode);

		dev = BPF_CORE_READ(inode, i_sb, s_dev);
		ino = BPF_CORE_READ(inode, i_ino);
	}

	if (bound) {
		flags |= VIGIL_F_BOUND;
		if (b.state == VIGIL_STATE_KILLED)
			flags |= VIGIL_F_KILLED;
		else if (!kind_fits(b.kind, nr))
			reason = VIGIL_OBJECT_MISMATCH;
		else if (b.kind == VIGIL_BIND_EXEC || b.kind == VIGIL_BIND_CLONE) {
			if (ret < 0)
				; /* no new image, no child */
			else if (b.state == VIGIL_STATE_REPLACED)
				flags |= VIGIL_F_REPLACED;
			else if (b.state != VIGIL_STATE_CHECKED)
				reason = VIGIL_UNCHECKED;
		} else if (b.kind == VIGIL_BIND_CONNECT) {
			if (!connect_may_have_connected(ret))
				; /* the kernel refused: nothing is connected */
			else if (!passed_entry(b.state))
				reason = VIGIL_ARG_UNREADABLE;
			else if (!n->peer.sk)
				reason = VIGIL_NO_OBJECT;
			else if (!connect_holds(&b, &n->peer, ret == 0 || ret == -VIGIL_EINPROGRESS))
				reason = VIGIL_OBJECT_MISMATCH;
		} else if (ret < 0)
			; /* the kernel refused: the watchee holds nothing new */
		else if (!passed_entry(b.state))
			reason = VIGIL_ARG_UNREADABLE;
		else if (!f)
			reason = VIGIL_NO_OBJECT;
		else if (b.kind == VIGIL_BIND_FILE) {
			if (dev == b.dev && ino == b.ino)
				reason = VIGIL_OK;
			else if (same_name((__u64)BPF_CORE_READ(f, f_path.dentry), (__u64)BPF_CORE_READ(f, f_path.mnt), &b))
				flags |= VIGIL_F_REPLACED;
			else
				reason = VIGIL_OBJECT_MISMATCH;
		}
		else
			reason = check_create((__u64)f, &b) ? VIGIL_OK : VIGIL_OBJECT_MISMATCH;
		if (reason != VIGIL_OK)
			flags |= kill_current();
		/* Dropped only now: until the kill is queued, a sibling's
		 * clone(CLONE_FILES) must still find this fd binding pending
		 * (group_binds_fd) and doom its child, which the group's kill
		 * would not reach; once it is queued, that clone fails. */
		drop_binding(tid, slot);
		if (reason == VIGIL_OK && (b.flags & VIGIL_BIND_QUIET) && !captured(nr))
			return 0; /* held, and no record waits for it */
	}

	n->ret = ret;
	n->nr = nr;
	n->file = (__u64)f;
	n->dev = dev;
	n->ino = ino;
	n->reason = reason;
	n->flags = flags;
	return emit_exit(pid_tgid, (__u64)regs, n);
}

/*
 * sched_process_exec fires in exec_binprm() after the binary handler loaded
 * the new image (past the point of no return: the exec cannot fail any
 * more) and before the thread returns to user mode. bprm->file is what
 * runs: for a #! script the loop over binfmt handlers has replaced the
 * script by its interpreter, and for an ELF with PT_INTERP it is the ELF
 * itself (ld.so is mapped by the loader, not run by name).
 *
 *   if tgid is vigil or not watched: return
 *   bump bind_ctl.comm_epoch (the thread's comm is the new program's)
 *   b = bindings[old_pid] or bindings[pid]: a non-leader thread's exec has
 *       taken over the leader's pid (de_thread), old_pid is its tid at entry
 *   if b.state is ENTERED or ARMED and b.nr is execve/execveat (the bound call is
 *       this exec: sys_enter saw it):
 *       b.kind != EXEC or bprm->file's (dev, ino) != b's -> OBJECT_MISMATCH:
 *           SIGKILL, b.state = KILLED, VIOLATION with the file that would run
 *       else b.state = CHECKED
 *   if the binding was keyed by old_pid: move it to pid, where sys_exit
 *       looks (old_pid no longer exists, so whatever it held goes)
 */
SEC("raw_tp/sched_process_exec")
int vigil_exec(struct bpf_raw_tracepoint_args *ctx)
{
	__u32 old_pid = (__u32)ctx->args[1];
	struct linux_binprm *bprm = (struct linux_binprm *)ctx->args[2];
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u32 tid = (__u32)pid_tgid;
	struct vigil_binding b, *bp;
	struct vigil_slot *slot;
	struct vigil_event *e;
	struct file *f = NULL;
	__u32 key = old_pid, reason = VIGIL_OK, flags = VIGIL_F_BOUND;
	__u64 dev = 0, ino = 0;
	bool replaced = false;

	if (tgid == self_tgid || !bpf_map_lookup_elem(&watched, &tgid))
		return 0;
	comm_changed();
	bp = find_binding(key, &slot);
	if (!bp && old_pid != tid) {
		key = tid;
		bp = find_binding(key, &slot);
	}
	if (!bp)
		return 0;
	b = *bp;

	if (passed_entry(b.state) && is_exec(b.nr)) {
		f = BPF_CORE_READ(bprm, file);
		if (f) {
			struct inode *inode = BPF_CORE_READ(f, f_inode);

			dev = BPF_CORE_READ(inode, i_sb, s_dev);
			ino = BPF_CORE_READ(inode, i_ino);
		}
		if (b.kind != VIGIL_BIND_EXEC || !f)
			reason = VIGIL_OBJECT_MISMATCH;
		else if ((dev != b.dev || ino != b.ino) &&
			 !(replaced = same_name((__u64)BPF_CORE_READ(f, f_path.dentry), (__u64)BPF_CORE_READ(f, f_path.mnt), &b)))
			reason = VIGIL_OBJECT_MISMATCH;
		if (reason != VIGIL_OK) {
			flags |= kill_current();
			b.state = VIGIL_STATE_KILLED;
		} else {
			b.state = replaced ? VIGIL_STATE_REPLACED : VIGIL_STATE_CHECKED;
		}
	}
	if (key != tid) {
		__sync_fetch_and_add(&exec_moves_begun, 1);
		/* Drop first, so that the move cannot fail for want of room. */
		drop_binding(key, slot);
		if (is_exec(b.nr) && b.state != VIGIL_STATE_ARMED && put_binding(tid, &b)) {
			/* Nowhere to keep it: sys_exit could not check the exec. */
			if (reason == VIGIL_OK) {
				flags |= kill_current();
				reason = VIGIL_UNCHECKED;
			}
		}
		__sync_fetch_and_add(&exec_moves_done, 1);
	} else if (b.state != bp->state) {
		bp->state = b.state;
	}
	if (reason == VIGIL_OK)
		return 0;

	e = reserve_event(VIGIL_EV_VIOLATION, pid_tgid, b.nr);
	if (!e)
		return 0;
	e->reason = reason;
	e->flags = flags;
	for (int i = 0; i < 6; i++)
		e->args[i] = 0;
	if (f)
		fill_file(e, f);
	submit_event(e, true);
	return 0;
}

/* ns_unshared returns the CLONE_NEW* bits of the namespaces child does not
 * share with parent. Each is compared where copy_process() puts it: the
 * user namespace in the credentials, the others in nsproxy, PID and time
 * by their *_for_children members (the ones CLONE_NEWPID/CLONE_NEWTIME
 * replace; the task's own may differ from its parent's already, after an
 * earlier unshare). A child without new namespaces shares the nsproxy. */
static __always_inline __u64 ns_unshared(struct task_struct *parent, struct task_struct *child)
{
	struct nsproxy *pn = BPF_CORE_READ(parent, nsproxy);
	struct nsproxy *cn = BPF_CORE_READ(child, nsproxy);
	__u64 d = 0;

	if (BPF_CORE_READ(parent, real_cred, user_ns) != BPF_CORE_READ(child, real_cred, user_ns))
		d |= VIGIL_CLONE_NEWUSER;
	if (pn == cn)
		return d;
	if (BPF_CORE_READ(pn, mnt_ns) != BPF_CORE_READ(cn, mnt_ns))
		d |= VIGIL_CLONE_NEWNS;
	if (BPF_CORE_READ(pn, uts_ns) != BPF_CORE_READ(cn, uts_ns))
		d |= VIGIL_CLONE_NEWUTS;
	if (BPF_CORE_READ(pn, ipc_ns) != BPF_CORE_READ(cn, ipc_ns))
		d |= VIGIL_CLONE_NEWIPC;
	if (BPF_CORE_READ(pn, pid_ns_for_children) != BPF_CORE_READ(cn, pid_ns_for_children))
		d |= VIGIL_CLONE_NEWPID;
	if (BPF_CORE_READ(pn, net_ns) != BPF_CORE_READ(cn, net_ns))
		d |= VIGIL_CLONE_NEWNET;
	if (BPF_CORE_READ(pn, cgroup_ns) != BPF_CORE_READ(cn, cgroup_ns))
		d |= VIGIL_CLONE_NEWCGROUP;
	if (BPF_CORE_READ(pn, time_ns_for_children) != BPF_CORE_READ(cn, time_ns_for_children))
		d |= VIGIL_CLONE_NEWTIME;
	return d;
}

struct group_ctx {
	struct list_head *head;
	struct list_head *node;
	__u32 found;
};

/* group_step visits one thread of a thread group (signal->thread_head,
 * linked through task->thread_node) and stops at a pending FILE or CREATE
 * binding. */
static long group_step(__u32 i, void *data)
{
	struct group_ctx *g = data;
	struct list_head *node = g->node;
	struct task_struct *t;
	struct vigil_binding *b;
	struct vigil_slot *slot;
	__u32 tid;

	node = BPF_CORE_READ(node, next);
	if (!node || node == g->head)
		return 1;
	g->node = node;
	t = (struct task_struct *)((void *)node - bpf_core_field_offset(struct task_struct, thread_node));
	tid = BPF_CORE_READ(t, pid);
	b = find_binding(tid, &slot);
	if (b && (b->kind == VIGIL_BIND_FILE || b->kind == VIGIL_BIND_CREATE) && returns_fd(b->nr)) {
		g->found = 1;
		return 1;
	}
	return 0;
}

/* group_binds_fd reports whether a thread of p's group has a pending binding
 * of an fd-returning call, or has too many threads to tell (fail closed). */
static __always_inline bool group_binds_fd(struct task_struct *p)
{
	struct group_ctx g = {};
	long n;

	g.head = (struct list_head *)((void *)BPF_CORE_READ(p, signal) +
				      bpf_core_field_offset(struct signal_struct, thread_head));
	g.node = g.head;
	n = bpf_loop(VIGIL_MAX_GROUP, group_step, &g, 0);
	return opaque(g.found) || n >= VIGIL_MAX_GROUP;
}

/* kill_nothing_doom dooms child (it dies at its first return to user mode)
 * and returns the flags of its violation. */
static __always_inline __u32 kill_nothing_doom(__u32 child)
{
	doom(child, 0, VIGIL_SHARED_FILES);
	return 0;
}

/*
 * sched_process_fork fires in the parent (current) after copy_process()
 * built the child and before the child is first woken (kernel_clone:
 * trace_sched_process_fork precedes wake_up_new_task), so a child can
 * never run a syscall before it is watched, or before it is doomed.
 *
 *   if the parent's tgid is not watched: return
 *   b = bindings[parent tid]
 *   if b.nr is clone/clone3 and b.state is ENTERED or ARMED (the bound call is this
 *       clone) or KILLED (sys_enter killed it; the child must not live):
 *       ns = ns_unshared(parent, child)
 *       want = b.clone_flags & CLONE_NEW* (clone: minus CSIGNAL, the exit signal)
 *       if KILLED, or b.kind != CLONE, or ns != want:
 *           SIGKILL the parent; doom the child; b.state = KILLED;
 *           VIOLATION naming the child, unless sys_enter already reported
 *       else b.state = CHECKED
 *       forked[parent tid] = (child, ns) for sys_exit's record
 *   if the child is a new thread group: add it to watched, or fail closed
 *       (UNTRACKED: kill the parent, doom the child)
 */
SEC("raw_tp/sched_process_fork")
int vigil_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ptid = BPF_CORE_READ(parent, pid);
	__u32 ctgid, ctid;
	struct vigil_binding *bp;
	struct vigil_slot *slot;
	struct vigil_event *e;
	__u32 flags = 0;
	__u8 one = 1;

	if (!bpf_map_lookup_elem(&watched, &ptgid))
		return 0;
	ctgid = BPF_CORE_READ(child, tgid);
	ctid = BPF_CORE_READ(child, pid);

	bp = find_binding(ptid, &slot);
	if (bp && is_clone(bp->nr) && (passed_entry(bp->state) || bp->state == VIGIL_STATE_KILLED)) {
		struct vigil_fork fk = { .child = ctid };
		__u64 want = bp->clone_flags & VIGIL_CLONE_NS;
		bool killed = bp->state == VIGIL_STATE_KILLED;
		__u32 reason = VIGIL_OK;

		if (bp->nr == NR_clone)
			want &= ~VIGIL_CSIGNAL;
		fk.ns = ns_unshared(parent, child);
		if (killed || bp->kind != VIGIL_BIND_CLONE || fk.ns != want)
			reason = killed ? VIGIL_ARG_CHANGED : VIGIL_OBJECT_MISMATCH;
		bpf_map_update_elem(&forked, &ptid, &fk, BPF_ANY);
		if (reason == VIGIL_OK) {
			bp->state = VIGIL_STATE_CHECKED;
		} else {
			/* The parent's group (a CLONE_THREAD child included) dies
			 * with the SIGKILL; a new process needs its own. */
			flags = VIGIL_F_BOUND | VIGIL_F_HAS_CHILD | kill_current();
			doom(ctid, fk.ns, reason);
			bp->state = VIGIL_STATE_KILLED;
			if (!killed) {
				e = reserve_event(VIGIL_EV_VIOLATION, pid_tgid, bp->nr);
				if (e) {
					e->reason = reason;
					e->flags = flags;
					e->child_tid = ctid;
					e->child_ns = fk.ns;
					for (int i = 0; i < 6; i++)
						e->args[i] = 0;
					submit_event(e, true);
				}
			}
		}
	}

	if (ctgid == ptgid)
		return 0; /* a thread: same thread group */
	if (BPF_CORE_READ(child, files) == BPF_CORE_READ(parent, files)) {
		/* clone(CLONE_FILES) without CLONE_THREAD: the child shares the
		 * parent's descriptor table. From now on the supervisor emulates
		 * their fd-returning grants; one already bound in the parent's
		 * group (armed or under way) could hand the child a descriptor
		 * no kill takes back, so the child dies first. */
		__u32 zero = 0;
		struct vigil_bind_ctl *ctl = bpf_map_lookup_elem(&bind_ctl, &zero);

		/* Counted first, with a full barrier (a locked add), before the
		 * pending bindings are looked at below: the supervisor publishes
		 * a binding with one (a compare-and-swap) before it reads the
		 * count, so either it sees the count or this sees its binding. */
		if (ctl)
			__sync_fetch_and_add(&ctl->shared_files, 1);
		bpf_map_update_elem(&shared_files, &ptgid, &one, BPF_ANY);
		bpf_map_update_elem(&shared_files, &ctgid, &one, BPF_ANY);
		if (group_binds_fd(parent)) {
			flags = kill_nothing_doom(ctid);
			e = reserve_event(VIGIL_EV_VIOLATION, pid_tgid, -1);
			if (e) {
				e->reason = VIGIL_SHARED_FILES;
				e->flags = flags | VIGIL_F_HAS_CHILD;
				e->child_tid = ctid;
				for (int i = 0; i < 6; i++)
					e->args[i] = 0;
				submit_event(e, true);
			}
		}
	}
	if (bpf_map_update_elem(&watched, &ctgid, &one, BPF_ANY) == 0)
		return 0;

	/* The child would run unchecked. Fail closed on the parent (current:
	 * the only task bpf_send_signal can reach here) and on the child (at
	 * its first return to user mode), and tell the loader the child's
	 * tgid (args[0]). */
	flags = kill_current();
	doom(ctid, 0, VIGIL_UNTRACKED);
	e = reserve_event(VIGIL_EV_VIOLATION, pid_tgid, -1);
	if (!e)
		return 0;
	e->reason = VIGIL_UNTRACKED;
	e->flags = flags | VIGIL_F_HAS_CHILD;
	e->child_tid = ctid;
	e->args[0] = ctgid;
	for (int i = 1; i < 6; i++)
		e->args[i] = 0;
	submit_event(e, true);
	return 0;
}

/*
 * sched_process_exit: drop the thread's binding, pending clone record and
 * doom; when the thread group is gone, drop it from the watched set so a
 * recycled pid is not watched. do_exit() decrements signal->live
 * (atomic_dec_and_test, whose result is group_dead) before
 * trace_sched_process_exit, so the last thread to exit reads 0. 6.18's
 * tracepoint also passes group_dead as its second argument; reading
 * signal->live keeps the program attachable on kernels whose tracepoint
 * has only the task.
 */
SEC("raw_tp/sched_process_exit")
int vigil_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	__u32 tgid = BPF_CORE_READ(task, tgid);
	__u32 pid = BPF_CORE_READ(task, pid);

	/* A doomed child dies at its first sys_exit; this only catches one
	 * that died before (and runs before the watched check, like there). */
	if (doomed_pending)
		undoom(pid);
	/* A dead thread's binding is nobody's: free its slot whether or not
	 * it is watched (a published slot of a dead tid would only push a
	 * live thread's binding to the hash). */
	forget_thread(pid);
	if (!bpf_map_lookup_elem(&watched, &tgid))
		return 0;
	bpf_map_delete_elem(&forked, &pid);
	if (BPF_CORE_READ(task, signal, live.counter) == 0) {
		bpf_map_delete_elem(&watched, &tgid);
		bpf_map_delete_elem(&shared_files, &tgid);
	}
	return 0;
}

/*
 * task_rename fires in __set_task_comm, under the task's lock and just
 * before the new name is copied: a thread naming itself (PR_SET_NAME,
 * pthread_setname_np), a write to /proc/<tid>/comm, an exec. Userspace reads
 * the epoch before it reads a comm; the renamed thread's own next trapped
 * call comes after the copy, so its records have the new name. Only a call
 * of another thread read between this bump and the copy can cache the old
 * name, until the next bump or the cache's age limit. Attached for good: renames are
 * rare, and the syscall tracepoints that could see PR_SET_NAME are attached
 * only while bindings are pending.
 */
SEC("raw_tp/task_rename")
int vigil_rename(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	__u32 tgid = BPF_CORE_READ(task, tgid);

	if (tgid == self_tgid || !bpf_map_lookup_elem(&watched, &tgid))
		return 0;
	comm_changed();
	return 0;
}
