// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * observe.bpf.c — `vigil observe`: one record per syscall of the watched
 * processes, with the pointer arguments as user memory held them at
 * sys_enter and the object the kernel used at sys_exit. Nothing here
 * decides or kills; the binding programs are vigil.bpf.c.
 *
 * What makes a phantom flag mean an attack and never a reused number: the
 * objects a lookup starts from (the dirfd's file, the cwd, the root) are
 * captured at sys_enter, by pointer and by identity, before the kernel
 * looks the path up; at sys_exit the walk that prints the kernel's path of
 * the result notes where it passes that start object. Userspace compares
 * the path argument with the part of the kernel's path below the start:
 * equal, component by component, means the argument named that object
 * from that start (see loader/observe.go and cmd/vigil/internal/observe).
 *
 *   sys_enter  (only for syscalls in syscall_mask, then only for watched
 *              thread groups) copies the arguments, the path or sockaddr,
 *              the comm and the start objects into per-task storage;
 *   sys_exit   turns that copy plus the return value and the object into
 *              one record; exit/exit_group, which never return, are emitted
 *              at sys_enter;
 *   sched_process_exec  compares the kernel's own copy of an exec's
 *              filename with the sys_enter copy (a racing rewrite);
 *   sched_process_fork/exit  make the watched set follow the process tree
 *              and report a call whose sys_exit never came.
 *
 * These are BTF-enabled raw tracepoints (tp_btf): the arguments are typed
 * pointers, read without helper calls. x86_64 only: syscall numbers and
 * pt_regs register names below are x86_64's.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "observe.h"

/* bpf_probe_read_user_str and task storage are GPL-only. */
char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define OBS_NAME_MAX 255
/* Loop steps of the kernel path walk: components plus mount crossings. */
#define OBS_KPATH_STEPS (2 * OBS_KPATH_DEPTH)
#define OBS_HDR ((__u32)sizeof(struct obs_event))

/* x86_64 syscall numbers the programs know. */
#define NR_open 2
#define NR_connect 42
#define NR_execve 59
#define NR_exit 60
#define NR_creat 85
#define NR_exit_group 231
#define NR_openat 257
#define NR_execveat 322
#define NR_openat2 437

/* Kernel ABI constants vmlinux.h has no macros for. */
#define OBS_AT_FDCWD -100
#define OBS_RESOLVE_IN_ROOT 0x10
#define OBS_AF_UNIX 1
#define OBS_AF_INET 2
#define OBS_AF_INET6 10
#define OBS_S_IFMT 0170000
#define OBS_S_IFSOCK 0140000
#define OBS_EINPROGRESS 115

/* bpf_rdonly_cast (6.2) turns an address into a BTF pointer of the given
 * type: loads through it are direct, fault-tolerant instructions instead of
 * a bpf_probe_read_kernel helper call each (about 10x cheaper here). */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;
#define CAST(T, p) ((T *)bpf_rdonly_cast((const void *)(p), bpf_core_type_id_kernel(T)))

/* Per-task state between sys_enter and sys_exit. */
struct obs_task {
	__u64 ts;
	__u64 args[6];
	__u64 how[3];      /* openat2: open_how flags, mode, resolve */
	__u64 root_dentry; /* the task's root at sys_enter (pointers, only compared) */
	__u64 root_mnt;
	__u64 base_dentry; /* where a relative path starts: the cwd or the dirfd's file */
	__u64 base_mnt;
	struct obs_ident root;
	struct obs_ident base;
	__u32 nr;
	__u32 pending;     /* sys_enter ran, sys_exit has not */
	__u32 flags;       /* OBS_F_* gathered at sys_enter */
	__u32 errors;      /* OBS_E_* gathered at sys_enter */
	__u32 path_len;
	__u8 base_kind;    /* OBS_START_CWD or OBS_START_DIRFD (NONE: no path syscall) */
	__u8 in_root;      /* openat2 RESOLVE_IN_ROOT: the dirfd is the root too */
	__u16 pad;
	char comm[16];
	char path[OBS_PATH_MAX];
};

/* Scratch is twice PATH_MAX so that a masked offset (< PATH_MAX) plus a
 * bounded length (< PATH_MAX) always stays inside it, which is what the
 * verifier needs to accept variable-offset copies. */
struct obs_scratch {
	char walk[2 * OBS_PATH_MAX];
	char rec[sizeof(struct obs_event) + 3 * OBS_PATH_MAX];
};

/* watched: thread groups observed (tgid -> 1); seeded by the loader, follows fork/exit. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, OBS_MAX_WATCHED);
	__type(key, __u32);
	__type(value, __u8);
} watched SEC(".maps");

/* tasks: each observed thread's call in progress, from sys_enter to sys_exit. */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct obs_task);
} tasks SEC(".maps");

