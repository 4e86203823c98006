/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * vigil.h — the contract between the eBPF programs (vigil.bpf.c) and the Go
 * loader (loader/). Every constant and layout here is mirrored in Go; change
 * both sides together. loader/contract_test.go parses this file and fails
 * when the Go side disagrees.
 *
 * Types come from vmlinux.h (the BPF side); this header defines no kernel
 * types of its own so that it can be included after vmlinux.h.
 */
#ifndef VIGIL_H
#define VIGIL_H

/* Longest path the kernel accepts, NUL included (PATH_MAX). keep in sync with loader/contract.go PathMax */
#define VIGIL_PATH_MAX 4096
/* Bytes of a path (user spelling or kernel path) carried in one event. keep in sync with loader/contract.go EventPath */
#define VIGIL_EVENT_PATH 256
/* Capacity of the watched set (thread groups). keep in sync with loader/contract.go MaxWatched */
#define VIGIL_MAX_WATCHED 65536
/* Capacity of the binding map (threads with a pending grant). keep in sync with loader/contract.go MaxBindings */
#define VIGIL_MAX_BINDINGS 65536
/* Slots of the binding array (a power of two): thread tid binds in slot
 * tid & (VIGIL_BIND_SLOTS-1); another thread's pending binding there sends
 * tid's to the bindings hash. keep in sync with loader/contract.go BindSlots */
#define VIGIL_BIND_SLOTS 16384
/* Syscall numbers 0..VIGIL_CAPTURE_NR-1 can be captured (capture_mask bits). keep in sync with loader/contract.go CaptureNr */
#define VIGIL_CAPTURE_NR 1024

/*
 * What the kernel's object must be for a bound grant to stand.
 * keep in sync with loader/contract.go BindKind.
 */
enum vigil_bind_kind {
	/* open family: the returned fd's inode must be (dev, ino) */
	VIGIL_BIND_FILE = 1,
	/* O_CREAT of a missing name: the open must have created the returned
	 * file (FMODE_CREATED), its parent directory must be (dev, ino) and its
	 * final name must hash to name_hash */
	VIGIL_BIND_CREATE = 2,
	/* execve/execveat: at sched_process_exec, bprm->file's inode must be
	 * (dev, ino). For a #! script bprm->file is the final interpreter by
	 * then, so that is what userspace binds (see loader.BindExec). */
	VIGIL_BIND_EXEC = 3,
	/* connect: at sys_exit, the socket at the fd argument must be connected
	 * to what family/addr/port (or, for AF_UNIX, addr[0]'s VIGIL_UNIX_*
	 * form) say */
	VIGIL_BIND_CONNECT = 4,
	/* clone/clone3: at sched_process_fork, the child must have a namespace
	 * of its own exactly for the CLONE_NEW* bits of clone_flags, and share
	 * its parent's for every other one */
	VIGIL_BIND_CLONE = 5,
	/* The programs kill on any kind they do not know, or that does not fit
	 * the bound syscall, so a newer loader cannot silently go unchecked. */
};

/*
 * Life of a binding. Userspace writes it armed; sys_enter moves it on;
 * sched_process_exec (EXEC) and sched_process_fork (CLONE) check the object
 * in the middle of the call; sys_exit deletes it. keep in sync with
 * loader/contract.go (bindArmed…).
 */
enum vigil_bind_state {
	VIGIL_STATE_ARMED = 0,   /* written by userspace, not seen by the kernel yet */
	VIGIL_STATE_ENTERED = 1, /* sys_enter re-read the argument and it matched */
	VIGIL_STATE_KILLED = 2,  /* a check killed the caller; sys_exit only reports */
	VIGIL_STATE_CHECKED = 3, /* EXEC/CLONE: the mid-call object check ran and held */
	VIGIL_STATE_REPLACED = 4, /* EXEC: it held by the vetted path, another file (VIGIL_F_REPLACED) */
};

/* Binding flags (struct vigil_binding.flags). keep in sync with loader/contract.go bindQuiet */
#define VIGIL_BIND_QUIET 1 /* nothing waits for the call's record: no EXIT event when the grant holds */

/* CONNECT with family AF_UNIX: what addr[0] says the binding pins.
 * keep in sync with loader/contract.go unixPath, unixAbstract. */
#define VIGIL_UNIX_PATH 1     /* a pathname socket: the peer is bound to the socket file (dev, ino) */
#define VIGIL_UNIX_ABSTRACT 2 /* an abstract name: FNV-1a 64 of the name bytes after the leading NUL is name_hash */

