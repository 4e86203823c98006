/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * observe.h — the contract between observe.bpf.c (`vigil observe`) and the
 * Go loader (loader/observe.go). Every constant and layout here is mirrored
 * in Go; change both sides together. loader/observe_contract_test.go parses
 * this file and fails when the Go side disagrees.
 *
 * Separate from vigil.h on purpose: observe decides nothing, so its programs
 * and their record format evolve without touching the binding programs.
 *
 * Types come from vmlinux.h (the BPF side); this header defines no kernel
 * types of its own so that it can be included after vmlinux.h.
 */
#ifndef OBSERVE_H
#define OBSERVE_H

/* Longest path the kernel accepts, NUL included (PATH_MAX); also the most
 * bytes of a path argument or a kernel path one record carries.
 * keep in sync with loader/observe_contract.go ObsPathMax */
#define OBS_PATH_MAX 4096
/* Syscall numbers 0..OBS_SYSCALL_NR-1 can be observed (syscall_mask bits).
 * keep in sync with loader/observe_contract.go ObsSyscallNr */
#define OBS_SYSCALL_NR 1024
/* Capacity of the watched set (thread groups).
 * keep in sync with loader/observe_contract.go ObsMaxWatched */
#define OBS_MAX_WATCHED 65536
/* Most bytes of a connect sockaddr a record carries (sockaddr_storage).
 * keep in sync with loader/observe_contract.go ObsSockaddrMax */
#define OBS_SOCKADDR_MAX 128
/* Components of a kernel path walked at most (a path of OBS_PATH_MAX bytes
 * has fewer); deeper or longer objects get a kpath without its leading
 * components (OBS_F_KPATH_TRUNC).
 * keep in sync with loader/observe_contract.go ObsKPathDepth */
#define OBS_KPATH_DEPTH 2048

/* What the start of a path lookup was (obs_event.start_kind).
 * keep in sync with loader/observe_contract.go StartKind */
enum obs_start {
	OBS_START_NONE = 0,  /* the syscall has no path, or it was never read */
	OBS_START_ROOT = 1,  /* an absolute path: the task's root */
	OBS_START_CWD = 2,   /* a relative path from AT_FDCWD (or open/creat/execve) */
	OBS_START_DIRFD = 3, /* a relative path from the dirfd argument's file
	                      * (also openat2 RESOLVE_IN_ROOT, where the dirfd is the root too) */
};

/* Record flags (obs_event.flags). keep in sync with loader/observe_contract.go ObsFlags */
#define OBS_F_HAS_RET 1         /* emitted at sys_exit: ret and ts_exit are valid */
#define OBS_F_HAS_PATH 2        /* the first path_len data bytes are the path argument */
#define OBS_F_PATH_TRUNC 4      /* the path argument was longer than OBS_PATH_MAX - 1 bytes */
#define OBS_F_PATH_AT_EXIT 8    /* the path was unreadable at sys_enter and was read at sys_exit */
#define OBS_F_HAS_OBJECT 16     /* dev, ino, mnt_id, mode, fs_magic and kpath describe the kernel's object */
#define OBS_F_KPATH_TRUNC 32    /* kpath lacks its leading components (deeper or longer than the walk) */
#define OBS_F_START_FOUND 64    /* the kpath walk met the lookup's start object: start_off is valid */
#define OBS_F_SOCKADDR 128      /* the first path_len data bytes are connect's sockaddr */
#define OBS_F_HAS_PEER 256      /* peer_family, peer_port and peer describe the socket's peer */
#define OBS_F_HAS_HOW 512       /* how_flags, how_mode, how_resolve are openat2's struct open_how */
#define OBS_F_KNAME_CHECKED 1024 /* exec: sched_process_exec compared the kernel's copy of the
                                  * filename with the sys_enter copy */
#define OBS_F_KNAME_DIFFERS 2048 /* ... and they differed: the kernel ran another name */
#define OBS_F_NO_RETURN 4096    /* exit/exit_group: emitted at sys_enter, the call never returns */
#define OBS_F_START_PATH 8192   /* HAS_OBJECT without START_FOUND: spath is the kernel's path of the
                                 * start object (relative lookups only; an absolute one starts at the root) */

/* Why part of a record is missing (obs_event.errors). keep in sync with
 * loader/observe_contract.go ObsErrors */