/* events: one record per syscall for the loader's reader (size set by the loader). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 16 << 20);
	__type(value, struct obs_event); /* not used by the kernel: puts the layout in BTF for bpf2go */
} events SEC(".maps");

/* counters: per-CPU drops (ring buffer full, no task storage, watched set full). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct obs_counters);
} counters SEC(".maps");

/* scratch: per-CPU buffer where sys_exit builds a record. The syscall
 * tracepoints run BPF programs with preemption disabled (also since they
 * became faultable in 6.14), so one program owns it from start to end. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct obs_scratch);
} scratch SEC(".maps");

/* Bitmap of the syscall numbers (0..OBS_SYSCALL_NR-1) observed. Set by the loader. */
const volatile __u64 syscall_mask[OBS_SYSCALL_NR / 64] = {};
/* vigil's own tgid: never watched, whatever the maps say. */
const volatile __u32 self_tgid = 0;
/* Pending bytes past which a record wakes the reader (see submit). Set by
 * the loader from the ring buffer's size. */
const volatile __u64 wakeup_bytes = 256 << 10;

static __always_inline struct obs_counters *get_counters(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&counters, &zero);
}

static __always_inline bool observed(long nr)
{
	if (nr < 0 || nr >= OBS_SYSCALL_NR)
		return false;
	return syscall_mask[nr >> 6] & (1ULL << (nr & 63));
}

/* path_arg returns the register index of nr's path argument, or -1. */
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

/* has_dirfd reports whether nr's argument 0 is the dirfd of its path. */
static __always_inline bool has_dirfd(long nr)
{
	return nr == NR_openat || nr == NR_openat2 || nr == NR_execveat;
}

static __always_inline bool returns_fd(long nr)
{
	return nr == NR_open || nr == NR_creat || nr == NR_openat || nr == NR_openat2;
}

static __always_inline bool is_exec(long nr)
{
	return nr == NR_execve || nr == NR_execveat;
}

/* real_mount is container_of(v, struct mount, mnt) (fs/mount.h). */
static __always_inline struct mount *real_mount(struct vfsmount *v)
{
	return CAST(struct mount, (__u64)v - bpf_core_field_offset(struct mount, mnt));
}

static __always_inline __u64 mount_vfs(__u64 m)
{
	return m + bpf_core_field_offset(struct mount, mnt);
}

/* ident_of fills id with the identity of (dentry, mnt). */
static __always_inline void ident_of(struct obs_ident *id, struct dentry *d, struct vfsmount *mnt)
{
	struct inode *inode = d->d_inode;

	id->dev = inode->i_sb->s_dev;
	id->ino = inode->i_ino;
	id->mnt_id = real_mount(mnt)->mnt_id;
	id->pad = 0;
}

/* fd_file returns task's struct file for fd, or NULL. */
static __always_inline struct file *fd_file(struct task_struct *task, long fd)
{
	struct fdtable *fdt = task->files->fdt;
	struct file **fds;
	__u64 f = 0;

	if (!fdt || fd < 0)
		return NULL;
	if ((unsigned long)fd >= fdt->max_fds)
		return NULL;
	fds = fdt->fd;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return NULL;
	return CAST(struct file, f);
}

/*
 * capture_start records where t's path lookup starts: the root, and the
 * base a relative path starts from (the dirfd's file or the cwd). Both are
 * taken before the kernel's own lookup, so a descriptor number closed and
 * reused afterwards, or a later chdir, cannot change what they are.
 */