/*
 * A grant the supervisor is about to CONTINUE: in the thread's slot of the
 * slots array, or keyed by its id in the bindings hash when another thread's
 * pending binding holds that slot. 120 bytes, no implicit padding. Fields a kind does not use
 * are zero.
 *
 * FILE and EXEC may also name the vetted object by its path (path_hash):
 * another object the kernel found under that very path, on the same mount
 * (mnt_id) and seen from the same root (root_*), replaced the vetted one
 * under the same name in the same view (a rename over it: editors, package
 * upgrades, logrotate). A path rule's verdict cannot differ for it, so it
 * stands, and the event says so (VIGIL_F_REPLACED).
 */
struct vigil_binding {
	__u64 dev;         /* kernel encoding of the superblock's s_dev: MAJOR<<20 | MINOR */
	__u64 ino;         /* inode number (FILE, EXEC: the file; CREATE: the parent
	                    * directory; CONNECT AF_UNIX path: the socket file) */
	__u64 arg_hash;    /* FNV-1a 64 over the vetted argument bytes (a path without
	                    * its NUL; CONNECT: the sockaddr; CLONE: clone3's clone_args) */
	__u64 name_hash;   /* CREATE: FNV-1a 64 over the final path component;
	                    * CONNECT VIGIL_UNIX_ABSTRACT: over the abstract name */
	__u64 clone_flags; /* CLONE: the vetted flags (clone: the flags register,
	                    * exit signal included; clone3: clone_args.flags) */
	__u32 arg_len;     /* length of the vetted argument bytes */
	__u32 nr;          /* syscall number the grant is for */
	__u32 kind;        /* enum vigil_bind_kind */
	__u32 arg_index;   /* register index (0..5) holding the argument pointer */
	__u32 state;       /* enum vigil_bind_state */
	__u16 family;      /* CONNECT: AF_INET, AF_INET6, AF_UNIX, or AF_UNSPEC (a disconnect) */
	__u16 port;        /* CONNECT AF_INET/AF_INET6: the peer's port, host order */
	__u8 addr[16];     /* CONNECT AF_INET: the address in its first 4 bytes; AF_INET6:
	                    * 16 bytes (a v4-mapped one stays mapped); AF_UNIX: addr[0]
	                    * is VIGIL_UNIX_PATH or VIGIL_UNIX_ABSTRACT. Network order. */
	__u64 path_hash;   /* FILE, EXEC: FNV-1a 64 over the object's path from the root below,
	                    * without NUL; 0: only (dev, ino) holds */
	__u64 root_dev;    /* the root that path starts at: its superblock (kernel encoding), */
	__u64 root_ino;    /* inode */
	__u32 root_mnt;    /* and mount id */
	__u32 mnt_id;      /* the mount the object must be on */
	__u32 flags;       /* VIGIL_BIND_* */
	__u32 pad;
};

/* Slot key states (the high word of struct vigil_slot.key, the low word is
 * the owning tid). keep in sync with loader/contract.go slotPublished */
#define VIGIL_SLOT_PUBLISHED 1ULL

/*
 * One slot of the slots array, which userspace writes through its mmap
 * (BPF_F_MMAPABLE) instead of a map-update syscall. key is 0 when the slot
 * is free, tid while its owner (userspace under its lock, or the exec
 * program moving a binding) writes b, and tid | VIGIL_SLOT_PUBLISHED << 32
 * once b is complete. Only a published key equal to the current thread's
 * makes b its binding: a slot of another tid, or one being written, is no
 * binding. A free slot is claimed with a compare-and-swap of key from 0;
 * the programs free it by storing 0 when they consume the binding, and the
 * exit program when its owner dies. 128 bytes.
 */
struct vigil_slot {
	__u64 key;
	struct vigil_binding b;
};

/* Bookkeeping shared with userspace through its mmap. */
struct vigil_bind_ctl {
	__u64 hashed; /* entries the bindings hash may hold: incremented before an
	               * insert, decremented after a delete that found one; while
	               * 0, the programs skip the hash lookup */
	__u64 shared_files; /* thread groups ever entered in shared_files,
	                     * counted before the entry is written; while 0,
	                     * userspace skips the lookup of a bound open */
	__u64 view_epoch;   /* bumped at the entry and at the exit of every
	                     * syscall of a filtered thread that may change what
	                     * the emulator snapshots of a caller (credentials,
	                     * groups, capabilities, umask, root, namespaces,
	                     * limits) or create a thread (whose id may be a dead
	                     * one's), and by userspace each time it attaches the
	                     * syscall tracepoints (nothing counted while they
	                     * were not): while it stays put, a snapshot holds */
	__u64 comm_epoch;   /* bumped by task_rename for every rename of a
	                     * watched thread (PR_SET_NAME, a write to
	                     * /proc/<tid>/comm, an exec) and by
	                     * sched_process_exec for every exec of a watched
	                     * thread group, after the kernel has set the new
	                     * comm: while it stays put, the comm userspace read
	                     * for a thread before is still its comm */
};

