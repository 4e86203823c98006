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
 *              memory, not which object the kernel handed out).
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
#include "vigil.h"

/* bpf_probe_read_user_str and bpf_send_signal are GPL-only helpers. */
char LICENSE[] SEC("license") = "Dual BSD/GPL";

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

/* x86_64 syscall numbers the programs know the path argument of. */
#define NR_open 2
#define NR_execve 59
#define NR_creat 85
#define NR_openat 257
#define NR_execveat 322
#define NR_openat2 437

struct vigil_scratch {
	char buf[VIGIL_SCRATCH];
};

/* watched: thread groups under supervision (tgid -> 1); seeded by the loader, follows fork/exit. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VIGIL_MAX_WATCHED);
	__type(key, __u32);
	__type(value, __u8);
} watched SEC(".maps");

/* bindings: the grant a thread is about to be CONTINUEd with (tid -> binding). */
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

/* Bitmap of syscall numbers (0..VIGIL_CAPTURE_NR-1) that get ENTER/EXIT
 * events: observe mode and audit correlation. Set by the loader. */
const volatile __u64 capture_mask[VIGIL_CAPTURE_NR / 64] = {};
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
	e->pad = 0;
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
 *   if tgid is vigil or not watched: return
 *   b = bindings[tid]
 *   if b and b.nr == nr and b.state == ARMED:
 *       n = probe_read_user_str(scratch, reg[b.arg_index])
 *       if n fails:                                    reason = ARG_UNREADABLE
 *       elif n-1 != b.arg_len or fnv(scratch) != b.arg_hash: reason = ARG_CHANGED
 *       if reason: SIGKILL; b.state = KILLED  else: b.state = ENTERED
 *   if reason: emit VIOLATION (args, path as user memory now holds it)
 *   elif nr in capture_mask: emit ENTER (args, path if nr has one)
 */
SEC("raw_tp/sys_enter")
int vigil_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u32 tid = (__u32)pid_tgid;
	struct pt_regs *regs;
	struct vigil_binding *b;
	struct vigil_scratch *s;
	struct vigil_event *e;
	__u32 reason = VIGIL_OK, flags = 0;
	bool bound, capture;
	long nr, n = 0;
	int idx;

	if (tgid == self_tgid || !bpf_map_lookup_elem(&watched, &tgid))
		return 0;

	regs = (struct pt_regs *)ctx->args[0];
	nr = (long)ctx->args[1];
	b = bpf_map_lookup_elem(&bindings, &tid);
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
		n = bpf_probe_read_user_str(s->buf, VIGIL_PATH_MAX, (const void *)syscall_arg(regs, idx));
		if (n <= 0)
			reason = VIGIL_ARG_UNREADABLE;
		else if ((__u32)(n - 1) != b->arg_len || fnv1a_scratch(0, n - 1) != b->arg_hash)
			reason = VIGIL_ARG_CHANGED;
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

/* fill_kpath writes the kernel's path of f, as seen from current's root,
 * into e->kpath. */
static __always_inline void fill_kpath(struct vigil_event *e, struct file *f)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct vigil_scratch *s = get_scratch();
	struct walk_ctx w = {};
	__u32 len;

	if (!s)
		return;
	w.dentry = BPF_CORE_READ(f, f_path.dentry);
	w.mnt = real_mount(BPF_CORE_READ(f, f_path.mnt));
	w.root_dentry = BPF_CORE_READ(task, fs, root.dentry);
	w.root_mnt = BPF_CORE_READ(task, fs, root.mnt);
	w.pos = VIGIL_PATH_MAX;
	bpf_loop(VIGIL_KPATH_STEPS, walk_step, &w, 0);
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

/* check_create reports whether the open created f, in directory (dev, ino),
 * under a name hashing to name_hash. Requiring creation matters: an O_CREAT
 * without O_EXCL opens whatever appeared under the vetted name since the
 * vetting, e.g. a hard link to a file the policy denies. */