static __always_inline void capture_start(struct obs_task *t, struct task_struct *task, long nr)
{
	struct fs_struct *fs = task->fs;
	struct dentry *d;
	struct vfsmount *m;

	d = fs->root.dentry;
	m = fs->root.mnt;
	t->root_dentry = (__u64)d;
	t->root_mnt = (__u64)m;
	ident_of(&t->root, d, m);

	if (has_dirfd(nr) && (int)t->args[0] != OBS_AT_FDCWD) {
		struct file *f = fd_file(task, (int)t->args[0]);

		t->base_kind = OBS_START_DIRFD;
		if (!f) {
			/* EBADF for the kernel too, unless a sibling thread
			 * opens the number first: the lookup is unknowable. */
			t->errors |= OBS_E_START_UNREADABLE;
			t->base_dentry = t->base_mnt = 0;
			__builtin_memset(&t->base, 0, sizeof(t->base));
			return;
		}
		d = f->f_path.dentry;
		m = f->f_path.mnt;
	} else {
		t->base_kind = OBS_START_CWD;
		d = fs->pwd.dentry;
		m = fs->pwd.mnt;
	}
	t->base_dentry = (__u64)d;
	t->base_mnt = (__u64)m;
	ident_of(&t->base, d, m);
	if (t->in_root) {
		/* RESOLVE_IN_ROOT: the dirfd is the lookup's root as well. */
		t->root_dentry = t->base_dentry;
		t->root_mnt = t->base_mnt;
		t->root = t->base;
	}
}

/* read_path copies the NUL-terminated string at ptr into t->path. */
static __always_inline bool read_path(struct obs_task *t, __u64 ptr)
{
	long n = bpf_probe_read_user_str(t->path, OBS_PATH_MAX, (const void *)ptr);

	if (n <= 0) {
		t->path_len = 0;
		return false;
	}
	t->path_len = n - 1;
	t->flags |= OBS_F_HAS_PATH;
	/* The kernel refuses a path without a NUL in its first PATH_MAX bytes
	 * (ENAMETOOLONG); the read stopped there too. */
	if (n == OBS_PATH_MAX)
		t->flags |= OBS_F_PATH_TRUNC;
	return true;
}

struct walk_ctx {
	__u64 dentry; /* struct dentry * */
	__u64 mnt;    /* struct mount * */
	__u64 root_dentry;
	__u64 root_mnt;  /* struct vfsmount * */
	__u64 start_dentry;
	__u64 start_mnt; /* struct vfsmount * */
	__u32 pos;       /* the path built so far is walk[pos, PATH_MAX) */
	__u32 depth;     /* components prepended */
	__u32 start_pos; /* found: pos when the walk met the start object */
	__u8 found;
	__u8 done;       /* reached the root, the namespace's root or a disconnected tree's */
	__u8 trunc;      /* gave up: too deep, too long, or a name out of range */
	__u8 fault;
};

static __always_inline struct obs_scratch *get_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scratch, &zero);
}

/*
 * walk_step is one step of prepend_path() (fs/d_path.c): note the start
 * object when passing it; stop at the root; at the root of a mount climb to
 * its mountpoint in the parent mount; otherwise prepend "/name" and go to
 * d_parent.
 */
static long walk_step(__u32 i, void *data)
{
	struct walk_ctx *w = data;
	struct obs_scratch *s = get_scratch();
	struct dentry *dentry = CAST(struct dentry, w->dentry);
	struct mount *mnt = CAST(struct mount, w->mnt);
	__u64 vfsmnt = mount_vfs(w->mnt);
	struct dentry *parent;
	struct mount *up;
	__u32 len;

	if (!s) {
		w->fault = 1;
		return 1;
	}
	if (!w->found && w->dentry == w->start_dentry && vfsmnt == w->start_mnt) {
		w->found = 1;
		w->start_pos = w->pos;
	}
	if (w->dentry == w->root_dentry && vfsmnt == w->root_mnt) {
		w->done = 1;
		return 1;
	}
	if (w->dentry == (__u64)mnt->mnt.mnt_root) {
		up = mnt->mnt_parent;
		if (!up || up == mnt) {
			w->done = 1;
			return 1;
		}
		w->dentry = (__u64)mnt->mnt_mountpoint;
		w->mnt = (__u64)up;
		return 0;
	}
	parent = dentry->d_parent;
	if (!parent || (__u64)parent == w->dentry) {
		w->done = 1;
		return 1;
	}
	if (w->depth >= OBS_KPATH_DEPTH) {
		w->trunc = 1;
		return 1;
	}
	len = dentry->d_name.len;
	/* Keep pos >= 1: kpath_len stays below PATH_MAX. */
	if (len > OBS_NAME_MAX || len + 2 > w->pos) {
		w->trunc = 1;
		return 1;
	}
	w->pos -= len;
	if (bpf_probe_read_kernel(&s->walk[w->pos & (OBS_PATH_MAX - 1)], len & OBS_NAME_MAX, dentry->d_name.name)) {
		w->fault = 1;
		return 1;
	}
	w->pos--;
	s->walk[w->pos & (OBS_PATH_MAX - 1)] = '/';
	w->depth++;
	w->dentry = (__u64)parent;
	return 0;
}