/* keep in sync with loader/contract.go EventType */
enum vigil_event_type {
	VIGIL_EV_ENTER = 1,     /* sys_enter of a captured syscall */
	VIGIL_EV_EXIT = 2,      /* sys_exit of a captured or bound syscall */
	VIGIL_EV_VIOLATION = 3, /* a binding did not hold; replaces the ENTER/EXIT event */
};

/* keep in sync with loader/contract.go Reason */
enum vigil_reason {
	VIGIL_OK = 0,
	VIGIL_ARG_UNREADABLE = 1,  /* sys_enter could not read the bound argument, or never saw the call */
	VIGIL_ARG_CHANGED = 2,     /* the bound argument's bytes differ from the vetted copy */
	VIGIL_OBJECT_MISMATCH = 3, /* the kernel used another object than the one vetted */
	VIGIL_NO_OBJECT = 4,       /* the call succeeded but its object could not be found */
	VIGIL_UNTRACKED = 5,       /* a watched task's child could not be added to the watched set */
	VIGIL_UNCHECKED = 6,       /* EXEC/CLONE: the call succeeded but the mid-call object check
	                            * (sched_process_exec/fork) never ran: fail closed */
	VIGIL_SHARED_FILES = 7,    /* FILE/CREATE: the caller's descriptor table is shared with another
	                            * process, which a kill cannot revoke the descriptor from (the
	                            * bound open is killed at sys_enter; a child that came to share the
	                            * table during one is doomed) */
};

/* Event flags. keep in sync with loader/contract.go Flags */
#define VIGIL_F_BOUND 1        /* the event concerns a bound call */
#define VIGIL_F_PATH_TRUNC 2   /* path holds only the first VIGIL_EVENT_PATH bytes */
#define VIGIL_F_KPATH_TRUNC 4  /* kpath is not exact: cut to its first VIGIL_EVENT_PATH bytes, or,
                                  * past 32 components, missing its leading ones */
#define VIGIL_F_KILLED 8       /* the program sent SIGKILL to the calling process */
#define VIGIL_F_HAS_OBJECT 16  /* dev, ino and kpath describe the file the call returned */
#define VIGIL_F_AT_EXIT 32     /* emitted at sys_exit (every EXIT, and a VIOLATION found there): ret is valid */
#define VIGIL_F_HAS_PEER 64    /* connect: peer_family, peer_port and peer describe the socket's peer
                                * (AF_UNIX: kpath is the peer's path or abstract name, see below) */
#define VIGIL_F_HAS_CHILD 128  /* clone: child_tid and child_ns describe the child the call created */
#define VIGIL_F_REPLACED 256   /* FILE/EXEC: the object differs from the vetted one but has its path
                                * (see struct vigil_binding): the grant stood */

/*
 * One ring-buffer record. 656 bytes, no implicit padding. path and kpath are
 * not NUL-terminated: path_len and kpath_len (<= VIGIL_EVENT_PATH) say how
 * many bytes are valid.
 *
 * HAS_OBJECT: dev, ino and kpath are the file the call returned (open
 * family), the executable that now runs (execve/execveat, at
 * sched_process_exec and sys_exit), or the socket file an AF_UNIX peer is
 * bound to (connect).
 * HAS_PEER with peer_family AF_UNIX: kpath is the peer's address: the path of
 * its socket file (with HAS_OBJECT) or its abstract name, raw, leading NUL
 * byte included; empty for an unnamed or missing peer.
 */
struct vigil_event {
	__u32 type;  /* enum vigil_event_type */
	__u32 tgid;
	__u32 tid;
	__u32 nr;    /* syscall number */
	__u64 ts_ns; /* bpf_ktime_get_ns(): CLOCK_MONOTONIC */
	__s64 ret;   /* EXIT: return value */
	__u64 args[6];
	__u64 dev;   /* HAS_OBJECT: kernel encoding MAJOR<<20 | MINOR */
	__u64 ino;
	__u32 reason; /* enum vigil_reason */
	__u32 flags;  /* VIGIL_F_* */
	__u16 path_len;
	__u16 kpath_len;
	__u32 child_tid;   /* HAS_CHILD: the child's thread id (init pid namespace) */
	__u64 child_ns;    /* HAS_CHILD: CLONE_NEW* bits of the namespaces the child does not share with its parent */
	__u16 peer_family; /* HAS_PEER: the socket's family */
	__u16 peer_port;   /* HAS_PEER, AF_INET/AF_INET6: host order */
	__u32 pad;
	__u8 peer[16];     /* HAS_PEER: AF_INET: 4 bytes; AF_INET6: 16 bytes; network order */
	char path[VIGIL_EVENT_PATH];  /* the path argument as user memory held it */
	char kpath[VIGIL_EVENT_PATH]; /* the kernel's path of the object (see above) */
};

#endif /* VIGIL_H */
