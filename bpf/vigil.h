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
	/* 3 (EXEC) and 4 (CONNECT) are reserved; the programs kill on any kind
	 * they do not know, so a newer loader cannot silently go unchecked. */
};

/*
 * Life of a binding. Userspace writes it armed; sys_enter moves it on;
 * sys_exit deletes it. keep in sync with loader/contract.go (bindArmed…).
 */
enum vigil_bind_state {
	VIGIL_STATE_ARMED = 0,   /* written by userspace, not seen by the kernel yet */
	VIGIL_STATE_ENTERED = 1, /* sys_enter re-read the argument and it matched */
	VIGIL_STATE_KILLED = 2,  /* sys_enter killed the caller; sys_exit only reports */
};

/*
 * A grant the supervisor is about to CONTINUE, keyed by the thread id in the
 * bindings map. 56 bytes, no implicit padding.
 */
struct vigil_binding {
	__u64 dev;       /* kernel encoding of the superblock's s_dev: MAJOR<<20 | MINOR */
	__u64 ino;       /* inode number (FILE: the file; CREATE: the parent directory) */
	__u64 arg_hash;  /* FNV-1a 64 over the vetted path bytes, no NUL */
	__u64 name_hash; /* CREATE: FNV-1a 64 over the final path component */
	__u32 arg_len;   /* length of the vetted path bytes */
	__u32 nr;        /* syscall number the grant is for */
	__u32 kind;      /* enum vigil_bind_kind */
	__u32 arg_index; /* register index (0..5) holding the path pointer */
	__u32 state;     /* enum vigil_bind_state */
	__u32 pad;
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
};

/* Event flags. keep in sync with loader/contract.go Flags */
#define VIGIL_F_BOUND 1        /* the event concerns a bound call */
#define VIGIL_F_PATH_TRUNC 2   /* path holds only the first VIGIL_EVENT_PATH bytes */
#define VIGIL_F_KPATH_TRUNC 4  /* kpath is not exact: cut to its first VIGIL_EVENT_PATH bytes, or,
                                  * past 32 components, missing its leading ones */
#define VIGIL_F_KILLED 8       /* the program sent SIGKILL to the calling process */
#define VIGIL_F_HAS_OBJECT 16  /* dev, ino and kpath describe the file the call returned */
#define VIGIL_F_AT_EXIT 32     /* emitted at sys_exit (every EXIT, and a VIOLATION found there): ret is valid */

/*
 * One ring-buffer record. 624 bytes, no implicit padding. path and kpath are
 * not NUL-terminated: path_len and kpath_len (<= VIGIL_EVENT_PATH) say how
 * many bytes are valid.
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
	__u32 pad;
	char path[VIGIL_EVENT_PATH];  /* the path argument as user memory held it */
	char kpath[VIGIL_EVENT_PATH]; /* the kernel's path of the returned file */
};

#endif /* VIGIL_H */