/*
 * obs_walk runs the walk. A global function, so the verifier checks it once
 * instead of once per call site: two walks inlined into sys_exit's many
 * paths exceed its budget.
 */
__noinline int obs_walk(struct walk_ctx *wp)
{
	struct obs_scratch *s = get_scratch();
	struct walk_ctx w;

	if (!wp || !s)
		return 0;
	/* bpf_loop wants its context on this function's stack. */
	w = *wp;
	bpf_loop(OBS_KPATH_STEPS, walk_step, &w, 0);
	if (!w.fault) {
		if (!w.done)
			w.trunc = 1;
		if (w.pos == OBS_PATH_MAX) {
			w.pos--;
			s->walk[w.pos & (OBS_PATH_MAX - 1)] = '/';
		}
	}
	*wp = w;
	return 0;
}

/*
 * walk_kpath builds the kernel's path of (dentry, mnt) from t's root into
 * s->walk[w->pos, PATH_MAX); the start object is (start_dentry, start_mnt).
 */
static __always_inline void walk_kpath(struct walk_ctx *w, struct obs_task *t, struct dentry *dentry,
				       struct vfsmount *mnt, __u64 start_dentry, __u64 start_mnt)
{
	w->dentry = (__u64)dentry;
	w->mnt = (__u64)mnt - bpf_core_field_offset(struct mount, mnt);
	w->root_dentry = t->root_dentry;
	w->root_mnt = t->root_mnt;
	w->start_dentry = start_dentry;
	w->start_mnt = start_mnt;
	w->pos = OBS_PATH_MAX;
	w->depth = 0;
	w->start_pos = 0;
	w->found = w->done = w->trunc = w->fault = 0;
	obs_walk(w);
}

/* The socket at a connect's fd, as sys_exit finds it. */
static __always_inline void fill_peer(struct obs_event *e, struct task_struct *task, long fd,
				      struct dentry **ud, struct vfsmount **um)
{
	struct file *f = fd_file(task, fd);
	struct socket *sock;
	struct sock *sk;
	__u16 family;

	if (!f)
		return;
	if ((BPF_CORE_READ(f, f_inode, i_mode) & OBS_S_IFMT) != OBS_S_IFSOCK)
		return;
	sock = (struct socket *)BPF_CORE_READ(f, private_data);
	if (!sock || BPF_CORE_READ(sock, file) != f)
		return;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	e->peer_family = family;
	e->flags |= OBS_F_HAS_PEER;
	if (family == OBS_AF_INET) {
		__u32 a = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		e->peer_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
		__builtin_memcpy(e->peer, &a, 4);
	} else if (family == OBS_AF_INET6) {
		e->peer_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
		bpf_core_read(e->peer, sizeof(e->peer), &sk->__sk_common.skc_v6_daddr);
	} else if (family == OBS_AF_UNIX) {
		struct unix_sock *peer = (struct unix_sock *)BPF_CORE_READ((struct unix_sock *)sk, peer);

		if (peer) {
			*ud = BPF_CORE_READ(peer, path.dentry);
			*um = BPF_CORE_READ(peer, path.mnt);
		}
	}
}

