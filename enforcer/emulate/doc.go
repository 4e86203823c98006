// Package emulate performs a syscall as a watchee would have performed it,
// from vigil's own vetted copy of the arguments: docs/design.md §2's "emulate"
// verdict. The kernel never reads the watchee's memory again, and the object
// vigil vetted is the object the call acts on.
//
// # Prepare, vet, do
//
// Every emulation is split in two around the caller's policy decision:
//
//	p, err := em.PrepareAt(c, dirfd, path, emulate.LookupParent) // resolve once, hold it
//	if err != nil { answer(emulate.Errno(err)) }                  // the kernel's own lookup error
//	defer p.Close()
//	listener.Valid(id)                                            // /proc was read while pending
//	if !policy.Allows(p.Path) { answer(EPERM) }                   // vet exactly what is held
//	r, err := em.Unlinkat(p, 0)                                   // act on what is held
//
// Preparation resolves the path once, in the watchee's view and with its
// credentials, and keeps the result open (O_PATH): the parent directory for
// calls that act on a name (unlink, rename, mkdir, mknod, link, symlink), the
// object itself for calls that act on it (chmod, chown, truncate, setxattr).
// The call then runs relative to that descriptor with only the final name, or
// on the descriptor itself through its /proc magic link — never by looking
// the path up again — so a thread that swaps a path component for a symlink
// after vetting cannot redirect it (TestPathRaceNeverTouchesProtectedDirectory,
// which also runs a naive re-resolving mode to show the race is real).
//
// Opens are the same in two phases. PrepareOpen finds, without side effects,
// the existing file the open would open (following symlinks, RESOLVE_* and
// all), or the directory and name an O_CREAT would create after following a
// dangling symlink as the kernel does; Open then reopens exactly that file
// through its O_PATH descriptor, or creates the name with O_EXCL in the held
// directory (ErrRaced if the name appeared meanwhile). So O_CREAT and O_TRUNC
// never take effect on anything but what the caller vetted. Opens without
// side effects on regular files and directories are already opened in phase
// A, saving a round trip. The caller installs Result.Fd in the watchee with
// InstallFd (SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SEND and
// O_CLOEXEC as newfd_flags) and can fstat it or readlink /proc/self/fd/N
// first: what it holds is what the watchee gets.
//
// EMFILE: the kernel allocates the descriptor slot before any lookup, and
// ADDFD allocates it in the watchee's table under the watchee's
// RLIMIT_NOFILE, failing with EMFILE too — but only after an O_CREAT or
// O_TRUNC took effect. So PrepareOpen decides EMFILE itself first (prlimit,
// or /proc/<pid>/limits without CAP_SYS_RESOURCE, against the open count
// /proc/<tid>/fd reports) for every open that can act — creating,
// truncating, or opening a device or FIFO — and before answering a failed
// lookup; an open of a regular file or directory that does neither is left
// to ADDFD's own EMFILE, which the caller answers (and which is the backstop
// for a sibling thread that takes the last slot in between).
//
// connect(2) has the same shape: PrepareSocket takes the watchee's socket
// (pidfd_getfd) before the caller's ID_VALID check, and Connect connects that
// open file description with the sockaddr vigil vetted. bind(2) too
// (PrepareBindSocket, Bind), with the watchee's credentials; an AF_UNIX path
// is made in the directory PrepareAt holds, from a thread of its own whose
// private root leads the spelled directories to a clone of that
// directory's mount (bind.go), since bind(2) has no *at form and the kernel
// keeps the spelling as the socket's name.
//
// # Workers
//
// A Go process cannot join a user or mount namespace: setns(2) refuses
// multi-threaded callers for the former and callers sharing their fs_struct
// for the latter. So the calls run in a worker: vigil re-executed with argv[0]
// "vigil:emulate" (WorkerRole, package reexec), which joins the watchee's
// user and mount namespaces in an ELF constructor before the Go runtime
// starts (nsenter.c, as runc and LXD do) — the mount namespace first, while it
// still holds vigil's capabilities, because the user namespace that owns it
// may be an ancestor of the watchee's (unshare -U inside a container) — then serves requests over a
// SOCK_SEQPACKET socketpair on one locked thread with a private fs_struct. Descriptors travel
// both ways with SCM_RIGHTS: vigil opens the watchee's root, cwd and dirfds
// (O_PATH through /proc/<tid>) and receives the resolved parents, objects and
// opened files. A worker is started on first use for each (user namespace,
// mount namespace, supplementary groups) and kept until Close, or until it is
// the least recently used of too many live workers, since it pins those
// namespaces; one worker costs a few milliseconds to start and serves any
// number of calls. The worker is
// non-dumpable before it joins, so the watchee, root in its namespace, cannot
// ptrace it or read its memory; it can only kill it, which fails its own calls
// closed.
//
// A watchee that shares vigil's user and mount namespaces, root and umask —
// every watchee of `vigil run` without --userns until it chroots — needs no
// worker: the calling thread itself takes on the watchee's fsuid, fsgid,
// groups and effective capabilities, runs the same handler, and gets vigil's
// credentials back before the call returns (inline.go). That saves the two
// process wake-ups of a worker round trip, the larger part of an emulated
// open's cost. Requests that need the worker's private cwd or per-process
// limits (truncate, path-only xattr calls) still go to a worker.
//
// Per request the worker thread chroots to the watchee's root (so absolute
// symlinks and ".." stay inside it, and readlink of a descriptor prints the
// path in the watchee's view), takes on its fsuid, fsgid, umask and effective
// capabilities, skipping whatever did not change since the previous request.
// The supervisor keeps the worker's thread on its own CPU: the round trip is
// synchronous, and waking a thread on another idle CPU dominated its cost
// (~50µs against ~4.5µs on one CPU of a 2-vCPU VM), which is what
// SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP does for notifications.
//
// # Credentials
//
// The watchee's credentials are read from /proc/<tid>/status (through one
// descriptor of /proc/<tid>, so a recycled tid fails rather than lends another
// process's identity) while its notification is pending; the caller's
// ID_VALID check after preparing confirms them before anything acts on them.
// With an eBPF change counter (Caller.Changes) what was read is reused for
// the same thread until a syscall that could change it ran (callers.go). In the worker they are exactly
// the watchee's where file operations look: fsuid, fsgid, supplementary
// groups (host ids, set before joining, so even groups unmapped in its
// namespace count), umask (so POSIX default ACLs apply as for the watchee),
// and effective capabilities in the watchee's user namespace (so CAP_CHOWN,
// CAP_DAC_OVERRIDE or CAP_FOWNER work on the ids mapped there and nowhere
// else). A worker translates ids with its user namespace's maps, read when
// it starts; maps are written once, so a worker that started before both
// existed (unshare(1) makes calls between unshare(2) and writing them) is
// replaced once they do (worker.go, unmapped). Per syscall:
//
//	mkdir, mknod (FIFO, socket, whiteout), unlink, rmdir, rename(2),
//	link, symlink, chmod, chown, truncate, setxattr, open:
//	                    the watchee's own, in its user and mount namespaces.
//	                    Results, errnos and the owner, group and mode of
//	                    created files are the kernel's
//	                    (TestEmulationMatchesWatcheeDifferentially).
//	mknod c/b, lent:    the watchee's attempt first, which settles lookup,
//	                    EEXIST, EROFS and write permission on the directory;
//	                    only its EPERM (CAP_MKNOD, which no user namespace
//	                    grants) is retried on vigil's own thread in the
//	                    initial user namespace with the watchee's host fsuid,
//	                    fsgid, groups and umask and only CAP_MKNOD and
//	                    CAP_DAC_OVERRIDE effective: the node is owned and
//	                    moded as the watchee's own would be. Refused with
//	                    EPERM on nodev mounts.
//	setxattr trusted.*, lent:
//	                    the watchee's attempt first; its EPERM (trusted.*
//	                    needs CAP_SYS_ADMIN in the initial user namespace) is
//	                    retried with vigil's CAP_SYS_ADMIN, only on regular
//	                    files and directories the watchee may write
//	                    (faccessat2 with AT_EACCESS under its credentials: the
//	                    permission a user.* attribute needs).
//	linkat(fd, "", AT_EMPTY_PATH):
//	                    the worker's own attempt settles the
//	                    CAP_DAC_READ_SEARCH half of the kernel's rule; a file
//	                    opened with the watchee thread's current credentials
//	                    (f_cred == current_cred(), Linux 6.10+, which a BPF
//	                    iterator checks) is linked through its magic link
//	                    instead (linkcred.go).
//	sendto, sendmsg, sendmmsg:
//	                    vigil sends on the watchee's own socket
//	                    (pidfd_getfd) from its own thread; AF_UNIX and
//	                    netlink messages carry the watchee's credentials
//	                    (SCM_CREDENTIALS, checked as the kernel checks the
//	                    watchee's own), a pathname destination is checked
//	                    for write permission as the watchee (send.go).
//	connect:            no credentials: vigil connects the watchee's own open
//	                    file description (pidfd_getfd), whose network
//	                    namespace, cgroup and creator credentials apply.
//	                    AF_INET and AF_INET6 only (see Connect).
//	bind, AF_UNIX path: the worker binds the watchee's socket from a private
//	                    view where the spelling leads to the vetted directory
//	                    (bind.go); the view's clone of that directory's mount
//	                    and its procfs, which a worker in a user namespace of
//	                    its own may not make, vigil makes and lends.
//
// Whether to lend is the caller's decision (policy "emulate" with a dev or
// xattr list): without lend both calls are the watchee's own.
//
// # Repeats
//
// vigil installs filters with SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV: once a
// notification is received, only a fatal signal ends the watchee's wait, so a
// call emulated and then unanswered belongs to a watchee that is gone, and
// nothing repeats. On kernels without the flag (before 5.19) a signal can
// interrupt the wait and SA_RESTART repeat the call; Replay lets the caller
// answer the repeat with the first result instead of emulating twice.
//
// # Descriptors
//
// No descriptor outlives its use: Prepared owns its descriptors until Close,
// Result.Fd belongs to the caller (InstallFd closes it whatever happens), the
// worker closes what it received and sent after each request, and failures
// close everything on every path (TestNoDescriptorLeaksOverManyCallsAndADeadWatchee).
//
// # Limits
//
// What cannot be emulated faithfully returns ErrUnsupported before anything
// happens, for the caller to pass to the kernel with a binding or deny: paths
// through /proc magic links or objects on procfs (they would name the
// worker's own), opens of terminals without O_NOCTTY and /dev/tty (the
// controlling terminal is the opener's), FIFO opens that would block, and
// AF_UNIX connects (the peer's SO_PEERCRED would be vigil's). Known
// differences: an emulated open's struct file records the worker thread's
// credentials (f_cred: same fsuid, fsgid and effective capabilities, other ids
// differ); the device cgroup and LSMs judge a lent mknod or setxattr by vigil,
// not the watchee; nodes on filesystems whose superblock belongs to a user
// namespace (SB_I_NODEV, invisible to statfs) are created but unusable, as
// the kernel would make them; symlinks followed while chasing an O_CREAT
// target count toward the 40-link limit per lookup, not in total; idmapped
// mounts are not considered by the sticky-directory check Open performs for
// O_CREAT on existing files; a rename whose source is missing answers ENOENT
// where the kernel, which checks both names' directories and "."/".." first,
// would answer ENOTDIR or EBUSY (the caller resolves the source first).
package emulate