#define OBS_E_PATH_UNREADABLE 1     /* the path argument could not be read (sys_enter nor sys_exit) */
#define OBS_E_OBJECT_UNREADABLE 2   /* the call returned an fd, or an exec succeeded, but no file was found */
#define OBS_E_START_UNREADABLE 4    /* the dirfd (or cwd, root) the lookup starts from could not be read */
#define OBS_E_HOW_UNREADABLE 8      /* openat2's struct open_how could not be read */
#define OBS_E_SOCKADDR_UNREADABLE 16 /* connect's sockaddr could not be read */
#define OBS_E_EXIT_MISSED 32        /* sys_exit never came: the thread exited, or its next
                                     * syscall started first; ret is unknown */
#define OBS_E_KPATH_UNREADABLE 64   /* the kernel path walk failed */

/* Identity of a directory or file: what stat(2) and statx STATX_MNT_ID say. */
struct obs_ident {
	__u64 dev;    /* kernel encoding of s_dev: MAJOR<<20 | MINOR */
	__u64 ino;
	__u32 mnt_id; /* struct mount's mnt_id, as in /proc/self/mountinfo */
	__u32 pad;
};

/*
 * Counters the programs keep per CPU (the counters map, one element).
 * keep in sync with loader/observe_contract.go obsCounters.
 */
struct obs_counters {
	__u64 lost;       /* records dropped because the ring buffer was full */
	__u64 no_storage; /* syscalls not observed: no per-task storage (out of memory) */
	__u64 untracked;  /* children of watched processes the watched set had no room for */
	__u64 pad;
};

/*
 * One ring-buffer record: this header, then path_len bytes of the path
 * argument (or sockaddr), then kpath_len bytes of the kernel's path of the
 * object, then spath_len bytes of the kernel's path of the start object. None
 * is NUL-terminated. The record is exactly
 * sizeof(struct obs_event) + path_len + kpath_len + spath_len bytes (the ring
 * buffer pads it to 8).
 *
 * kpath is the path of the object from the task's root at sys_enter, crossing
 * mounts, as the kernel's d_path would print it. With OBS_F_START_FOUND,
 * kpath[start_off:] is the part below the object the lookup started from
 * (empty when the object is that start, else beginning with '/'): a path
 * argument that spells exactly that, component by component, named this
 * object when the kernel looked it up. Otherwise (a symlink or ".." led out of
 * the start's subtree) OBS_F_START_PATH gives the start's own path, so that
 * userspace can repeat the lookup from it after its descriptor is gone.
 */
struct obs_event {
	__u64 ts_enter; /* bpf_ktime_get_ns() at sys_enter (CLOCK_MONOTONIC) */
	__u64 ts_exit;  /* at sys_exit (OBS_F_HAS_RET) */
	__s64 ret;      /* return value (OBS_F_HAS_RET) */
	__u64 args[6];  /* the argument registers at sys_enter */
	__u64 dev;      /* HAS_OBJECT: the object's s_dev (kernel encoding) */
	__u64 ino;      /* HAS_OBJECT */
	__u64 how_flags;   /* HAS_HOW: open_how.flags */
	__u64 how_mode;    /* HAS_HOW: open_how.mode */
	__u64 how_resolve; /* HAS_HOW: open_how.resolve */
	struct obs_ident start; /* start_kind != NONE: the object the lookup started from */
	struct obs_ident root;  /* start_kind != NONE: the task's root at sys_enter */
	__u32 tgid;
	__u32 tid;
	__u32 nr;          /* syscall number */
	__u32 flags;       /* OBS_F_* */
	__u32 errors;      /* OBS_E_* */
	__u32 mnt_id;      /* HAS_OBJECT: the object's mount id */
	__u32 mode;        /* HAS_OBJECT: i_mode */
	__u32 fs_magic;    /* HAS_OBJECT: the object's superblock s_magic */
	__u16 path_len;
	__u16 kpath_len;
	__u16 start_off;   /* START_FOUND: see above */
	__u8 start_kind;   /* enum obs_start */
	__u8 pad;
	__u16 peer_family; /* HAS_PEER: the socket's family */
	__u16 peer_port;   /* HAS_PEER, AF_INET/AF_INET6: host order */
	__u16 spath_len;   /* START_PATH */
	__u16 pad2;
	__u8 peer[16];     /* HAS_PEER: AF_INET: 4 bytes; AF_INET6: 16 bytes; network order */
	char comm[16];     /* the thread's comm at sys_enter, NUL-padded */
};

#endif /* OBSERVE_H */