/*
 * submit copies the record built in s->rec to the ring buffer. When the
 * reader keeps up, waking it for every record (irq_work, then a cross-CPU
 * wake of its epoll) costs more than producing the record: records are
 * committed without a wake-up until wakeup_bytes are pending, and the
 * loader's reader polls for the tail. A drop is counted, never silent.
 */
static __always_inline void submit(struct obs_scratch *s, __u32 size)
{
	__u64 flags = BPF_RB_FORCE_WAKEUP;
	struct obs_counters *c;

	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) < wakeup_bytes)
		flags = BPF_RB_NO_WAKEUP;
	if (size > sizeof(s->rec))
		return;
	if (bpf_ringbuf_output(&events, s->rec, size, flags) == 0)
		return;
	c = get_counters();
	if (c)
		__sync_fetch_and_add(&c->lost, 1);
}

/*
 * emit turns t (and, with has_ret, the return value ret) into one record.
 *
 *   header from t: times, ids, args, comm, open_how, start identities
 *   path unreadable at sys_enter: read it again now (the kernel's own copy
 *       faulted the page in), marked PATH_AT_EXIT
 *   object: open family, ret >= 0: fd table[ret]
 *           execve/execveat, ret 0: current->mm->exe_file
 *           connect: the socket's peer (AF_UNIX: the peer's socket file)
 *   kpath: walk from the object to t's root, noting the start object
 *           (absolute path: the root; relative: the dirfd's file or cwd)
 *   spath: a relative lookup whose walk never met its start: walk from the
 *           start too
 *   ring buffer: header + path + kpath + spath, exactly sized
 */
