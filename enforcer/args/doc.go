// Package args reads a watchee's syscall arguments out of its memory and
// decodes them into typed values, giving the same errno the kernel itself
// would give for the same bytes.
//
// It sits on the supervisor's hot path (one call per pointer argument per
// notification), so nothing here allocates: the caller passes the buffers,
// normally the arrays of one [Scratch] per notify loop. The decoders are pure
// functions on bytes that never panic on any input; the only allocation is the
// string of an AF_UNIX path in [DecodeSockaddr], and the flag formatters used
// for audit records (which have allocation-free Append variants).
//
// # Reading memory
//
// Memory is read with process_vm_readv(2) on the watchee's thread id. That
// needs PTRACE_MODE_ATTACH_REALCREDS over the watchee, exactly what a seccomp
// supervisor has anyway, and works on the test process's own pid without any
// privilege. Each reader mirrors one kernel copy routine:
//
//	ReadString, ReadPath   strncpy_from_user / getname_flags (fs/namei.c)
//	ReadXattrName          import_xattr_name (fs/xattr.c)
//	ReadStruct             copy_struct_from_user (include/linux/uaccess.h)
//	ReadOpenHow            openat2 (fs/open.c)
//	ReadCloneArgs          copy_clone_args_from_user (kernel/fork.c)
//	ReadSockaddr           move_addr_to_kernel (net/socket.c)
//	ReadXattrValue         setxattr_copy (fs/xattr.c)
//	ReadBytes              copy_from_user
//
// Readers only touch the pages the kernel would touch: strings are read up to
// the end of the current page and continued a page at a time only while no
// NUL has been seen, and an extensible struct's tail is checked a page at a
// time up to its first non-zero byte. Reading further would fault in pages the
// syscall never uses, which a watchee could back with userfaultfd to stall the
// supervisor, and would turn a call the kernel accepts into EFAULT.
//
// A successful read is only a snapshot: the caller must check that the
// notification is still valid (SECCOMP_IOCTL_NOTIF_ID_VALID) after every read,
// because the tid may have died and been reused in between.
//
// # Errors and the kernel's order of checks
//
// Every error is one of the sentinels ([ErrFault], [ErrNameTooLong],
// [ErrTooBig], [ErrInvalid], [ErrRange], [ErrPerm], [ErrTaskGone]) or wraps a
// failure of process_vm_readv itself; [Errno] maps any of them to the errno to
// answer the watchee with, failing closed to EFAULT. When a syscall has
// several arguments that can each fail, the kernel reports the first check it
// makes, so a supervisor that wants to answer with the kernel's errno must
// read and check the arguments in the kernel's order. Checked against Linux
// 6.18 (the machines vigil targets) by the differential tests in this package
// and by probing the syscalls with bad arguments:
//
//	openat2   usize < OPEN_HOW_SIZE_VER0 -> EINVAL; usize > PAGE_SIZE -> E2BIG
//	          (the two cannot both hold, so their order is unobservable);
//	          then copy_struct_from_user: the tail beyond the known size is
//	          checked first (unreadable -> EFAULT, non-zero -> E2BIG), then the
//	          known part is copied (EFAULT); then build_open_flags (EINVAL);
//	          only then getname on the path (EFAULT, ENAMETOOLONG, ENOENT).
//	          So a bad open_how wins over a bad path: use ReadOpenHow first.
//	clone3    usize > PAGE_SIZE -> E2BIG; usize < CLONE_ARGS_SIZE_VER0 -> EINVAL;
//	          copy_struct_from_user as above; then the EINVAL checks of
//	          copy_clone_args_from_user (set_tid_size, exit_signal,
//	          CLONE_INTO_CGROUP), which DecodeCloneArgs repeats; then the
//	          set_tid array copy (EFAULT) and clone3_args_valid (EINVAL),
//	          which it does not.
//	setxattr  (6.13+, path_setxattrat) flags -> EINVAL; name -> EFAULT or
//	          ERANGE; size > XATTR_SIZE_MAX -> E2BIG; value -> EFAULT; only
//	          then the path. Before 6.13 the path was looked up first.
//	mknod     may_mknod on the mode (S_IFDIR -> EPERM, other unknown types
//	          -> EINVAL) before the path's getname error surfaces in
//	          filename_create: use DecodeDev before ReadPath.
//	connect   the fd is looked up (EBADF), then move_addr_to_kernel (EINVAL
//	          for a length < 0 or > 128, EFAULT), then the fd must be a socket
//	          (ENOTSOCK), then the protocol's length and family checks, which
//	          dispatch on the socket's family, not on sa_family.
//	bind      EBADF, then ENOTSOCK, then move_addr_to_kernel, then the
//	          protocol's checks.
//
// Register arguments are truncated the way the syscall wrappers truncate them:
// an addrlen is an int, mknod's mode a umode_t (16 bits) and its dev an
// unsigned int, open and openat flags an int; only openat2's open_how.flags and
// size_t lengths use all 64 bits.
package args