static __always_inline bool check_create(struct file *f, struct vigil_binding *b)
{
	struct dentry *d = BPF_CORE_READ(f, f_path.dentry);
	struct inode *dir = BPF_CORE_READ(d, d_parent, d_inode);
	struct vigil_scratch *s = get_scratch();
	const unsigned char *name;
	__u32 len;

	if (!s || !dir)
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
 * sys_exit — the kernel-object check, before the return to user mode.
 *
 *   if tgid is vigil or not watched: return
 *   nr = regs->orig_ax
 *   if bindings[tid] and its nr == nr: b = copy; delete bindings[tid]
 *   if not b and nr not in capture_mask: return
 *   f = fd table[ret] if ret >= 0 and (b or nr returns an fd)
 *   if b:
 *       state KILLED (sys_enter killed)  -> report only
 *       ret < 0                          -> nothing was handed out: ok
 *       state != ENTERED                 -> ARG_UNREADABLE (bytes never re-checked)
 *       f == NULL                        -> NO_OBJECT
 *       FILE:   f's (dev, ino) != b's    -> OBJECT_MISMATCH
 *       CREATE: parent (dev, ino) or name hash differ -> OBJECT_MISMATCH
 *       unknown kind                     -> OBJECT_MISMATCH (fail closed)
 *       any reason: SIGKILL
 *   emit VIOLATION if reason else EXIT, flagged AT_EXIT (ret, args, dev/ino and kpath of f)
 */
SEC("raw_tp/sys_exit")
int vigil_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tgid = pid_tgid >> 32;
	__u32 tid = (__u32)pid_tgid;
	struct vigil_binding b = {};
	struct vigil_binding *bp;
	struct vigil_event *e;
	struct pt_regs *regs;
	struct file *f = NULL;
	__u32 reason = VIGIL_OK, flags = 0;
	__u64 dev = 0, ino = 0;
	bool bound = false;
	long nr, ret;

	if (tgid == self_tgid || !bpf_map_lookup_elem(&watched, &tgid))
		return 0;

	regs = (struct pt_regs *)ctx->args[0];
	ret = (long)ctx->args[1];
	nr = BPF_CORE_READ(regs, orig_ax);
	bp = bpf_map_lookup_elem(&bindings, &tid);
	if (bp && (long)bp->nr == nr) {
		b = *bp;
		bound = true;
		bpf_map_delete_elem(&bindings, &tid);
	}
	if (!bound && !captured(nr))
		return 0;

	if (ret >= 0 && (bound || returns_fd(nr)))
		f = fd_file(ret);
	if (f) {
		struct inode *inode = BPF_CORE_READ(f, f_inode);

		dev = BPF_CORE_READ(inode, i_sb, s_dev);
		ino = BPF_CORE_READ(inode, i_ino);
	}

	if (bound) {
		flags |= VIGIL_F_BOUND;
		if (b.state == VIGIL_STATE_KILLED)
			flags |= VIGIL_F_KILLED;
		else if (ret < 0)
			; /* the kernel refused: the watchee holds nothing new */
		else if (b.state != VIGIL_STATE_ENTERED)
			reason = VIGIL_ARG_UNREADABLE;
		else if (!f)
			reason = VIGIL_NO_OBJECT;
		else if (b.kind == VIGIL_BIND_FILE)
			reason = (dev == b.dev && ino == b.ino) ? VIGIL_OK : VIGIL_OBJECT_MISMATCH;
		else if (b.kind == VIGIL_BIND_CREATE)
			reason = check_create(f, &b) ? VIGIL_OK : VIGIL_OBJECT_MISMATCH;
		else
			reason = VIGIL_OBJECT_MISMATCH;
		if (reason != VIGIL_OK)
			flags |= kill_current();
	}

	e = reserve_event(reason != VIGIL_OK ? VIGIL_EV_VIOLATION : VIGIL_EV_EXIT, pid_tgid, nr);
	if (!e)
		return 0;
	e->ret = ret;
	e->reason = reason;
	e->flags = flags | VIGIL_F_AT_EXIT;
	read_args(e, regs);
	if (f) {
		e->flags |= VIGIL_F_HAS_OBJECT;
		e->dev = dev;
		e->ino = ino;
		fill_kpath(e, f);
	}
	/* A confirmed bound call is only owed an audit record, which can wait
	 * for the reader's next batch; waking it for every bound open cost
	 * more than the open itself. Violations wake it at once. */
	submit_event(e, reason != VIGIL_OK);
	return 0;
}

/*
 * sched_process_fork fires in the parent before the child is first woken
 * (kernel_clone: trace_sched_process_fork precedes wake_up_new_task), so a
 * child can never run a syscall before it is watched.
 */
SEC("raw_tp/sched_process_fork")
int vigil_fork(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *parent = (struct task_struct *)ctx->args[0];
	struct task_struct *child = (struct task_struct *)ctx->args[1];
	__u32 ptgid = BPF_CORE_READ(parent, tgid);
	__u32 ctgid;
	__u8 one = 1;

	if (!bpf_map_lookup_elem(&watched, &ptgid))
		return 0;
	ctgid = BPF_CORE_READ(child, tgid);
	if (ctgid == ptgid)
		return 0; /* a thread: same thread group */
	if (bpf_map_update_elem(&watched, &ctgid, &one, BPF_ANY) == 0)
		return 0;

	/* The child would run unchecked. Fail closed on the parent (current:
	 * the only task bpf_send_signal can reach here) and tell the loader
	 * the child's tgid (args[0]) so that userspace can kill it. */
	__u32 flags = kill_current();
	struct vigil_event *e = reserve_event(VIGIL_EV_VIOLATION, bpf_get_current_pid_tgid(), -1);

	if (!e)
		return 0;
	e->reason = VIGIL_UNTRACKED;
	e->flags = flags;
	e->args[0] = ctgid;
	for (int i = 1; i < 6; i++)
		e->args[i] = 0;
	submit_event(e, true);
	return 0;
}

/*
 * sched_process_exit: drop the thread's binding; when the thread group is
 * gone, drop it from the watched set so a recycled pid is not watched.
 * do_exit() decrements signal->live (atomic_dec_and_test, whose result is
 * group_dead) before trace_sched_process_exit, so the last thread to exit
 * reads 0. 6.18's tracepoint also passes group_dead as its second argument;
 * reading signal->live keeps the program attachable on kernels whose
 * tracepoint has only the task.
 */
SEC("raw_tp/sched_process_exit")
int vigil_exit(struct bpf_raw_tracepoint_args *ctx)
{
	struct task_struct *task = (struct task_struct *)ctx->args[0];
	__u32 tgid = BPF_CORE_READ(task, tgid);
	__u32 pid;

	if (!bpf_map_lookup_elem(&watched, &tgid))
		return 0;
	pid = BPF_CORE_READ(task, pid);
	bpf_map_delete_elem(&bindings, &pid);
	if (BPF_CORE_READ(task, signal, live.counter) == 0)
		bpf_map_delete_elem(&watched, &tgid);
	return 0;
}