static __always_inline void emit(struct obs_task *t, struct task_struct *task, __u64 pid_tgid, bool has_ret,
				 long ret, __u32 errors)
{
	struct obs_scratch *s = get_scratch();
	struct obs_event *e;
	struct dentry *d = NULL;
	struct vfsmount *m = NULL;
	struct file *f = NULL;
	__u64 start_dentry = 0, start_mnt = 0;
	__u32 plen, klen = 0, slen = 0;
	struct walk_ctx w = {};
	long nr = t->nr;

	if (!s)
		return;
	e = (struct obs_event *)s->rec;
	e->ts_enter = t->ts;
	e->ts_exit = 0;
	e->ret = 0;
	for (int i = 0; i < 6; i++)
		e->args[i] = t->args[i];
	e->dev = 0;
	e->ino = 0;
	e->how_flags = t->how[0];
	e->how_mode = t->how[1];
	e->how_resolve = t->how[2];
	__builtin_memset(&e->start, 0, sizeof(e->start));
	__builtin_memset(&e->root, 0, sizeof(e->root));
	e->tgid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->nr = nr;
	e->flags = t->flags;
	e->errors = t->errors | errors;
	e->mnt_id = 0;
	e->mode = 0;
	e->fs_magic = 0;
	e->kpath_len = 0;
	e->start_off = 0;
	e->start_kind = OBS_START_NONE;
	e->pad = 0;
	e->peer_family = 0;
	e->peer_port = 0;
	e->spath_len = 0;
	e->pad2 = 0;
	__builtin_memset(e->peer, 0, sizeof(e->peer));
	__builtin_memcpy(e->comm, t->comm, sizeof(e->comm));

	if (has_ret) {
		e->flags |= OBS_F_HAS_RET;
		e->ts_exit = bpf_ktime_get_ns();
		e->ret = ret;
		if ((e->errors & OBS_E_PATH_UNREADABLE) && path_arg(nr) >= 0 &&
		    read_path(t, t->args[path_arg(nr) & 7])) {
			e->errors &= ~OBS_E_PATH_UNREADABLE;
			e->flags |= t->flags | OBS_F_PATH_AT_EXIT;
		}
		if (returns_fd(nr) && ret >= 0) {
			f = fd_file(task, ret);
			if (!f)
				e->errors |= OBS_E_OBJECT_UNREADABLE;
		} else if (is_exec(nr) && ret == 0) {
			f = task->mm->exe_file;
			if (!f)
				e->errors |= OBS_E_OBJECT_UNREADABLE;
		} else if (nr == NR_connect && (ret == 0 || ret == -OBS_EINPROGRESS)) {
			fill_peer(e, task, (int)t->args[0], &d, &m);
		}
	}

	if (e->flags & OBS_F_HAS_PATH) {
		e->start = t->base;
		e->root = t->root;
		if (t->in_root) {
			e->start_kind = OBS_START_DIRFD;
			start_dentry = t->base_dentry;
			start_mnt = t->base_mnt;
		} else if (t->path_len > 0 && t->path[0] == '/') {
			e->start_kind = OBS_START_ROOT;
			e->start = t->root;
			start_dentry = t->root_dentry;
			start_mnt = t->root_mnt;
		} else {
			e->start_kind = t->base_kind;
			start_dentry = t->base_dentry;
			start_mnt = t->base_mnt;
		}
	}

	if (f) {
		struct inode *inode = f->f_inode;

		d = f->f_path.dentry;
		m = f->f_path.mnt;
		e->flags |= OBS_F_HAS_OBJECT;
		e->dev = inode->i_sb->s_dev;
		e->ino = inode->i_ino;
		e->mode = inode->i_mode;
		e->fs_magic = inode->i_sb->s_magic;
		e->mnt_id = real_mount(m)->mnt_id;
	} else if (d && m) {
		/* An AF_UNIX peer bound to a socket file. */
		struct inode *inode = BPF_CORE_READ(d, d_inode);

		e->flags |= OBS_F_HAS_OBJECT;
		e->dev = BPF_CORE_READ(inode, i_sb, s_dev);
		e->ino = BPF_CORE_READ(inode, i_ino);
		e->mode = BPF_CORE_READ(inode, i_mode);
		e->fs_magic = BPF_CORE_READ(inode, i_sb, s_magic);
		e->mnt_id = BPF_CORE_READ(real_mount(m), mnt_id);
		start_dentry = start_mnt = 0;
	}
	plen = t->path_len & (OBS_PATH_MAX - 1);
	e->path_len = plen;
	if (plen)
		bpf_probe_read_kernel(&s->rec[OBS_HDR], plen, t->path);
	if (!d || !m) {
		submit(s, OBS_HDR + plen);
		return;
	}
	walk_kpath(&w, t, d, m, start_dentry, start_mnt);
	if (w.fault) {
		e->errors |= OBS_E_KPATH_UNREADABLE;
		submit(s, OBS_HDR + plen);
		return;
	}
	klen = (OBS_PATH_MAX - w.pos) & (OBS_PATH_MAX - 1);
	e->kpath_len = klen;
	if (w.trunc)
		e->flags |= OBS_F_KPATH_TRUNC;
	if (w.found && start_dentry) {
		e->flags |= OBS_F_START_FOUND;
		e->start_off = w.start_pos - w.pos;
	}
	if (klen)
		bpf_probe_read_kernel(&s->rec[OBS_HDR + plen], klen, &s->walk[w.pos & (OBS_PATH_MAX - 1)]);
	/* A symlink or ".." led out of a relative lookup's start: record the
	 * start's own path (a second walk, only in this case). */
	if (start_dentry && e->start_kind != OBS_START_ROOT && !(e->flags & OBS_F_START_FOUND)) {
		walk_kpath(&w, t, (struct dentry *)start_dentry, (struct vfsmount *)start_mnt, 0, 0);
		slen = (OBS_PATH_MAX - w.pos) & (OBS_PATH_MAX - 1);
		if (!w.fault && !w.trunc && slen) {
			bpf_probe_read_kernel(&s->rec[OBS_HDR + plen + klen], slen, &s->walk[w.pos & (OBS_PATH_MAX - 1)]);
			e->spath_len = slen;
			e->flags |= OBS_F_START_PATH;
		} else {
			slen = 0;
		}
	}
	submit(s, OBS_HDR + plen + klen + slen);
}

/*
 * sys_enter
 *
 *   if nr not in syscall_mask: return
 *   t = task storage; none: if tgid is vigil or not watched return, else
 *       create it (no memory: count no_storage, return)
 *   if t has a call pending: its sys_exit never came, emit it (EXIT_MISSED)
 *   t = now, nr, args, comm
 *   exit/exit_group: emit now (NO_RETURN), nothing pending
 *   path syscalls: copy the path (unreadable: retried at sys_exit);
 *       openat2: copy struct open_how; capture the root and the base
 *   connect: copy the sockaddr (at most OBS_SOCKADDR_MAX bytes)
 *   t->pending = 1
 */
SEC("tp_btf/sys_enter")
int BPF_PROG(obs_sys_enter, struct pt_regs *regs, long id)
{
	__u64 pid_tgid;
	__u32 tgid;
	struct task_struct *task;
	struct obs_task *t;
	int idx;

	if (!observed(id))
		return 0;
	pid_tgid = bpf_get_current_pid_tgid();
	task = bpf_get_current_task_btf();
	/* Only watched threads get storage: a thread that has it skips the
	 * watched-set lookup. */
	t = bpf_task_storage_get(&tasks, task, 0, 0);
	if (!t) {
		tgid = pid_tgid >> 32;
		if (tgid == self_tgid || !bpf_map_lookup_elem(&watched, &tgid))
			return 0;
		t = bpf_task_storage_get(&tasks, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
		if (!t) {
			struct obs_counters *c = get_counters();

			if (c)
				__sync_fetch_and_add(&c->no_storage, 1);
			return 0;
		}
	}
	if (t->pending) {
		t->pending = 0;
		emit(t, task, pid_tgid, false, 0, OBS_E_EXIT_MISSED);
	}
	t->ts = bpf_ktime_get_ns();
	t->nr = id;
	t->flags = 0;
	t->errors = 0;
	t->path_len = 0;
	t->base_kind = OBS_START_NONE;
	t->in_root = 0;
	t->how[0] = t->how[1] = t->how[2] = 0;
	t->args[0] = regs->di;
	t->args[1] = regs->si;
	t->args[2] = regs->dx;
	t->args[3] = regs->r10;
	t->args[4] = regs->r8;
	t->args[5] = regs->r9;
	bpf_get_current_comm(t->comm, sizeof(t->comm));

	if (id == NR_exit || id == NR_exit_group) {
		t->flags |= OBS_F_NO_RETURN;
		emit(t, task, pid_tgid, false, 0, 0);
		return 0;
	}
	idx = path_arg(id);
	if (idx >= 0) {
		if (!read_path(t, t->args[idx & 7]))
			t->errors |= OBS_E_PATH_UNREADABLE;
		if (id == NR_openat2) {
			/* struct open_how: flags, mode, resolve (24 bytes, the
			 * first version; larger sizes only add fields). */
			if (t->args[3] < 24 || bpf_probe_read_user(t->how, sizeof(t->how), (const void *)t->args[2])) {
				t->errors |= OBS_E_HOW_UNREADABLE;
				t->how[0] = t->how[1] = t->how[2] = 0;
			} else {
				t->flags |= OBS_F_HAS_HOW;
				t->in_root = (t->how[2] & OBS_RESOLVE_IN_ROOT) != 0;
			}
		}
		capture_start(t, task, id);
	} else if (id == NR_connect) {
		__u32 len = t->args[2];

		if (len > OBS_SOCKADDR_MAX)
			len = OBS_SOCKADDR_MAX;
		if (len && bpf_probe_read_user(t->path, len & (OBS_SOCKADDR_MAX * 2 - 1), (const void *)t->args[1])) {
			t->errors |= OBS_E_SOCKADDR_UNREADABLE;
		} else {
			t->path_len = len;
			t->flags |= OBS_F_SOCKADDR;
		}
	}
	t->pending = 1;
	return 0;
}

/*
 * sys_exit: the pending call of this thread, if any, becomes a record. A
 * successful execveat returns with orig_ax reading __NR_execve (seen on
 * 6.18): the exec pair counts as one.
 */
SEC("tp_btf/sys_exit")
int BPF_PROG(obs_sys_exit, struct pt_regs *regs, long ret)
{
	long nr = regs->orig_ax;
	struct task_struct *task;
	struct obs_task *t;

	/* Every syscall of every task passes here: rule out the unobserved
	 * ones before looking for per-task state. */
	if (!observed(nr) && !is_exec(nr))
		return 0;
	task = bpf_get_current_task_btf();
	t = bpf_task_storage_get(&tasks, task, 0, 0);
	if (!t || !t->pending)
		return 0;
	if (nr != t->nr && !(is_exec(nr) && is_exec(t->nr)))
		return 0;
	t->pending = 0;
	emit(t, task, bpf_get_current_pid_tgid(), true, ret, 0);
	return 0;
}

struct cmp_ctx {
	__u64 a; /* char * into scratch */
	__u64 b; /* char * into task storage */
	__u32 len;
	__u32 differs;
};

/* cmp_step compares bytes [8i, 8i+8) below len of two kernel buffers. */
static long cmp_step(__u32 i, void *data)
{
	struct cmp_ctx *c = data;
	__u64 x = 0, y = 0;
	__u32 off = i * 8, n;

	if (off >= c->len)
		return 1;
	n = c->len - off;
	if (n > 8)
		n = 8;
	if (bpf_probe_read_kernel(&x, n & 15, (void *)(c->a + off)) ||
	    bpf_probe_read_kernel(&y, n & 15, (void *)(c->b + off))) {
		c->differs = 1;
		return 1;
	}
	if (x != y) {
		c->differs = 1;
		return 1;
	}
	return 0;
}

/*
 * sched_process_exec fires after the binary handler loaded the new image,
 * in the exec'ing task. bprm->filename is the kernel's own copy of the
 * filename argument (for execveat with a dirfd and a relative path it is
 * "/dev/fd/N/path" instead, which is not compared): when it differs from
 * the sys_enter copy, user memory was rewritten in between.
 */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(obs_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct obs_task *t = bpf_task_storage_get(&tasks, task, 0, 0);
	struct obs_scratch *s;
	struct cmp_ctx c = {};
	long n;

	if (!t || !t->pending || !is_exec(t->nr) || !(t->flags & OBS_F_HAS_PATH) || (t->flags & OBS_F_PATH_TRUNC))
		return 0;
	if (t->base_kind == OBS_START_DIRFD && !(t->path_len > 0 && t->path[0] == '/'))
		return 0;
	s = get_scratch();
	if (!s)
		return 0;
	n = bpf_probe_read_kernel_str(s->walk, OBS_PATH_MAX, BPF_CORE_READ(bprm, filename));
	if (n <= 0)
		return 0;
	t->flags |= OBS_F_KNAME_CHECKED;
	if ((__u32)(n - 1) != t->path_len) {
		t->flags |= OBS_F_KNAME_DIFFERS;
		return 0;
	}
	c.a = (__u64)s->walk;
	c.b = (__u64)t->path;
	c.len = t->path_len;
	bpf_loop(OBS_PATH_MAX / 8, cmp_step, &c, 0);
	if (c.differs)
		t->flags |= OBS_F_KNAME_DIFFERS;
	return 0;
}

/* sched_process_fork fires in the parent after copy_process() built the
 * child and before it first runs: a watched parent's new thread group is
 * watched before its first syscall. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(obs_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 ptgid = parent->tgid;
	__u32 ctgid = child->tgid;
	__u8 one = 1;

	if (ctgid == ptgid || !bpf_map_lookup_elem(&watched, &ptgid))
		return 0;
	if (bpf_map_update_elem(&watched, &ctgid, &one, BPF_ANY)) {
		struct obs_counters *c = get_counters();

		if (c)
			__sync_fetch_and_add(&c->untracked, 1);
	}
	return 0;
}

/*
 * sched_process_exit: a call still pending never returns (the thread is
 * gone): report it. When the thread group is gone, drop it from the watched
 * set so a recycled pid is not watched. do_exit() decrements signal->live
 * before this tracepoint, so the last thread reads 0.
 */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(obs_exit, struct task_struct *p)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct obs_task *t = bpf_task_storage_get(&tasks, task, 0, 0);
	__u32 tgid = p->tgid;

	if (t && t->pending) {
		t->pending = 0;
		emit(t, task, bpf_get_current_pid_tgid(), false, 0, OBS_E_EXIT_MISSED);
	}
	if (BPF_CORE_READ(p, signal, live.counter) == 0)
		bpf_map_delete_elem(&watched, &tgid);
	return 0;
}
