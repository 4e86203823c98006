/*
 * probe — a single-file C watchee for vigil's differential integration tests: run it once bare
 * and once under the supervisor, and compare stdout.
 *
 * Build: gcc -O2 -Wall -Wextra -pthread -o probe probe.c   (libc and kernel headers only)
 *
 * Every operation is a raw syscall(2) (or inline asm where even that is not raw enough), so
 * exactly the syscall named is made: `open` is SYS_open, never openat.
 *
 * OUTPUT: one line per operation on stdout, written with write(2) (no stdio buffering, so
 * nothing is lost or duplicated across exec, clone or exit_group):
 *   ok [DETAIL]          the syscall succeeded
 *   err ERRNO_NAME       it failed, e.g. `err EACCES` (symbolic name from a table; E<n> if unknown)
 * EXIT STATUS: 0 whenever the operation ran (whatever its result); 2 on a usage error (message on
 * stderr; a nonsense `badptr` KIND/SYSCALL pair also prints `err EINVAL` on stdout); 3 when a
 * setup step that is not the operation under test failed (opening a dir:/file: DIRSPEC,
 * creating a socket, mmap, pthread_create; message on stderr, nothing on stdout).
 *
 * SYNTAX: probe [-r] SUBCOMMAND ARGS...
 *   -r   after a successful open/openat/openat2/creat, read(2) up to 64 bytes from the fd and
 *        print `ok read=<bytes>` (escaped: \n \t \r \\ and \xHH for other non-printables), or
 *        `ok readerr=ERRNO_NAME` if the read fails (e.g. O_PATH, a directory, O_WRONLY).
 *   Without -r a successful open prints `ok`. The fd is always closed afterwards.
 *
 * Opening (FLAG... is any number of words, each a flag name, a number, or names joined by '|';
 * the open flags are O_RDONLY O_WRONLY O_RDWR O_CREAT O_EXCL O_TRUNC O_NOFOLLOW O_DIRECTORY
 * O_PATH O_CLOEXEC O_APPEND O_TMPFILE O_NONBLOCK O_NOCTTY O_SYNC O_DSYNC O_NOATIME O_LARGEFILE;
 * `mode=0600` sets the mode, default 0644 when O_CREAT or O_TMPFILE is given, else 0;
 * no FLAG means O_RDONLY):
 *   probe open PATH [FLAG...]                          SYS_open(PATH, flags, mode)
 *   probe openat DIRSPEC PATH [FLAG...]                SYS_openat(dirfd, PATH, flags, mode)
 *   probe openat2 DIRSPEC PATH RESOLVE [FLAG...]       SYS_openat2 with a 24-byte open_how;
 *                                                      RESOLVE is `0` or RESOLVE_* names joined
 *                                                      by '|' (RESOLVE_NO_XDEV RESOLVE_NO_MAGICLINKS
 *                                                      RESOLVE_NO_SYMLINKS RESOLVE_BENEATH
 *                                                      RESOLVE_IN_ROOT RESOLVE_CACHED)
 *   probe creat PATH                                   SYS_creat(PATH, 0644)
 *   DIRSPEC: cwd (AT_FDCWD) | dir:PATH (openat(AT_FDCWD, PATH, O_RDONLY|O_DIRECTORY) first) |
 *            file:PATH (a regular file's fd, O_RDONLY) | closed (fd 1000, closed first) |
 *            bad (-5) | fd:N (the number N as is)
 *
 * Bad pointers (prints the result line of one SYSCALL):
 *   probe badptr KIND SYSCALL
 *   path KINDs, for SYSCALL open openat openat2 creat unlink mkdir execve mknod setxattr:
 *     null      the path pointer is 0                                   (kernel: EFAULT)
 *     unmapped  the address of a page that was mmapped and munmapped    (EFAULT)
 *     cross     16 non-NUL bytes ending a mapped page, then a PROT_NONE page  (EFAULT)
 *     long      PATH_MAX+1 (4097) non-NUL bytes, then a NUL             (ENAMETOOLONG)
 *     exactmax  4096 non-NUL bytes filling a page, then a PROT_NONE page (ENAMETOOLONG)
 *     empty     ""                                                      (ENOENT)
 *   open_how KINDs, SYSCALL openat2 only (path /dev/null, flags O_RDONLY):
 *     howsmall (size 8: EINVAL)  howbig (size 8192: E2BIG)  hownull (how NULL: EFAULT)
 *     howtail (size 32, byte 24..31 nonzero: E2BIG)
 *   clone_args KINDs, SYSCALL clone3 only: cloneargsnull (args NULL, full size: EFAULT)
 *     cloneargssmall (size 8: EINVAL)
 *   sockaddr KINDs, SYSCALL connect only, on an AF_INET stream socket:
 *     addrnull (NULL, len 16: EFAULT)  addrshort (len 3: EINVAL)  addrlong (len 200: EINVAL)
 *   (the argument other than the bad one is valid: openat uses AT_FDCWD, mknod makes a FIFO,
 *    setxattr sets user.probe=v, execve gets argv {"probe", NULL} and the current environ)
 *
 * Processes:
 *   probe clone3 FLAGS      raw SYS_clone3, exit_signal SIGCHLD (0 with CLONE_THREAD); the child
 *                           calls exit(0) at once from inline asm (so any flags, CLONE_VM
 *                           included, are safe; with CLONE_VM it gets its own stack); the parent
 *                           waits for it unless CLONE_THREAD/CLONE_PARENT. FLAGS: `0`, a number,
 *                           or CLONE_* names joined by '|' (CLONE_NEWUSER, CLONE_NEWNS, ...)
 *   probe clone FLAGS       the same with raw SYS_clone (flags | SIGCHLD)
 *   probe exec PATH [ARG...]  SYS_execve(PATH, {PATH, ARG..., NULL}, environ); on success the
 *                           new program's output is all there is
 *
 * Other syscalls with path or address arguments:
 *   probe mknod PATH c|b|p [MAJOR MINOR]   SYS_mknod(PATH, S_IFCHR|S_IFBLK|S_IFIFO | 0666, dev)
 *   probe setxattr PATH NAME VALUE         SYS_setxattr(PATH, NAME, VALUE, strlen(VALUE), 0)
 *   probe unlink PATH                      SYS_unlink
 *   probe mkdir PATH                       SYS_mkdir(PATH, 0755)
 *   probe rename OLD NEW                   SYS_rename
 *   probe connect HOST PORT                SYS_connect on a SOCK_STREAM socket: HOST an IPv4
 *                                          address, or IPv6 (brackets optional);
 *   probe connect unix:/PATH               AF_UNIX (unix:@NAME for the abstract namespace);
 *                                          connect times out after 5 s (SO_SNDTIMEO)
 *
 * Concurrency, signals, benchmarks:
 *   probe threads N ITERS PATH [FLAG...]   N pthreads (released together by a barrier) each do
 *                                          ITERS x (SYS_openat(AT_FDCWD, PATH, flags) + close);
 *                                          prints `ok <successes> err <failures> <FIRST>` where
 *                                          FIRST is the errno name of the first failure or `-`
 *   probe loop ITERS PATH                  ITERS x (SYS_openat(AT_FDCWD, PATH, O_RDONLY) +
 *                                          close) as fast as possible; prints `ok`, or
 *                                          `err NAME` and stops at the first failure
 *   probe restart PATH                     SIGUSR1 handler with SA_RESTART counts signals; one
 *                                          SYS_openat(PATH, O_RDONLY); prints `ok signals=<n>`
 *                                          (or `err NAME signals=<n>`)
 *   probe pending-exit PATH                a thread does SYS_openat(PATH, O_RDONLY) (and prints
 *                                          nothing); after 50 ms the main thread prints `ok` and
 *                                          calls exit_group(0)
 *
 * ABIs:
 *   probe i386    getpid (nr 20) through `int $0x80`: prints `ok <pid>`; a filter that rejects
 *                 non-x86_64 arches kills the process instead
 *   probe x32     getpid with __X32_SYSCALL_BIT (0x40000000|39): `ok <pid>` on a kernel with x32,
 *                 else `err ENOSYS`
 *
 * Hardening (see do_hardened):
 *   probe hardened NAME   one harmless call of bpf, init_module, finit_module, delete_module,
 *                         kexec_load, kexec_file_load, pidfd_getfd, process_vm_writev,
 *                         userfaultfd, fanotify_init, iopl or ioperm
 *
 * Fidelity (see do_fidelity):
 *   probe fidelity DIR [nocap]   flag and argument checks of the emulated path calls in DIR
 *
 * Sends (see do_send, do_sendflip):
 *   probe send udp|tcpfo|dgram sendto|sendmsg|sendmmsg DEST [PORT] [OPTION...]
 *   probe sendflip msg|to ALLOWED_PORT DENIED_PORT ITERS
 *   probe sendsem                 EAGAIN, blocking, SO_SNDTIMEO, EPIPE/SIGPIPE, EFAULT, zerocopy
 */
#define _GNU_SOURCE
#include <poll.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/openat2.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif
#ifndef SYS_clone3
#define SYS_clone3 435
#endif
#ifndef CLONE_PIDFD
#define CLONE_PIDFD 0x00001000
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif
#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
#ifndef RESOLVE_CACHED
#define RESOLVE_CACHED 0x20
#endif

#define X32_SYSCALL_BIT 0x40000000L

extern char **environ;

/* struct clone_args (VER2, 88 bytes), spelled out to avoid mixing <linux/sched.h> with glibc. */
struct probe_clone_args {
	uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
		set_tid, set_tid_size, cgroup;
};

static int read_mode; /* -r */

/* ------------------------------------------------------------------ output */

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	int n;
	size_t off = 0;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	while (off < (size_t)n) {
		ssize_t w = write(1, buf + off, (size_t)n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		off += (size_t)w;
	}
}

#define E(x) [x] = #x
static const char *const errnames[] = {
	E(EPERM), E(ENOENT), E(ESRCH), E(EINTR), E(EIO), E(ENXIO), E(E2BIG), E(ENOEXEC),
	E(EBADF), E(ECHILD), E(EAGAIN), E(ENOMEM), E(EACCES), E(EFAULT), E(ENOTBLK), E(EBUSY),
	E(EEXIST), E(EXDEV), E(ENODEV), E(ENOTDIR), E(EISDIR), E(EINVAL), E(ENFILE), E(EMFILE),
	E(ENOTTY), E(ETXTBSY), E(EFBIG), E(ENOSPC), E(ESPIPE), E(EROFS), E(EMLINK), E(EPIPE),
	E(EDOM), E(ERANGE), E(EDEADLK), E(ENAMETOOLONG), E(ENOLCK), E(ENOSYS), E(ENOTEMPTY),
	E(ELOOP), E(ENOMSG), E(EIDRM), E(ECHRNG), E(EL2NSYNC), E(EL3HLT), E(EL3RST), E(ELNRNG),
	E(EUNATCH), E(ENOCSI), E(EL2HLT), E(EBADE), E(EBADR), E(EXFULL), E(ENOANO), E(EBADRQC),
	E(EBADSLT), E(EBFONT), E(ENOSTR), E(ENODATA), E(ETIME), E(ENOSR), E(ENONET), E(ENOPKG),
	E(EREMOTE), E(ENOLINK), E(EADV), E(ESRMNT), E(ECOMM), E(EPROTO), E(EMULTIHOP), E(EDOTDOT),
	E(EBADMSG), E(EOVERFLOW), E(ENOTUNIQ), E(EBADFD), E(EREMCHG), E(ELIBACC), E(ELIBBAD),
	E(ELIBSCN), E(ELIBMAX), E(ELIBEXEC), E(EILSEQ), E(ERESTART), E(ESTRPIPE), E(EUSERS),
	E(ENOTSOCK), E(EDESTADDRREQ), E(EMSGSIZE), E(EPROTOTYPE), E(ENOPROTOOPT),
	E(EPROTONOSUPPORT), E(ESOCKTNOSUPPORT), E(EOPNOTSUPP), E(EPFNOSUPPORT), E(EAFNOSUPPORT),
	E(EADDRINUSE), E(EADDRNOTAVAIL), E(ENETDOWN), E(ENETUNREACH), E(ENETRESET),
	E(ECONNABORTED), E(ECONNRESET), E(ENOBUFS), E(EISCONN), E(ENOTCONN), E(ESHUTDOWN),
	E(ETOOMANYREFS), E(ETIMEDOUT), E(ECONNREFUSED), E(EHOSTDOWN), E(EHOSTUNREACH),
	E(EALREADY), E(EINPROGRESS), E(ESTALE), E(EUCLEAN), E(ENOTNAM), E(ENAVAIL), E(EISNAM),
	E(EREMOTEIO), E(EDQUOT), E(ENOMEDIUM), E(EMEDIUMTYPE), E(ECANCELED), E(ENOKEY),
	E(EKEYEXPIRED), E(EKEYREVOKED), E(EKEYREJECTED), E(EOWNERDEAD), E(ENOTRECOVERABLE),
	E(ERFKILL), E(EHWPOISON),
};
#undef E

static const char *errname(int e)
{
	static __thread char buf[16];

	if (e > 0 && (size_t)e < sizeof(errnames) / sizeof(errnames[0]) && errnames[e])
		return errnames[e];
	snprintf(buf, sizeof(buf), "E%d", e);
	return buf;
}

/* Prints the result line of a syscall(2) return value (errno holds the error). */
static void report(long r)
{
	if (r < 0)
		out("err %s", errname(errno));
	else
		out("ok");
}

/* Result of an open: -r reads; the fd is closed either way. */
static void report_fd(long fd)
{
	if (fd < 0) {
		out("err %s", errname(errno));
		return;
	}
	if (read_mode) {
		unsigned char b[64];
		char esc[64 * 4 + 1];
		size_t o = 0;
		ssize_t n = read((int)fd, b, sizeof(b));

		if (n < 0) {
			out("ok readerr=%s", errname(errno));
		} else {
			for (ssize_t i = 0; i < n; i++) {
				unsigned char c = b[i];
				if (c == '\n') {
					esc[o++] = '\\';
					esc[o++] = 'n';
				} else if (c == '\t') {
					esc[o++] = '\\';
					esc[o++] = 't';
				} else if (c == '\r') {
					esc[o++] = '\\';
					esc[o++] = 'r';
				} else if (c == '\\') {
					esc[o++] = '\\';
					esc[o++] = '\\';
				} else if (c < 0x20 || c >= 0x7f) {
					o += (size_t)snprintf(esc + o, sizeof(esc) - o, "\\x%02x", c);
				} else {
					esc[o++] = (char)c;
				}
			}
			esc[o] = 0;
			out("ok read=%s", esc);
		}
	} else {
		out("ok");
	}
	syscall(SYS_close, (int)fd);
}

/* ------------------------------------------------------------------ errors */

static const char *prog_usage =
	"usage: probe [-r] SUBCOMMAND ARGS...\n"
	"  open PATH [FLAG...] | openat DIRSPEC PATH [FLAG...] |\n"
	"  openat2 DIRSPEC PATH RESOLVE [FLAG...] | creat PATH |\n"
	"  badptr KIND SYSCALL | clone3 FLAGS | clone FLAGS | exec PATH [ARG...] |\n"
	"  mknod PATH c|b|p [MAJOR MINOR] | setxattr PATH NAME VALUE | unlink PATH | mkdir PATH |\n"
	"  rename OLD NEW | connect HOST PORT | connect unix:PATH |\n"
	"  threads N ITERS PATH [FLAG...] | loop ITERS PATH | restart PATH | pending-exit PATH |\n"
	"  i386 | x32\n"
	"DIRSPEC: cwd | dir:PATH | file:PATH | closed | bad | fd:N   (see the header of probe.c)\n";

static void usage(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void usage(const char *fmt, ...)
{
	va_list ap;

	fputs("probe: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fputs(prog_usage, stderr);
	exit(2);
}

static void setup_fail(const char *what) __attribute__((noreturn));
static void setup_fail(const char *what)
{
	fprintf(stderr, "probe: setup: %s: %s (%s)\n", what, strerror(errno), errname(errno));
	exit(3);
}

/* ------------------------------------------------------------------ parsing */

struct flagname {
	const char *name;
	unsigned long long val;
};

#define F(x) { #x, (unsigned long long)(x) }
static const struct flagname oflag_names[] = {
	F(O_RDONLY), F(O_WRONLY), F(O_RDWR), F(O_CREAT), F(O_EXCL), F(O_TRUNC), F(O_NOFOLLOW),
	F(O_DIRECTORY), F(O_PATH), F(O_CLOEXEC), F(O_APPEND), F(O_TMPFILE), F(O_NONBLOCK),
	F(O_NOCTTY), F(O_SYNC), F(O_DSYNC), F(O_NOATIME), F(O_LARGEFILE), { NULL, 0 },
};
static const struct flagname resolve_names[] = {
	F(RESOLVE_NO_XDEV), F(RESOLVE_NO_MAGICLINKS), F(RESOLVE_NO_SYMLINKS), F(RESOLVE_BENEATH),
	F(RESOLVE_IN_ROOT), F(RESOLVE_CACHED), { NULL, 0 },
};
static const struct flagname clone_names[] = {
	F(CLONE_VM), F(CLONE_FS), F(CLONE_FILES), F(CLONE_SIGHAND), F(CLONE_PIDFD),
	F(CLONE_PTRACE), F(CLONE_VFORK), F(CLONE_PARENT), F(CLONE_THREAD), F(CLONE_NEWNS),
	F(CLONE_SYSVSEM), F(CLONE_SETTLS), F(CLONE_PARENT_SETTID), F(CLONE_CHILD_CLEARTID),
	F(CLONE_DETACHED), F(CLONE_UNTRACED), F(CLONE_CHILD_SETTID), F(CLONE_NEWCGROUP),
	F(CLONE_NEWUTS), F(CLONE_NEWIPC), F(CLONE_NEWUSER), F(CLONE_NEWPID), F(CLONE_NEWNET),
	F(CLONE_IO), F(CLONE_NEWTIME), F(CLONE_CLEAR_SIGHAND), F(CLONE_INTO_CGROUP), { NULL, 0 },
};
#undef F

/* Parses `0`, a number, or NAME|NAME|... from table; usage error on an unknown word. */
static unsigned long long parse_flags(const char *s, const struct flagname *table, const char *kind)
{
	unsigned long long v = 0;
	char *copy = strdup(s), *save = NULL, *tok;

	if (!copy)
		setup_fail("strdup");
	for (tok = strtok_r(copy, "|", &save); tok; tok = strtok_r(NULL, "|", &save)) {
		const struct flagname *f;
		char *end;

		if (tok[0] >= '0' && tok[0] <= '9') {
			errno = 0;
			v |= strtoull(tok, &end, 0);
			if (*end || errno)
				usage("bad %s number %s", kind, tok);
			continue;
		}
		for (f = table; f->name; f++)
			if (strcmp(f->name, tok) == 0)
				break;
		if (!f->name)
			usage("unknown %s flag %s", kind, tok);
		v |= f->val;
	}
	free(copy);
	return v;
}

/* Open FLAG words: flags, and mode=OCTAL. */
static void parse_oflags(int n, char **words, int *flags, unsigned *mode)
{
	int have_mode = 0;

	*flags = O_RDONLY;
	*mode = 0;
	for (int i = 0; i < n; i++) {
		if (strncmp(words[i], "mode=", 5) == 0) {
			char *end;
			*mode = (unsigned)strtoul(words[i] + 5, &end, 8);
			if (!words[i][5] || *end)
				usage("bad mode %s", words[i]);
			have_mode = 1;
			continue;
		}
		*flags |= (int)parse_flags(words[i], oflag_names, "open");
	}
	if (!have_mode && ((*flags & O_CREAT) || (*flags & O_TMPFILE) == O_TMPFILE))
		*mode = 0644;
}

static long parse_num(const char *s, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (!*s || *end || errno)
		usage("bad %s %s", what, s);
	return v;
}

/* DIRSPEC -> dirfd. A failing dir:/file: open is a setup failure (exit 3). */
static int dirspec(const char *s)
{
	long fd;

	if (strcmp(s, "cwd") == 0)
		return AT_FDCWD;
	if (strcmp(s, "bad") == 0)
		return -5;
	if (strcmp(s, "closed") == 0) {
		syscall(SYS_close, 1000);
		return 1000;
	}
	if (strncmp(s, "fd:", 3) == 0)
		return (int)parse_num(s + 3, "fd");
	if (strncmp(s, "dir:", 4) == 0) {
		fd = syscall(SYS_openat, AT_FDCWD, s + 4, O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
		if (fd < 0)
			setup_fail(s);
		return (int)fd;
	}
	if (strncmp(s, "file:", 5) == 0) {
		struct stat st;
		fd = syscall(SYS_openat, AT_FDCWD, s + 5, O_RDONLY | O_CLOEXEC, 0);
		if (fd < 0)
			setup_fail(s);
		if (fstat((int)fd, &st) < 0)
			setup_fail(s);
		if (!S_ISREG(st.st_mode)) {
			errno = EINVAL;
			setup_fail("file: DIRSPEC is not a regular file");
		}
		return (int)fd;
	}
	usage("bad DIRSPEC %s", s);
}

/* ------------------------------------------------------------------ open family */

static void do_open_family(const char *cmd, int argc, char **argv)
{
	int flags;
	unsigned mode;

	if (strcmp(cmd, "open") == 0) {
		if (argc < 1)
			usage("open PATH [FLAG...]");
		parse_oflags(argc - 1, argv + 1, &flags, &mode);
		report_fd(syscall(SYS_open, argv[0], flags, mode));
	} else if (strcmp(cmd, "openat") == 0) {
		int dfd;
		if (argc < 2)
			usage("openat DIRSPEC PATH [FLAG...]");
		parse_oflags(argc - 2, argv + 2, &flags, &mode);
		dfd = dirspec(argv[0]);
		report_fd(syscall(SYS_openat, dfd, argv[1], flags, mode));
	} else if (strcmp(cmd, "openat2") == 0) {
		struct open_how how;
		int dfd;
		if (argc < 3)
			usage("openat2 DIRSPEC PATH RESOLVE [FLAG...]");
		parse_oflags(argc - 3, argv + 3, &flags, &mode);
		memset(&how, 0, sizeof(how));
		how.flags = (uint64_t)(unsigned)flags;
		how.mode = mode;
		how.resolve = parse_flags(argv[2], resolve_names, "resolve");
		dfd = dirspec(argv[0]);
		report_fd(syscall(SYS_openat2, dfd, argv[1], &how, sizeof(how)));
	} else { /* creat */
		if (argc != 1)
			usage("creat PATH");
		report_fd(syscall(SYS_creat, argv[0], 0644));
	}
}

/* ------------------------------------------------------------------ bad pointers */

static char *map_pages(size_t n)
{
	void *p = mmap(NULL, n * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		setup_fail("mmap");
	return p;
}

/* Two pages, the second PROT_NONE; returns the start of the first. */
static char *map_guarded(void)
{
	char *p = map_pages(2);
	if (mprotect(p + 4096, 4096, PROT_NONE) < 0)
		setup_fail("mprotect");
	return p;
}

static const char *bad_path(const char *kind)
{
	char *p;

	if (strcmp(kind, "null") == 0)
		return NULL;
	if (strcmp(kind, "unmapped") == 0) {
		p = map_pages(1);
		if (munmap(p, 4096) < 0)
			setup_fail("munmap");
		return p;
	}
	if (strcmp(kind, "cross") == 0) {
		p = map_guarded();
		memset(p + 4096 - 16, 'a', 16);
		return p + 4096 - 16;
	}
	if (strcmp(kind, "long") == 0) {
		p = map_pages(2);
		memset(p, 'a', PATH_MAX + 1);
		p[PATH_MAX + 1] = 0;
		return p;
	}
	if (strcmp(kind, "exactmax") == 0) {
		p = map_guarded();
		memset(p, 'a', 4096);
		return p;
	}
	if (strcmp(kind, "empty") == 0)
		return "";
	return (const char *)-1;
}

static long path_syscall(const char *sc, const char *p, int *known)
{
	*known = 1;
	if (strcmp(sc, "open") == 0)
		return syscall(SYS_open, p, O_RDONLY, 0);
	if (strcmp(sc, "openat") == 0)
		return syscall(SYS_openat, AT_FDCWD, p, O_RDONLY, 0);
	if (strcmp(sc, "openat2") == 0) {
		struct open_how how = { .flags = O_RDONLY };
		return syscall(SYS_openat2, AT_FDCWD, p, &how, sizeof(how));
	}
	if (strcmp(sc, "creat") == 0)
		return syscall(SYS_creat, p, 0644);
	if (strcmp(sc, "unlink") == 0)
		return syscall(SYS_unlink, p);
	if (strcmp(sc, "mkdir") == 0)
		return syscall(SYS_mkdir, p, 0755);
	if (strcmp(sc, "execve") == 0) {
		char *av[] = { "probe", NULL };
		return syscall(SYS_execve, p, av, environ);
	}
	if (strcmp(sc, "mknod") == 0)
		return syscall(SYS_mknod, p, S_IFIFO | 0644, 0);
	if (strcmp(sc, "setxattr") == 0)
		return syscall(SYS_setxattr, p, "user.probe", "v", 1, 0);
	*known = 0;
	return -1;
}

static void nonsense(const char *kind, const char *sc) __attribute__((noreturn));
static void nonsense(const char *kind, const char *sc)
{
	out("err EINVAL");
	usage("badptr: KIND %s makes no sense with SYSCALL %s", kind, sc);
}

static long raw_clone_exit_child(long nr, long a1, long a2, long a3, long a4, long a5);

static void do_badptr(int argc, char **argv)
{
	const char *kind, *sc, *p;
	long r;
	int known;

	if (argc != 2)
		usage("badptr KIND SYSCALL");
	kind = argv[0];
	sc = argv[1];

	p = bad_path(kind);
	if (p != (const char *)-1) {
		/* Files a successful call would leave behind can't happen: every path KIND fails. */
		r = path_syscall(sc, p, &known);
		if (!known)
			nonsense(kind, sc);
		if (r >= 0 && (strcmp(sc, "open") == 0 || strcmp(sc, "openat") == 0 ||
			       strcmp(sc, "openat2") == 0 || strcmp(sc, "creat") == 0))
			syscall(SYS_close, r);
		report(r);
		return;
	}

	if (strncmp(kind, "how", 3) == 0) {
		struct open_how how = { .flags = O_RDONLY };
		if (strcmp(sc, "openat2") != 0)
			nonsense(kind, sc);
		if (strcmp(kind, "howsmall") == 0) {
			r = syscall(SYS_openat2, AT_FDCWD, "/dev/null", &how, 8);
		} else if (strcmp(kind, "howbig") == 0) {
			char *big = map_pages(2);
			memcpy(big, &how, sizeof(how));
			r = syscall(SYS_openat2, AT_FDCWD, "/dev/null", big, 8192);
		} else if (strcmp(kind, "hownull") == 0) {
			r = syscall(SYS_openat2, AT_FDCWD, "/dev/null", NULL, sizeof(how));
		} else if (strcmp(kind, "howtail") == 0) {
			unsigned char buf[32];
			memset(buf, 0, sizeof(buf));
			memcpy(buf, &how, sizeof(how));
			buf[24] = 1;
			r = syscall(SYS_openat2, AT_FDCWD, "/dev/null", buf, sizeof(buf));
		} else {
			usage("unknown badptr KIND %s", kind);
		}
		if (r >= 0)
			syscall(SYS_close, r);
		report(r);
		return;
	}

	if (strncmp(kind, "cloneargs", 9) == 0) {
		if (strcmp(sc, "clone3") != 0)
			nonsense(kind, sc);
		if (strcmp(kind, "cloneargsnull") == 0) {
			r = raw_clone_exit_child(SYS_clone3, 0, sizeof(struct probe_clone_args), 0, 0, 0);
		} else if (strcmp(kind, "cloneargssmall") == 0) {
			struct probe_clone_args ca;
			memset(&ca, 0, sizeof(ca));
			ca.exit_signal = SIGCHLD;
			r = raw_clone_exit_child(SYS_clone3, (long)&ca, 8, 0, 0, 0);
		} else {
			usage("unknown badptr KIND %s", kind);
		}
		if (r > 0)
			waitpid((pid_t)r, NULL, __WALL);
		if (r < 0)
			out("err %s", errname((int)-r));
		else
			out("ok");
		return;
	}

	if (strncmp(kind, "addr", 4) == 0) {
		struct sockaddr_in sin;
		unsigned char big[200];
		int s;

		if (strcmp(sc, "connect") != 0)
			nonsense(kind, sc);
		s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0)
			setup_fail("socket");
		memset(&sin, 0, sizeof(sin));
		sin.sin_family = AF_INET;
		sin.sin_port = htons(9);
		sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (strcmp(kind, "addrnull") == 0) {
			r = syscall(SYS_connect, s, NULL, 16);
		} else if (strcmp(kind, "addrshort") == 0) {
			r = syscall(SYS_connect, s, &sin, 3);
		} else if (strcmp(kind, "addrlong") == 0) {
			memset(big, 0, sizeof(big));
			memcpy(big, &sin, sizeof(sin));
			r = syscall(SYS_connect, s, big, sizeof(big));
		} else {
			usage("unknown badptr KIND %s", kind);
		}
		report(r);
		close(s);
		return;
	}
	usage("unknown badptr KIND %s", kind);
}

/* ------------------------------------------------------------------ clone */

/*
 * Makes syscall nr (clone or clone3) and, in the child, calls exit(0) straight from the same
 * asm block, touching neither memory nor the stack: safe whatever the flags (CLONE_VM,
 * CLONE_THREAD, CLONE_SETTLS...). Returns the raw kernel result (-errno on failure).
 */
static long raw_clone_exit_child(long nr, long a1, long a2, long a3, long a4, long a5)
{
	long ret;
	register long r10 __asm__("r10") = a4;
	register long r8 __asm__("r8") = a5;

	__asm__ volatile("syscall\n\t"
			 "test %%rax, %%rax\n\t"
			 "jnz 1f\n\t"
			 "mov $60, %%eax\n\t" /* SYS_exit: only this task, even with CLONE_THREAD */
			 "xor %%edi, %%edi\n\t"
			 "syscall\n\t"
			 "ud2\n"
			 "1:"
			 : "=a"(ret)
			 : "0"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8)
			 : "rcx", "r11", "memory", "cc");
	return ret;
}

static void do_clone(int use_clone3, int argc, char **argv)
{
	unsigned long long flags;
	int pidfd = -1, ptid = 0, ctid = 0;
	char *stack = NULL;
	const size_t stack_size = 64 * 1024;
	long r;

	if (argc != 1)
		usage("%s FLAGS", use_clone3 ? "clone3" : "clone");
	flags = parse_flags(argv[0], clone_names, "clone");
	if (flags & CLONE_VM) {
		stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
		if (stack == MAP_FAILED)
			setup_fail("mmap stack");
	}
	if (use_clone3) {
		struct probe_clone_args ca;
		memset(&ca, 0, sizeof(ca));
		ca.flags = flags;
		ca.pidfd = (uint64_t)(uintptr_t)&pidfd;
		ca.parent_tid = (uint64_t)(uintptr_t)&ptid;
		ca.child_tid = (uint64_t)(uintptr_t)&ctid;
		ca.exit_signal = (flags & CLONE_THREAD) ? 0 : SIGCHLD;
		if (stack) {
			ca.stack = (uint64_t)(uintptr_t)stack;
			ca.stack_size = stack_size;
		}
		r = raw_clone_exit_child(SYS_clone3, (long)&ca, sizeof(ca), 0, 0, 0);
	} else {
		unsigned long f = (unsigned long)flags;
		if (!(flags & CLONE_THREAD))
			f |= SIGCHLD;
		/* x86_64: clone(flags, newsp, parent_tid, child_tid, tls); CLONE_PIDFD uses parent_tid */
		r = raw_clone_exit_child(SYS_clone, (long)f, stack ? (long)(stack + stack_size) : 0,
					 (flags & CLONE_PIDFD) ? (long)&pidfd : (long)&ptid,
					 (long)&ctid, 0);
	}
	if (r < 0) {
		out("err %s", errname((int)-r));
		return;
	}
	if (!(flags & (CLONE_THREAD | CLONE_PARENT))) {
		while (waitpid((pid_t)r, NULL, __WALL) < 0 && errno == EINTR)
			;
	} else {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL); /* let the thread/sibling go; nothing to wait for */
	}
	if ((flags & CLONE_PIDFD) && pidfd >= 0)
		close(pidfd);
	out("ok");
}

/* ------------------------------------------------------------------ misc syscalls */

static void do_mknod(int argc, char **argv)
{
	mode_t type;
	dev_t dev = 0;

	if (argc != 2 && argc != 4)
		usage("mknod PATH c|b|p [MAJOR MINOR]");
	if (strcmp(argv[1], "c") == 0)
		type = S_IFCHR;
	else if (strcmp(argv[1], "b") == 0)
		type = S_IFBLK;
	else if (strcmp(argv[1], "p") == 0)
		type = S_IFIFO;
	else
		usage("mknod type must be c, b or p");
	if (argc == 4)
		dev = makedev((unsigned)parse_num(argv[2], "major"), (unsigned)parse_num(argv[3], "minor"));
	else if (type != S_IFIFO)
		usage("mknod c|b needs MAJOR MINOR");
	report(syscall(SYS_mknod, argv[0], type | 0666, dev));
}

static void do_connect(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len;
	struct timeval tv = { 5, 0 };
	int s, family, nonblock = 0;

	if (argc >= 1 && strcmp(argv[0], "-n") == 0) {
		/* A non-blocking socket: the connect's own answer, then how the
		 * handshake ended (SO_ERROR once writable). */
		nonblock = 1;
		argc--;
		argv++;
	}
	memset(&ss, 0, sizeof(ss));
	if (argc >= 1 && strncmp(argv[0], "unix:", 5) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)&ss;
		const char *p = argv[0] + 5;
		size_t n = strlen(p);

		if (argc != 1)
			usage("connect unix:PATH");
		if (n == 0 || n >= sizeof(sun->sun_path))
			usage("bad unix socket path %s", p);
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, p, n);
		if (p[0] == '@')
			sun->sun_path[0] = 0; /* abstract: length without a trailing NUL */
		else
			n++;
		len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
		family = AF_UNIX;
	} else {
		char host[INET6_ADDRSTRLEN + 2];
		long port;
		size_t n;

		if (argc != 2)
			usage("connect [-n] HOST PORT");
		port = parse_num(argv[1], "port");
		if (port < 0 || port > 65535)
			usage("bad port %s", argv[1]);
		n = strlen(argv[0]);
		if (n >= sizeof(host))
			usage("bad host %s", argv[0]);
		memcpy(host, argv[0], n + 1);
		if (host[0] == '[' && n > 2 && host[n - 1] == ']') {
			memmove(host, host + 1, n - 2);
			host[n - 2] = 0;
		}
		if (inet_pton(AF_INET, host, &((struct sockaddr_in *)&ss)->sin_addr) == 1) {
			struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
			sin->sin_family = AF_INET;
			sin->sin_port = htons((uint16_t)port);
			len = sizeof(*sin);
			family = AF_INET;
		} else if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)&ss)->sin6_addr) == 1) {
			struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons((uint16_t)port);
			len = sizeof(*sin6);
			family = AF_INET6;
		} else {
			usage("bad host %s (an IPv4 or IPv6 address)", argv[0]);
		}
	}
	s = socket(family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	if (s < 0)
		setup_fail("socket");
	setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (nonblock) {
		long r = syscall(SYS_connect, s, &ss, len);
		int e = r < 0 ? errno : 0, soerr = 0;
		socklen_t sl = sizeof(soerr);
		struct pollfd pfd = { .fd = s, .events = POLLOUT };

		poll(&pfd, 1, 5000);
		getsockopt(s, SOL_SOCKET, SO_ERROR, &soerr, &sl);
		out("connect %s then %s", e ? errname(e) : "ok", soerr ? errname(soerr) : "ok");
	} else {
		report(syscall(SYS_connect, s, &ss, len));
	}
	close(s);
}

/* ------------------------------------------------------------------ threads, loop */

struct tctx {
	const char *path;
	int flags;
	unsigned mode;
	long iters;
	pthread_barrier_t barrier;
	atomic_long oks, errs;
	atomic_int first_err;
};

static void *thread_main(void *arg)
{
	struct tctx *c = arg;
	long ok = 0, bad = 0;

	pthread_barrier_wait(&c->barrier);
	for (long i = 0; i < c->iters; i++) {
		long fd = syscall(SYS_openat, AT_FDCWD, c->path, c->flags, c->mode);
		if (fd >= 0) {
			syscall(SYS_close, fd);
			ok++;
		} else {
			int expected = 0;
			atomic_compare_exchange_strong(&c->first_err, &expected, errno);
			bad++;
		}
	}
	atomic_fetch_add(&c->oks, ok);
	atomic_fetch_add(&c->errs, bad);
	return NULL;
}

static void do_threads(int argc, char **argv)
{
	struct tctx c;
	pthread_t *tids;
	long n;
	int e;

	if (argc < 3)
		usage("threads N ITERS PATH [FLAG...]");
	n = parse_num(argv[0], "thread count");
	if (n < 1 || n > 4096)
		usage("thread count must be 1..4096");
	memset(&c, 0, sizeof(c));
	c.iters = parse_num(argv[1], "iteration count");
	if (c.iters < 0)
		usage("iteration count must be >= 0");
	c.path = argv[2];
	parse_oflags(argc - 3, argv + 3, &c.flags, &c.mode);
	atomic_init(&c.oks, 0);
	atomic_init(&c.errs, 0);
	atomic_init(&c.first_err, 0);
	if ((e = pthread_barrier_init(&c.barrier, NULL, (unsigned)n)) != 0) {
		errno = e;
		setup_fail("pthread_barrier_init");
	}
	tids = calloc((size_t)n, sizeof(*tids));
	if (!tids)
		setup_fail("calloc");
	for (long i = 0; i < n; i++) {
		if ((e = pthread_create(&tids[i], NULL, thread_main, &c)) != 0) {
			errno = e;
			setup_fail("pthread_create");
		}
	}
	for (long i = 0; i < n; i++)
		pthread_join(tids[i], NULL);
	e = atomic_load(&c.first_err);
	out("ok %ld err %ld %s", atomic_load(&c.oks), atomic_load(&c.errs), e ? errname(e) : "-");
	free(tids);
}

static void do_loop(int argc, char **argv)
{
	long iters;

	int flags = O_RDONLY;

	if (argc != 2 && argc != 3)
		usage("loop ITERS PATH [FLAGS]");
	iters = parse_num(argv[0], "iteration count");
	if (argc == 3)
		flags = (int)parse_flags(argv[2], oflag_names, "open");
	for (long i = 0; i < iters; i++) {
		long fd = syscall(SYS_openat, AT_FDCWD, argv[1], flags, 0644);
		if (fd < 0) {
			out("err %s", errname(errno));
			return;
		}
		syscall(SYS_close, fd);
	}
	out("ok");
}

/* ------------------------------------------------------------------ signals, exit */

static atomic_int signals_seen;

static void on_usr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&signals_seen, 1);
}

static void do_restart(int argc, char **argv)
{
	struct sigaction sa;
	long fd;
	int e;

	if (argc != 1)
		usage("restart PATH");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		setup_fail("sigaction");
	fd = syscall(SYS_openat, AT_FDCWD, argv[0], O_RDONLY, 0);
	e = errno;
	if (fd >= 0) {
		syscall(SYS_close, fd);
		out("ok signals=%d", atomic_load(&signals_seen));
	} else {
		out("err %s signals=%d", errname(e), atomic_load(&signals_seen));
	}
}

static void *pending_thread(void *arg)
{
	long fd = syscall(SYS_openat, AT_FDCWD, (const char *)arg, O_RDONLY, 0);
	if (fd >= 0)
		syscall(SYS_close, fd);
	for (;;)
		pause();
	return NULL;
}

static void do_pending_exit(int argc, char **argv)
{
	pthread_t t;
	struct timespec ts = { 0, 50 * 1000 * 1000 };
	int e;

	if (argc != 1)
		usage("pending-exit PATH");
	if ((e = pthread_create(&t, NULL, pending_thread, argv[0])) != 0) {
		errno = e;
		setup_fail("pthread_create");
	}
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
	out("ok");
	syscall(SYS_exit_group, 0);
	__builtin_unreachable();
}

/* ------------------------------------------------------------------ ABIs */

static void do_i386(void)
{
	long ret;

	/* 32-bit getpid (nr 20). The kernel zeroes r8-r11 on the compat return path. */
	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "0"(20L)
			 : "r8", "r9", "r10", "r11", "memory", "cc");
	ret = (int)ret;
	if (ret < 0)
		out("err %s", errname((int)-ret));
	else
		out("ok %ld", ret);
}

static void do_x32(void)
{
	long r = syscall(X32_SYSCALL_BIT | SYS_getpid);
	if (r < 0)
		out("err %s", errname(errno));
	else
		out("ok %ld", r);
}

/* ------------------------------------------------------------------ main */

/*
 * Races for the binding tests. Both print one line per open that returned
 * the DENIED file's contents, as soon as it happens and with write(2):
 *   BYPASS
 * and at the end `ok opens=<successful opens> bypass=<n> failed=<n>`.
 * A watchee killed by vigil's binding prints no BYPASS line for the open
 * that was killed, because SIGKILL lands before the open returns.
 *
 *   probe flip ALLOWED DENIED ITERS THREADS
 *       ALLOWED and DENIED are paths of the same length; one thread keeps
 *       rewriting a shared buffer between them while THREADS threads each
 *       open the buffer ITERS times (SYS_openat) and read the first bytes.
 *   probe swap DIR ITERS THREADS
 *       DIR/name and DIR/other are swapped with renameat2(RENAME_EXCHANGE)
 *       in a loop (one is a regular file, the other a symlink to the denied
 *       file); THREADS threads open DIR/name ITERS times each.
 *   A file's contents starting with "DENIED" marks the denied file.
 */
static char flip_buf[PATH_MAX];
static const char *flip_a, *flip_b;
static const char *swap_name;
static atomic_int race_stop;
static atomic_long race_opens, race_bypass, race_failed;
static long race_iters;

static void race_open_once(const char *path)
{
	char b[16];
	long fd = syscall(SYS_openat, AT_FDCWD, path, O_RDONLY, 0);
	if (fd < 0) {
		atomic_fetch_add(&race_failed, 1);
		return;
	}
	atomic_fetch_add(&race_opens, 1);
	long n = syscall(SYS_read, fd, b, sizeof(b));
	if (n >= 6 && memcmp(b, "DENIED", 6) == 0) {
		atomic_fetch_add(&race_bypass, 1);
		syscall(SYS_write, 1, "BYPASS\n", 7);
	}
	syscall(SYS_close, fd);
}

static void *flip_writer(void *arg)
{
	size_t n = strlen(flip_a) + 1;
	(void)arg;
	/* The compiler barriers keep the first copy from being optimised away
	 * as a dead store. */
	while (!atomic_load(&race_stop)) {
		memcpy(flip_buf, flip_b, n);
		__asm__ volatile("" ::: "memory");
		memcpy(flip_buf, flip_a, n);
		__asm__ volatile("" ::: "memory");
	}
	return NULL;
}

static void *flip_opener(void *arg)
{
	(void)arg;
	for (long i = 0; i < race_iters; i++)
		race_open_once(flip_buf);
	return NULL;
}

static char swap_dir[PATH_MAX];

static void *swap_writer(void *arg)
{
	char a[PATH_MAX + 16], b[PATH_MAX + 16];
	(void)arg;
	snprintf(a, sizeof(a), "%s/name", swap_dir);
	snprintf(b, sizeof(b), "%s/other", swap_dir);
	while (!atomic_load(&race_stop))
		syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
	return NULL;
}

static void *swap_opener(void *arg)
{
	(void)arg;
	for (long i = 0; i < race_iters; i++)
		race_open_once(swap_name);
	return NULL;
}

static void do_race(int swap, int argc, char **argv)
{
	pthread_t w, th[256];
	long nthreads;

	if (!swap) {
		if (argc != 4)
			usage("flip ALLOWED DENIED ITERS THREADS");
		flip_a = argv[0];
		flip_b = argv[1];
		if (strlen(flip_a) != strlen(flip_b) || strlen(flip_a) >= sizeof(flip_buf))
			usage("flip: ALLOWED and DENIED must have the same length");
		memcpy(flip_buf, flip_a, strlen(flip_a) + 1);
		race_iters = atol(argv[2]);
		nthreads = atol(argv[3]);
	} else {
		static char name[PATH_MAX + 16];
		if (argc != 3)
			usage("swap DIR ITERS THREADS");
		snprintf(swap_dir, sizeof(swap_dir), "%s", argv[0]);
		snprintf(name, sizeof(name), "%s/name", swap_dir);
		swap_name = name;
		race_iters = atol(argv[1]);
		nthreads = atol(argv[2]);
	}
	if (nthreads < 1 || nthreads > 256 || race_iters < 0)
		usage("race: THREADS in 1..256, ITERS >= 0");
	if (pthread_create(&w, NULL, swap ? swap_writer : flip_writer, NULL))
		setup_fail("pthread_create");
	for (long i = 0; i < nthreads; i++)
		if (pthread_create(&th[i], NULL, swap ? swap_opener : flip_opener, NULL))
			setup_fail("pthread_create");
	for (long i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	atomic_store(&race_stop, 1);
	pthread_join(w, NULL);
	out("ok opens=%ld bypass=%ld failed=%ld", atomic_load(&race_opens), atomic_load(&race_bypass),
	    atomic_load(&race_failed));
}

/*
 *   probe sharedfd DIR ITERS THREADS
 *       the swap race, while a child process created with
 *       clone(CLONE_FILES) — another process sharing the descriptor table —
 *       keeps reading every descriptor 3..255 and prints BYPASS whenever
 *       one holds the denied file: a binding that kills the opener's
 *       thread group after the fact must not leave it to the child.
 */
static void sharedfd_child(int stopfd)
{
	char b[16];
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;) {
		char c;
		if (syscall(SYS_read, stopfd, &c, 1) >= 0 || errno != EAGAIN)
			_exit(0);
		for (int fd = 3; fd < 256; fd++) {
			if (fd == stopfd)
				continue;
			long n = syscall(SYS_pread64, fd, b, sizeof(b), 0);
			if (n >= 6 && memcmp(b, "DENIED", 6) == 0) {
				syscall(SYS_write, 1, "BYPASS\n", 7);
				_exit(0);
			}
		}
	}
}

static void do_sharedfd(int argc, char **argv)
{
	int p[2];
	if (argc != 3)
		usage("sharedfd DIR ITERS THREADS");
	if (pipe2(p, O_NONBLOCK))
		setup_fail("pipe2");
	long pid = syscall(SYS_clone, CLONE_FILES | SIGCHLD, 0, 0, 0, 0);
	if (pid < 0)
		setup_fail("clone(CLONE_FILES)");
	if (pid == 0)
		sharedfd_child(p[0]);
	do_race(1, argc, argv);
	syscall(SYS_write, p[1], "x", 1);
	waitpid(pid, NULL, 0);
}

/*
 *   probe uffdstall PATH
 *       one thread opens a path that lies on a userfaultfd-registered page
 *       nobody fills, so a supervisor reading it waits; meanwhile the main
 *       thread opens PATH (an ordinary file) 100 times. It prints
 *       "others done" when those finished while the first open was still
 *       stalled, or "others stalled" when they had not finished after 10 s;
 *       then it fills the page (the first open completes) and prints a
 *       summary line. Needs userfaultfd (vigil's hardening refuses it).
 */
#include <linux/userfaultfd.h>
#include <sys/ioctl.h>
static char *uffd_page;
static void *uffd_opener(void *arg)
{
	(void)arg;
	long fd = syscall(SYS_openat, AT_FDCWD, uffd_page, O_RDONLY, 0);
	if (fd >= 0)
		syscall(SYS_close, fd);
	return NULL;
}

struct others_arg {
	const char *path;
	atomic_int done;
};

static void *uffd_others(void *arg)
{
	struct others_arg *o = arg;
	for (int i = 0; i < 100; i++) {
		long fd = syscall(SYS_openat, AT_FDCWD, o->path, O_RDONLY, 0);
		if (fd >= 0)
			syscall(SYS_close, fd);
	}
	atomic_store(&o->done, 1);
	return NULL;
}

static void do_uffdstall(int argc, char **argv)
{
	if (argc != 1)
		usage("uffdstall PATH");
	long page = sysconf(_SC_PAGESIZE);
	int uffd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (uffd < 0) {
		report(-1);
		return;
	}
	struct uffdio_api api = {.api = UFFD_API};
	if (ioctl(uffd, UFFDIO_API, &api))
		setup_fail("UFFDIO_API");
	uffd_page = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (uffd_page == MAP_FAILED)
		setup_fail("mmap");
	struct uffdio_register reg = {.range = {.start = (unsigned long)uffd_page, .len = page},
				      .mode = UFFDIO_REGISTER_MODE_MISSING};
	if (ioctl(uffd, UFFDIO_REGISTER, &reg))
		setup_fail("UFFDIO_REGISTER");
	pthread_t stalled, others;
	struct others_arg o = {.path = argv[0]};
	if (pthread_create(&stalled, NULL, uffd_opener, NULL))
		setup_fail("pthread_create");
	/* Wait until the supervisor faults on the page. */
	struct pollfd pfd = {.fd = uffd, .events = POLLIN};
	if (poll(&pfd, 1, 10000) != 1) {
		out("no fault: nothing read the page");
		return;
	}
	if (pthread_create(&others, NULL, uffd_others, &o))
		setup_fail("pthread_create");
	int waited = 0;
	while (!atomic_load(&o.done) && waited < 10000) {
		usleep(10000);
		waited += 10;
	}
	out(atomic_load(&o.done) ? "others done" : "others stalled");
	/* Fill the page with "/" + NULs: the stalled open gets a valid path. */
	char *src = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	src[0] = '/';
	struct uffdio_copy copy = {.dst = (unsigned long)uffd_page, .src = (unsigned long)src, .len = page};
	ioctl(uffd, UFFDIO_COPY, &copy);
	pthread_join(stalled, NULL);
	pthread_join(others, NULL);
	out("ok");
}

/*
 * Races on other pointer arguments, for the binding tests. Each prints
 * BYPASS (write(2), at once) whenever the denied variant took effect, and a
 * summary line at the end.
 *   probe execflip ALLOWED DENIED ROUNDS
 *       ROUNDS children each flip a path buffer between ALLOWED and DENIED
 *       (same length) in a thread while execve'ing it with argv
 *       {path, "BYPASS"}: make DENIED a program that prints its arguments
 *       (a copy of echo) and ALLOWED one that prints nothing (true).
 *   probe connectflip ALLOWED_PORT DENIED_PORT ITERS THREADS
 *       a thread flips the port of a shared 127.0.0.1 sockaddr_in while
 *       THREADS threads connect(2) with it ITERS times each and send
 *       "BYPASS\n" on every connection that succeeded: the denied port's
 *       listener must never receive it.
 *   probe bindflip ALLOWED DENIED ITERS
 *       a thread flips the sun_path of a shared sockaddr_un between the
 *       socket paths ALLOWED and DENIED (same length) while the main thread
 *       binds ITERS AF_UNIX sockets with it; a socket whose name
 *       (getsockname) is DENIED prints BYPASS. Every bound name is
 *       unlinked again.
 *   probe tmpflip ALLOWED DENIED ITERS
 *       a thread flips a path buffer between the directories ALLOWED and
 *       DENIED (same length) while the main thread makes ITERS O_TMPFILE
 *       files with it; a file made in DENIED (its /proc/self/fd link)
 *       prints BYPASS.
 *   probe cloneflip ROUNDS
 *       a thread flips clone_args.flags between 0 and CLONE_NEWUSER while
 *       the main thread clone3()s ROUNDS children; a child that finds
 *       itself in a new user namespace prints BYPASS.
 */
static void *execflip_writer(void *arg)
{
	(void)arg;
	size_t n = strlen(flip_a) + 1;
	for (;;) {
		memcpy(flip_buf, flip_b, n);
		__asm__ volatile("" ::: "memory");
		memcpy(flip_buf, flip_a, n);
		__asm__ volatile("" ::: "memory");
	}
	return NULL;
}

static void do_execflip(int argc, char **argv)
{
	long rounds;
	if (argc != 3)
		usage("execflip ALLOWED DENIED ROUNDS");
	flip_a = argv[0];
	flip_b = argv[1];
	if (strlen(flip_a) != strlen(flip_b) || strlen(flip_a) >= sizeof(flip_buf))
		usage("execflip: ALLOWED and DENIED must have the same length");
	rounds = atol(argv[2]);
	for (long i = 0; i < rounds; i++) {
		pid_t pid = fork();
		if (pid < 0)
			setup_fail("fork");
		if (pid == 0) {
			pthread_t w;
			char *args[3];
			memcpy(flip_buf, flip_a, strlen(flip_a) + 1);
			if (pthread_create(&w, NULL, execflip_writer, NULL))
				_exit(3);
			args[0] = flip_buf;
			args[1] = "BYPASS";
			args[2] = NULL;
			for (int k = 0; k < 1000; k++)
				syscall(SYS_execve, flip_buf, args, environ);
			_exit(1);
		}
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	out("ok rounds=%ld", rounds);
}

static struct sockaddr_in cflip_addr;
static unsigned short cflip_a, cflip_b;
static atomic_long cflip_connects;

static void *connectflip_writer(void *arg)
{
	(void)arg;
	/* volatile: the first store of each pair is otherwise dead to the
	 * compiler, and the race would never happen. */
	volatile unsigned short *port = &cflip_addr.sin_port;
	while (!atomic_load(&race_stop)) {
		*port = htons(cflip_b);
		*port = htons(cflip_a);
	}
	return NULL;
}

static void *connectflip_worker(void *arg)
{
	(void)arg;
	for (long i = 0; i < race_iters; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		if (syscall(SYS_connect, fd, &cflip_addr, sizeof(cflip_addr)) == 0) {
			atomic_fetch_add(&cflip_connects, 1);
			(void)!write(fd, "BYPASS\n", 7);
		}
		close(fd);
	}
	return NULL;
}

static void do_connectflip(int argc, char **argv)
{
	pthread_t w, th[64];
	long n;
	if (argc != 4)
		usage("connectflip ALLOWED_PORT DENIED_PORT ITERS THREADS");
	cflip_a = (unsigned short)atoi(argv[0]);
	cflip_b = (unsigned short)atoi(argv[1]);
	race_iters = atol(argv[2]);
	n = atol(argv[3]);
	if (n < 1 || n > 64)
		usage("connectflip: THREADS in 1..64");
	cflip_addr.sin_family = AF_INET;
	cflip_addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cflip_addr.sin_port = htons(cflip_a);
	if (pthread_create(&w, NULL, connectflip_writer, NULL))
		setup_fail("pthread_create");
	for (long i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, connectflip_worker, NULL))
			setup_fail("pthread_create");
	for (long i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	atomic_store(&race_stop, 1);
	pthread_join(w, NULL);
	out("ok connects=%ld", atomic_load(&cflip_connects));
}

static struct probe_clone_args cloneflip_args;

static void do_tmpflip(int argc, char **argv)
{
	pthread_t w;
	long iters, made = 0;
	size_t dl;
	if (argc != 3)
		usage("tmpflip ALLOWED DENIED ITERS");
	flip_a = argv[0];
	flip_b = argv[1];
	if (strlen(flip_a) != strlen(flip_b) || strlen(flip_a) >= sizeof(flip_buf))
		usage("tmpflip: ALLOWED and DENIED must have the same length");
	dl = strlen(flip_b);
	iters = atol(argv[2]);
	memcpy(flip_buf, flip_a, strlen(flip_a) + 1);
	if (pthread_create(&w, NULL, execflip_writer, NULL))
		setup_fail("pthread_create");
	for (long i = 0; i < iters; i++) {
		char link[64], target[PATH_MAX];
		ssize_t n;
		int fd = (int)syscall(SYS_openat, AT_FDCWD, flip_buf, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd < 0)
			continue;
		made++;
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = 0;
			if (!strncmp(target, flip_b, dl) && target[dl] == '/')
				out("BYPASS");
		}
		close(fd);
	}
	out("ok made=%ld", made);
	exit(0);
}

static struct sockaddr_un bflip_addr;
static char bflip_a[sizeof(bflip_addr.sun_path)], bflip_b[sizeof(bflip_addr.sun_path)];

static void *bindflip_writer(void *arg)
{
	(void)arg;
	size_t n = strlen(bflip_a) + 1;
	/* volatile stores: see connectflip_writer. */
	volatile char *p = bflip_addr.sun_path;
	while (!atomic_load(&race_stop)) {
		for (size_t i = 0; i < n; i++)
			p[i] = bflip_b[i];
		for (size_t i = 0; i < n; i++)
			p[i] = bflip_a[i];
	}
	return NULL;
}

static void do_bindflip(int argc, char **argv)
{
	pthread_t w;
	long iters, binds = 0;
	if (argc != 3)
		usage("bindflip ALLOWED DENIED ITERS");
	if (strlen(argv[0]) != strlen(argv[1]) || strlen(argv[0]) >= sizeof(bflip_a))
		usage("bindflip: ALLOWED and DENIED must have the same length, under 108 bytes");
	strcpy(bflip_a, argv[0]);
	strcpy(bflip_b, argv[1]);
	iters = atol(argv[2]);
	bflip_addr.sun_family = AF_UNIX;
	strcpy(bflip_addr.sun_path, bflip_a);
	if (pthread_create(&w, NULL, bindflip_writer, NULL))
		setup_fail("pthread_create");
	for (long i = 0; i < iters; i++) {
		struct sockaddr_un got;
		socklen_t len = sizeof(got);
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			setup_fail("socket");
		if (syscall(SYS_bind, fd, &bflip_addr, sizeof(bflip_addr)) == 0) {
			binds++;
			memset(&got, 0, sizeof(got));
			if (getsockname(fd, (struct sockaddr *)&got, &len) == 0) {
				if (!strcmp(got.sun_path, bflip_b))
					out("BYPASS");
				unlink(got.sun_path);
			}
		}
		close(fd);
	}
	atomic_store(&race_stop, 1);
	pthread_join(w, NULL);
	out("ok binds=%ld", binds);
}

static void *cloneflip_writer(void *arg)
{
	(void)arg;
	volatile uint64_t *flags = &cloneflip_args.flags;
	while (!atomic_load(&race_stop)) {
		*flags = CLONE_NEWUSER;
		*flags = 0;
	}
	return NULL;
}

static void do_cloneflip(int argc, char **argv)
{
	pthread_t w;
	long rounds, clones = 0;
	char mine[64] = "", theirs[64];
	if (argc != 1)
		usage("cloneflip ROUNDS");
	rounds = atol(argv[0]);
	if (readlink("/proc/self/ns/user", mine, sizeof(mine) - 1) < 0)
		setup_fail("readlink /proc/self/ns/user");
	memset(&cloneflip_args, 0, sizeof(cloneflip_args));
	cloneflip_args.exit_signal = SIGCHLD;
	if (pthread_create(&w, NULL, cloneflip_writer, NULL))
		setup_fail("pthread_create");
	for (long i = 0; i < rounds; i++) {
		long r = syscall(SYS_clone3, &cloneflip_args, sizeof(cloneflip_args));
		if (r == 0) {
			ssize_t k = readlink("/proc/self/ns/user", theirs, sizeof(theirs) - 1);
			if (k >= 0) {
				theirs[k] = 0;
				if (strcmp(theirs, mine) != 0)
					syscall(SYS_write, 1, "BYPASS\n", 7);
			}
			syscall(SYS_exit_group, 0);
		}
		if (r > 0) {
			clones++;
			while (waitpid((pid_t)r, NULL, 0) < 0 && errno == EINTR)
				;
		}
	}
	atomic_store(&race_stop, 1);
	pthread_join(w, NULL);
	out("ok clones=%ld", clones);
}

/*
 *   probe remap ALLOWED DENIED ITERS THREADS
 *       like flip, but the page holding the path is pulled from under the
 *       opener: a thread cycles MAP_FIXED fresh page + ALLOWED, then
 *       MADV_DONTNEED (the page reads as zeros), then DENIED, then munmap
 *       (unreadable), while THREADS threads open the path ITERS times each.
 *       Opens that fault or see an empty path simply fail.
 */
static char *remap_page;

static void *remap_writer(void *arg)
{
	size_t n = strlen(flip_a) + 1;
	(void)arg;
	while (!atomic_load(&race_stop)) {
		if (mmap(remap_page, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == MAP_FAILED)
			continue;
		memcpy(remap_page, flip_a, n);
		__asm__ volatile("" ::: "memory");
		madvise(remap_page, 4096, MADV_DONTNEED);
		__asm__ volatile("" ::: "memory");
		memcpy(remap_page, flip_b, n);
		__asm__ volatile("" ::: "memory");
		munmap(remap_page, 4096);
	}
	return NULL;
}

static void *remap_opener(void *arg)
{
	(void)arg;
	for (long i = 0; i < race_iters; i++)
		race_open_once(remap_page);
	return NULL;
}

static void do_remap(int argc, char **argv)
{
	pthread_t w, th[64];
	long n;
	if (argc != 4)
		usage("remap ALLOWED DENIED ITERS THREADS");
	flip_a = argv[0];
	flip_b = argv[1];
	if (strlen(flip_a) != strlen(flip_b) || strlen(flip_a) >= 4096)
		usage("remap: ALLOWED and DENIED must have the same length");
	race_iters = atol(argv[2]);
	n = atol(argv[3]);
	if (n < 1 || n > 64)
		usage("remap: THREADS in 1..64");
	remap_page = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (remap_page == MAP_FAILED)
		setup_fail("mmap");
	memcpy(remap_page, flip_a, strlen(flip_a) + 1);
	if (pthread_create(&w, NULL, remap_writer, NULL))
		setup_fail("pthread_create");
	for (long i = 0; i < n; i++)
		if (pthread_create(&th[i], NULL, remap_opener, NULL))
			setup_fail("pthread_create");
	for (long i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	atomic_store(&race_stop, 1);
	pthread_join(w, NULL);
	out("ok opens=%ld bypass=%ld failed=%ld", atomic_load(&race_opens), atomic_load(&race_bypass),
	    atomic_load(&race_failed));
}

/*
 *   probe unlinkswap DIR N
 *       DIR/work (a directory) and DIR/link (a symlink to a protected
 *       directory) are swapped with RENAME_EXCHANGE in a thread while the
 *       main thread unlinks DIR/work/v0 .. v<N-1>. The caller counts what
 *       disappeared from the protected directory. Prints `ok unlinked=<n>`.
 */
static void *unlinkswap_writer(void *arg)
{
	char a[PATH_MAX + 16], b[PATH_MAX + 16];
	(void)arg;
	snprintf(a, sizeof(a), "%s/work", swap_dir);
	snprintf(b, sizeof(b), "%s/link", swap_dir);
	while (!atomic_load(&race_stop))
		syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
	return NULL;
}

/*
 *   probe pathswap OP DIR N       the same swap, with OP on DIR/work/v<i>: unlink, mkdir
 *                                 (creates d<i>), rename (v<i> -> r<i>) or write
 *                                 (open O_WRONLY|O_APPEND and write "X")
 */
static void do_pathswap(const char *op, int argc, char **argv)
{
	pthread_t w;
	long n, done = 0;
	char p[PATH_MAX + 32], q[PATH_MAX + 32];
	if (argc != 2)
		usage("pathswap OP DIR N");
	snprintf(swap_dir, sizeof(swap_dir), "%s", argv[0]);
	n = atol(argv[1]);
	if (pthread_create(&w, NULL, unlinkswap_writer, NULL))
		setup_fail("pthread_create");
	for (long i = 0; i < n; i++) {
		long r = -1;
		snprintf(p, sizeof(p), "%s/work/v%ld", swap_dir, i);
		if (!strcmp(op, "unlink")) {
			r = syscall(SYS_unlink, p);
		} else if (!strcmp(op, "mkdir")) {
			snprintf(q, sizeof(q), "%s/work/d%ld", swap_dir, i);
			r = syscall(SYS_mkdir, q, 0755);
		} else if (!strcmp(op, "rename")) {
			snprintf(q, sizeof(q), "%s/work/r%ld", swap_dir, i);
			r = syscall(SYS_rename, p, q);
		} else if (!strcmp(op, "write")) {
			long fd = syscall(SYS_openat, AT_FDCWD, p, O_WRONLY | O_APPEND, 0);
			if (fd >= 0) {
				r = syscall(SYS_write, fd, "X", 1);
				syscall(SYS_close, fd);
			}
		} else {
			usage("pathswap: OP is unlink, mkdir, rename or write");
		}
		if (r >= 0)
			done++;
	}
	atomic_store(&race_stop, 1);
	pthread_join(w, NULL);
	out("ok done=%ld", done);
}

static void do_unlinkswap(int argc, char **argv)
{
	do_pathswap("unlink", argc, argv);
}

/*
 *   probe excl PATH ROUNDS        two threads race open(PATH, O_WRONLY|O_CREAT|O_EXCL)
 *                                 ROUNDS times (PATH is unlinked between rounds); prints
 *                                 `ok rounds=R both=<rounds where both won> none=<neither>`
 *   probe emfile PATH LIMIT       sets RLIMIT_NOFILE to LIMIT and opens PATH O_WRONLY|O_APPEND
 *                                 until it fails: `ok opened=<n> err <ERRNO>`
 *   probe cloexec PATH            opens PATH O_WRONLY|O_CLOEXEC and prints `ok cloexec=<0|1>`
 *                                 from fcntl(F_GETFD), then the same without O_CLOEXEC
 */
static const char *excl_path;
static pthread_barrier_t excl_barrier;
static atomic_int excl_wins;

static void *excl_thread(void *arg)
{
	(void)arg;
	pthread_barrier_wait(&excl_barrier);
	long fd = syscall(SYS_openat, AT_FDCWD, excl_path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd >= 0) {
		atomic_fetch_add(&excl_wins, 1);
		syscall(SYS_close, fd);
	}
	return NULL;
}

static void do_excl(int argc, char **argv)
{
	long rounds, both = 0, none = 0;
	if (argc != 2)
		usage("excl PATH ROUNDS");
	excl_path = argv[0];
	rounds = atol(argv[1]);
	for (long r = 0; r < rounds; r++) {
		pthread_t a, b;
		syscall(SYS_unlink, excl_path);
		atomic_store(&excl_wins, 0);
		pthread_barrier_init(&excl_barrier, NULL, 2);
		if (pthread_create(&a, NULL, excl_thread, NULL) || pthread_create(&b, NULL, excl_thread, NULL))
			setup_fail("pthread_create");
		pthread_join(a, NULL);
		pthread_join(b, NULL);
		pthread_barrier_destroy(&excl_barrier);
		int w = atomic_load(&excl_wins);
		if (w == 2)
			both++;
		if (w == 0)
			none++;
	}
	out("ok rounds=%ld both=%ld none=%ld", rounds, both, none);
}

static void do_emfile(int argc, char **argv)
{
	struct rlimit rl;
	long n = 0;
	if (argc != 2)
		usage("emfile PATH LIMIT");
	rl.rlim_cur = rl.rlim_max = (rlim_t)atol(argv[1]);
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		setup_fail("setrlimit");
	for (;;) {
		long fd = syscall(SYS_openat, AT_FDCWD, argv[0], O_WRONLY | O_APPEND, 0);
		if (fd < 0) {
			out("ok opened=%ld err %s", n, errname(errno));
			return;
		}
		n++;
	}
}

static void do_cloexec(int argc, char **argv)
{
	if (argc != 1)
		usage("cloexec PATH");
	for (int with = 1; with >= 0; with--) {
		long fd = syscall(SYS_openat, AT_FDCWD, argv[0], O_WRONLY | (with ? O_CLOEXEC : 0), 0);
		if (fd < 0) {
			out("err %s", errname(errno));
			continue;
		}
		int f = fcntl((int)fd, F_GETFD);
		out("ok cloexec=%d", (f & FD_CLOEXEC) ? 1 : 0);
		syscall(SYS_close, fd);
	}
}

/* ------------------------------------------------------------------ hardening */

/*
 * probe hardened NAME: makes syscall NAME with arguments that change nothing (a bad fd, an
 * unknown module, zero-length vectors, invalid flags) and prints its result line. Bare, the
 * kernel answers with its own error (or ok); vigil's hardening refuses with EPERM first.
 */
static void do_hardened(int argc, char **argv)
{
	struct iovec l = { 0 }, r = { 0 };
	unsigned char attr[128] = { 0 };
	const char *n;
	long ret;

	if (argc != 1)
		usage("hardened NAME");
	n = argv[0];
	if (!strcmp(n, "bpf")) {
		/* BPF_PROG_GET_NEXT_ID (11) past every id. */
		memset(attr, 0xff, 4);
		ret = syscall(SYS_bpf, 11, attr, sizeof(attr));
	} else if (!strcmp(n, "init_module"))
		ret = syscall(SYS_init_module, NULL, 0, "");
	else if (!strcmp(n, "finit_module"))
		ret = syscall(SYS_finit_module, -1, "", 0);
	else if (!strcmp(n, "delete_module"))
		ret = syscall(SYS_delete_module, "vigil_probe_no_such_module", O_NONBLOCK);
	else if (!strcmp(n, "kexec_load"))
		ret = syscall(SYS_kexec_load, 0, 0, NULL, 0xffff0000UL);
	else if (!strcmp(n, "kexec_file_load"))
		ret = syscall(SYS_kexec_file_load, -1, -1, 0, NULL, 0x80000000UL);
	else if (!strcmp(n, "pidfd_getfd"))
		ret = syscall(SYS_pidfd_getfd, -1, 0, 0);
	else if (!strcmp(n, "process_vm_writev"))
		ret = syscall(SYS_process_vm_writev, getpid(), &l, 1, &r, 1, 0);
	else if (!strcmp(n, "userfaultfd")) {
		ret = syscall(SYS_userfaultfd, O_CLOEXEC);
		if (ret >= 0)
			close((int)ret);
	} else if (!strcmp(n, "fanotify_init"))
		ret = syscall(SYS_fanotify_init, 0xffffffffUL, 0);
	else if (!strcmp(n, "iopl"))
		ret = syscall(SYS_iopl, 4);
	else if (!strcmp(n, "ioperm"))
		ret = syscall(SYS_ioperm, 0x10000UL, 1, 0);
	else
		usage("hardened: unknown NAME %s", n);
	report(ret);
}

/* ------------------------------------------------------------------ fidelity */

#ifndef SYS_fchmodat2
#define SYS_fchmodat2 452
#endif

static void labelled(const char *label, long r)
{
	if (r < 0)
		out("%s err %s", label, errname(errno));
	else
		out("%s ok", label);
}

/* Clears one capability from the effective set (raw capget/capset, v3). */
static void drop_effective_cap(int cap)
{
	struct {
		uint32_t version;
		int pid;
	} hdr = { 0x20080522, 0 };
	struct {
		uint32_t effective, permitted, inheritable;
	} data[2];

	if (syscall(SYS_capget, &hdr, data) || (data[cap / 32].effective &= ~(1u << (cap % 32)), 0) ||
	    syscall(SYS_capset, &hdr, data)) {
		fprintf(stderr, "probe: dropping capability %d: %s\n", cap, strerror(errno));
		exit(3);
	}
}

/*
 * probe fidelity DIR [nocap]: the flag and argument checks of the path calls vigil emulates,
 * made in the kernel's order (junk flags with bad pointers or missing paths, flag combinations,
 * AT_EMPTY_PATH forms, O_TMPFILE links), one `LABEL ok|err ERRNO` line each. With nocap,
 * CAP_DAC_READ_SEARCH is first dropped from the effective set, so linkat(fd, "", ...,
 * AT_EMPTY_PATH) depends on whether the fd was opened with the caller's credentials.
 */
static void do_fidelity(int argc, char **argv)
{
	char p[PATH_MAX], q[PATH_MAX];
	const char *d;
	char *const eargv[] = { "probe", NULL };
	const char *bad = (const char *)1;
	long dfd, ffd, tfd, xfd;
	pid_t pid;

	if (argc < 1 || argc > 2 || (argc == 2 && strcmp(argv[1], "nocap")))
		usage("fidelity DIR [nocap]");
	d = argv[0];
	if (argc == 2)
		drop_effective_cap(2 /* CAP_DAC_READ_SEARCH */);
#define P(...) (snprintf(p, sizeof(p), __VA_ARGS__), p)
#define Q(...) (snprintf(q, sizeof(q), __VA_ARGS__), q)
	dfd = syscall(SYS_openat, AT_FDCWD, d, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	ffd = syscall(SYS_openat, AT_FDCWD, P("%s/f", d), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (dfd < 0 || ffd < 0 || syscall(SYS_symlinkat, "f", AT_FDCWD, P("%s/s", d)) < 0) {
		fprintf(stderr, "probe: fidelity setup in %s: %s\n", d, strerror(errno));
		exit(3);
	}

	labelled("linkat-junk", syscall(SYS_linkat, AT_FDCWD, P("%s/f", d), AT_FDCWD, Q("%s/l1", d), 0x8000));
	labelled("linkat-junk-badptr", syscall(SYS_linkat, AT_FDCWD, bad, AT_FDCWD, Q("%s/l2", d), 0x8000));
	labelled("linkat-nofollow-missing",
		 syscall(SYS_linkat, AT_FDCWD, P("%s/missing", d), AT_FDCWD, Q("%s/l3", d), AT_SYMLINK_NOFOLLOW));
	labelled("linkat", syscall(SYS_linkat, AT_FDCWD, P("%s/f", d), AT_FDCWD, Q("%s/l4", d), 0));
	labelled("linkat-exists", syscall(SYS_linkat, AT_FDCWD, P("%s/f", d), AT_FDCWD, Q("%s/l4", d), 0));
	labelled("linkat-follow", syscall(SYS_linkat, AT_FDCWD, P("%s/s", d), AT_FDCWD, Q("%s/l5", d), AT_SYMLINK_FOLLOW));
	labelled("linkat-emptypath-named", syscall(SYS_linkat, dfd, "f", AT_FDCWD, Q("%s/l6", d), AT_EMPTY_PATH));
	labelled("linkat-empty-noflag", syscall(SYS_linkat, ffd, "", AT_FDCWD, Q("%s/l7", d), 0));
	labelled("linkat-emptypath-fd", syscall(SYS_linkat, ffd, "", AT_FDCWD, Q("%s/l8", d), AT_EMPTY_PATH));
	tfd = syscall(SYS_openat, AT_FDCWD, d, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	labelled("linkat-tmpfile", tfd < 0 ? tfd : syscall(SYS_linkat, tfd, "", AT_FDCWD, Q("%s/t1", d), AT_EMPTY_PATH));
	xfd = syscall(SYS_openat, AT_FDCWD, d, O_TMPFILE | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	labelled("linkat-tmpfile-excl", xfd < 0 ? xfd : syscall(SYS_linkat, xfd, "", AT_FDCWD, Q("%s/t2", d), AT_EMPTY_PATH));
	if (tfd >= 0)
		syscall(SYS_close, tfd);
	tfd = syscall(SYS_openat, AT_FDCWD, d, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600);
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		/* A child has its own struct cred: the fd was opened with its parent's. */
		labelled("linkat-tmpfile-inherited",
			 tfd < 0 ? tfd : syscall(SYS_linkat, tfd, "", AT_FDCWD, Q("%s/t3", d), AT_EMPTY_PATH));
		_exit(0);
	}
	if (pid > 0)
		waitpid(pid, NULL, 0);

	labelled("renameat2-junk", syscall(SYS_renameat2, AT_FDCWD, P("%s/missing", d), AT_FDCWD, Q("%s/x", d), 1 << 5));
	labelled("renameat2-junk-badptr", syscall(SYS_renameat2, AT_FDCWD, bad, AT_FDCWD, Q("%s/x", d), 0x80));
	labelled("renameat2-exchange-noreplace", syscall(SYS_renameat2, AT_FDCWD, P("%s/l4", d), AT_FDCWD,
							Q("%s/l6", d), RENAME_EXCHANGE | RENAME_NOREPLACE));
	labelled("renameat2-exchange-missing", syscall(SYS_renameat2, AT_FDCWD, P("%s/l4", d), AT_FDCWD,
						      Q("%s/missing", d), RENAME_EXCHANGE));
	labelled("renameat2-noreplace", syscall(SYS_renameat2, AT_FDCWD, P("%s/l4", d), AT_FDCWD, Q("%s/r5", d), RENAME_NOREPLACE));
	labelled("renameat2-noreplace-exists", syscall(SYS_renameat2, AT_FDCWD, P("%s/r5", d), AT_FDCWD, Q("%s/l6", d), RENAME_NOREPLACE));
	labelled("renameat2-whiteout", syscall(SYS_renameat2, AT_FDCWD, P("%s/r5", d), AT_FDCWD, Q("%s/r7", d), RENAME_WHITEOUT));

	labelled("unlinkat-junk-badptr", syscall(SYS_unlinkat, AT_FDCWD, bad, 0x1));
	labelled("unlinkat-junk-missing", syscall(SYS_unlinkat, AT_FDCWD, P("%s/missing", d), AT_REMOVEDIR | AT_SYMLINK_NOFOLLOW));
	labelled("unlinkat", syscall(SYS_unlinkat, AT_FDCWD, P("%s/r7", d), 0));

	labelled("fchownat-junk-badptr", syscall(SYS_fchownat, AT_FDCWD, bad, 0, 0, 0x1));
	labelled("fchownat-junk-missing", syscall(SYS_fchownat, AT_FDCWD, P("%s/missing", d), -1, -1, AT_REMOVEDIR));
	labelled("fchownat-emptypath", syscall(SYS_fchownat, ffd, "", -1, -1, AT_EMPTY_PATH));
	labelled("fchownat-nofollow", syscall(SYS_fchownat, AT_FDCWD, P("%s/s", d), -1, -1, AT_SYMLINK_NOFOLLOW));
	labelled("fchownat-empty-noflag", syscall(SYS_fchownat, ffd, "", -1, -1, 0));

	labelled("fchmodat2-junk-badptr", syscall(SYS_fchmodat2, AT_FDCWD, bad, 0644, 0x1));
	labelled("fchmodat2-junk-missing", syscall(SYS_fchmodat2, AT_FDCWD, P("%s/missing", d), 0644, AT_REMOVEDIR));
	labelled("fchmodat2-nofollow-symlink", syscall(SYS_fchmodat2, AT_FDCWD, P("%s/s", d), 0644, AT_SYMLINK_NOFOLLOW));
	labelled("fchmodat2-emptypath", syscall(SYS_fchmodat2, ffd, "", 0600, AT_EMPTY_PATH));

	labelled("truncate-negative-badptr", syscall(SYS_truncate, bad, -1L));
	labelled("truncate-negative-missing", syscall(SYS_truncate, P("%s/missing", d), -1L));

	labelled("mkdirat-allbits", syscall(SYS_mkdirat, AT_FDCWD, P("%s/k", d), 0xffffffffUL));
	labelled("mknodat-badtype-missing", syscall(SYS_mknodat, AT_FDCWD, P("%s/missing/x", d), 0xf000 | 0644, 0));

	labelled("setxattr-junk-badptr", syscall(SYS_setxattr, bad, "user.v", "v", 1, 0x10));
	labelled("setxattr-junk-missing", syscall(SYS_setxattr, P("%s/missing", d), "user.v", "v", 1, 0x10));
	labelled("setxattr-badname-missing", syscall(SYS_setxattr, P("%s/missing", d), bad, "v", 1, 0));
	labelled("setxattr-badvalue-missing", syscall(SYS_setxattr, P("%s/missing", d), "user.v", bad, 1, 0));
	labelled("setxattr-bigsize-missing", syscall(SYS_setxattr, P("%s/missing", d), "user.v", "v", 65537, 0));
	labelled("lsetxattr-badvalue-badptr", syscall(SYS_lsetxattr, bad, "user.v", bad, 1, 0));
	labelled("fsetxattr-badname-badfd", syscall(SYS_fsetxattr, -1, bad, "v", 1, 0));
	labelled("setxattr", syscall(SYS_setxattr, P("%s/f", d), "user.v", "v", 1, 0));
	labelled("removexattr-badname-missing", syscall(SYS_removexattr, P("%s/missing", d), bad));
	labelled("removexattr-emptyname-missing", syscall(SYS_removexattr, P("%s/missing", d), ""));
	labelled("removexattr-badptr", syscall(SYS_removexattr, bad, "user.v"));
	labelled("removexattr-absent", syscall(SYS_removexattr, P("%s/f", d), "user.absent"));
	labelled("lremovexattr-symlink", syscall(SYS_lremovexattr, P("%s/s", d), "user.v"));
	labelled("fremovexattr-badname-badfd", syscall(SYS_fremovexattr, -1, bad));
	labelled("fremovexattr-badfd", syscall(SYS_fremovexattr, -1, "user.v"));
	labelled("removexattr-through-symlink", syscall(SYS_removexattr, P("%s/s", d), "user.v"));
	labelled("removexattr-again", syscall(SYS_removexattr, P("%s/f", d), "user.v"));
	labelled("fsetxattr", syscall(SYS_fsetxattr, ffd, "user.w", "w", 1, 0));
	labelled("fremovexattr", syscall(SYS_fremovexattr, ffd, "user.w"));

	labelled("execveat-junk-missing", syscall(SYS_execveat, AT_FDCWD, P("%s/missing", d), eargv, environ, 0x1));
	labelled("execveat-junk-badptr", syscall(SYS_execveat, AT_FDCWD, bad, eargv, environ, 0x1));
	labelled("execveat-empty-noflag", syscall(SYS_execveat, ffd, "", eargv, environ, 0));
	labelled("execveat-empty-junk", syscall(SYS_execveat, AT_FDCWD, "", eargv, environ, 0x1));
	labelled("execveat-noexec", syscall(SYS_execveat, AT_FDCWD, P("%s/f", d), eargv, environ, AT_SYMLINK_NOFOLLOW));
#undef P
#undef Q
}

/* ------------------------------------------------------------------ sends */

#ifndef MSG_FASTOPEN
#define MSG_FASTOPEN 0x20000000
#endif

/* Fills ss with HOST PORT (IPv4 or IPv6) or unix:PATH / unix:@NAME; returns the length. */
static socklen_t parse_dest(const char *host, const char *port, struct sockaddr_storage *ss, int *family)
{
	memset(ss, 0, sizeof(*ss));
	if (strncmp(host, "unix:", 5) == 0) {
		struct sockaddr_un *sun = (struct sockaddr_un *)ss;
		const char *p = host + 5;
		size_t n = strlen(p);

		if (n == 0 || n >= sizeof(sun->sun_path))
			usage("bad unix socket path %s", p);
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, p, n);
		if (p[0] == '@')
			sun->sun_path[0] = 0;
		else
			n++;
		*family = AF_UNIX;
		return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	}
	long pt = port ? parse_num(port, "port") : -1;
	if (pt < 0 || pt > 65535)
		usage("bad port %s", port ? port : "(none)");
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)pt);
		*family = AF_INET;
		return sizeof(*sin);
	}
	if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)pt);
		*family = AF_INET6;
		return sizeof(*sin6);
	}
	usage("bad host %s", host);
}

/*
 * probe send KIND CALL DEST [PORT] [OPTION...]: one send of "hello" and its result line
 * (`ok <return value>` or `err ERRNO`).
 *   KIND  udp (SOCK_DGRAM), tcpfo (SOCK_STREAM with MSG_FASTOPEN, then reads the echo-less
 *         peer's EOF), dgram (AF_UNIX SOCK_DGRAM)
 *   CALL  sendto | sendmsg | sendmmsg (two messages, the second "world")
 *   DEST  HOST PORT, or unix:PATH / unix:@NAME
 *   OPTIONS (sendmsg, sendmmsg): rights=FILE passes an O_RDONLY descriptor of FILE with
 *   SCM_RIGHTS; creds passes the probe's own SCM_CREDENTIALS; claim=PID:UID:GID passes those;
 *   badcmsg passes a control message with cmsg_len 8; unspec sends with sa_family AF_UNSPEC.
 * Before the result it prints `pid=<pid> uid=<uid>` so a receiver can compare.
 */
static void do_send(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int family, s, type, flags = 0, i;
	const char *kind, *call;
	char ctl[256];
	size_t ctllen = 0;
	int fdpass = -1;
	long r;

	if (argc < 3)
		usage("send KIND CALL DEST [PORT] [OPTION...]");
	kind = argv[0];
	call = argv[1];
	i = 3;
	if (strncmp(argv[2], "unix:", 5) == 0)
		len = parse_dest(argv[2], NULL, &ss, &family);
	else {
		if (argc < 4)
			usage("send KIND CALL HOST PORT");
		len = parse_dest(argv[2], argv[3], &ss, &family);
		i = 4;
	}
	memset(ctl, 0, sizeof(ctl));
	for (; i < argc; i++) {
		if (strncmp(argv[i], "rights=", 7) == 0) {
			struct cmsghdr *c = (struct cmsghdr *)(ctl + ctllen);
			fdpass = open(argv[i] + 7, O_RDONLY | O_CLOEXEC);
			if (fdpass < 0)
				setup_fail("open rights file");
			c->cmsg_len = CMSG_LEN(sizeof(int));
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			memcpy(CMSG_DATA(c), &fdpass, sizeof(int));
			ctllen += CMSG_SPACE(sizeof(int));
		} else if (strcmp(argv[i], "creds") == 0 || strncmp(argv[i], "claim=", 6) == 0) {
			struct cmsghdr *c = (struct cmsghdr *)(ctl + ctllen);
			struct ucred u = { getpid(), getuid(), getgid() };
			if (argv[i][0] == 'c' && argv[i][1] == 'l' &&
			    sscanf(argv[i] + 6, "%d:%u:%u", &u.pid, &u.uid, &u.gid) != 3)
				usage("claim=PID:UID:GID");
			c->cmsg_len = CMSG_LEN(sizeof(u));
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_CREDENTIALS;
			memcpy(CMSG_DATA(c), &u, sizeof(u));
			ctllen += CMSG_SPACE(sizeof(u));
		} else if (strcmp(argv[i], "badcmsg") == 0) {
			struct cmsghdr *c = (struct cmsghdr *)(ctl + ctllen);
			c->cmsg_len = 8;
			ctllen += CMSG_SPACE(0);
		} else if (strcmp(argv[i], "unspec") == 0) {
			((struct sockaddr *)&ss)->sa_family = AF_UNSPEC;
		} else
			usage("unknown send option %s", argv[i]);
	}
	if (!strcmp(kind, "udp"))
		type = SOCK_DGRAM;
	else if (!strcmp(kind, "tcpfo")) {
		type = SOCK_STREAM;
		flags = MSG_FASTOPEN;
	} else if (!strcmp(kind, "dgram")) {
		type = SOCK_DGRAM;
		family = AF_UNIX;
	} else
		usage("send KIND is udp, tcpfo or dgram");
	s = socket(family, type | SOCK_CLOEXEC, 0);
	if (s < 0)
		setup_fail("socket");
	out("pid=%d uid=%d", getpid(), getuid());
	char m1[] = "hello", m2[] = "world";
	struct iovec iov1 = { m1, 5 }, iov2 = { m2, 5 };
	if (!strcmp(call, "sendto")) {
		r = syscall(SYS_sendto, s, m1, 5, flags, &ss, len);
	} else if (!strcmp(call, "sendmsg")) {
		struct msghdr mh = { &ss, len, &iov1, 1, ctllen ? ctl : NULL, ctllen, 0 };
		r = syscall(SYS_sendmsg, s, &mh, flags);
	} else if (!strcmp(call, "sendmmsg")) {
		struct mmsghdr mm[2];
		memset(mm, 0, sizeof(mm));
		mm[0].msg_hdr = (struct msghdr){ &ss, len, &iov1, 1, ctllen ? ctl : NULL, ctllen, 0 };
		mm[1].msg_hdr = (struct msghdr){ &ss, len, &iov2, 1, NULL, 0, 0 };
		r = syscall(SYS_sendmmsg, s, mm, 2, flags);
		if (r >= 0) {
			out("ok %ld lens=%u,%u", r, mm[0].msg_len, mm[1].msg_len);
			close(s);
			return;
		}
	} else
		usage("send CALL is sendto, sendmsg or sendmmsg");
	if (r < 0)
		out("err %s", errname(errno));
	else
		out("ok %ld", r);
	if (type == SOCK_STREAM && r >= 0) {
		char b[16];
		shutdown(s, SHUT_WR);
		while (read(s, b, sizeof(b)) > 0)
			;
	}
	close(s);
}

static struct sockaddr_in sflip_denied;
static struct msghdr sflip_msg;
static struct sockaddr_in sflip_to;
static unsigned short sflip_a, sflip_b;

static void *sendflip_writer(void *arg)
{
	int to = arg != NULL;
	void *volatile *name = (void *volatile *)&sflip_msg.msg_name;
	volatile unsigned short *port = &sflip_to.sin_port;

	while (!atomic_load(&race_stop)) {
		if (to) {
			*port = htons(sflip_b);
			*port = htons(sflip_a);
		} else {
			*name = &sflip_denied;
			*name = NULL;
		}
	}
	return NULL;
}

/*
 * probe sendflip msg|to ALLOWED_PORT DENIED_PORT ITERS: a UDP socket connected to
 * 127.0.0.1:ALLOWED sends "BYPASS" ITERS times while a thread flips the destination:
 * msg flips sendmsg's msg_name between NULL (the connected peer) and 127.0.0.1:DENIED;
 * to flips the port of sendto's destination between ALLOWED and DENIED.
 * Prints `ok sent=<successes>`.
 */
static void do_sendflip(int argc, char **argv)
{
	pthread_t w;
	struct sockaddr_in peer;
	char payload[] = "BYPASS";
	struct iovec iov = { payload, 6 };
	long iters, sent = 0;
	int s, to;

	if (argc != 4 || (strcmp(argv[0], "msg") && strcmp(argv[0], "to")))
		usage("sendflip msg|to ALLOWED_PORT DENIED_PORT ITERS");
	to = argv[0][0] == 't';
	sflip_a = (unsigned short)atoi(argv[1]);
	sflip_b = (unsigned short)atoi(argv[2]);
	iters = atol(argv[3]);
	memset(&peer, 0, sizeof(peer));
	peer.sin_family = AF_INET;
	peer.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	peer.sin_port = htons(sflip_a);
	sflip_denied = peer;
	sflip_denied.sin_port = htons(sflip_b);
	sflip_to = peer;
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&peer, sizeof(peer)) < 0)
		setup_fail("udp socket");
	sflip_msg.msg_namelen = sizeof(sflip_denied);
	sflip_msg.msg_iov = &iov;
	sflip_msg.msg_iovlen = 1;
	if (pthread_create(&w, NULL, sendflip_writer, to ? (void *)1 : NULL))
		setup_fail("pthread_create");
	for (long i = 0; i < iters; i++) {
		long r = to ? syscall(SYS_sendto, s, payload, 6, 0, &sflip_to, sizeof(sflip_to))
			    : syscall(SYS_sendmsg, s, &sflip_msg, 0);
		if (r == 6)
			sent++;
	}
	atomic_store(&race_stop, 1);
	pthread_join(w, NULL);
	close(s);
	out("ok sent=%ld", sent);
}

static atomic_int sem_sigpipes;

static void sem_on_sigpipe(int sig)
{
	(void)sig;
	atomic_fetch_add(&sem_sigpipes, 1);
}

struct sem_drain {
	int fd;
	long ms;
};

static void *sem_drainer(void *arg)
{
	struct sem_drain *d = arg;
	char b[65536];
	struct timespec ts = { d->ms / 1000, (d->ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
	while (read(d->fd, b, sizeof(b)) > 0)
		;
	return NULL;
}

static long sem_sendmsg(int s, void *buf, size_t len, int flags)
{
	struct iovec iov = { buf, len };
	struct msghdr mh = { NULL, 0, &iov, 1, NULL, 0, 0 };
	return syscall(SYS_sendmsg, s, &mh, flags);
}

static long sem_fill(int s)
{
	static char b[4096];
	long n = 0;

	while (sem_sendmsg(s, b, sizeof(b), MSG_DONTWAIT) > 0)
		n++;
	return n;
}

/*
 * probe sendsem: what sends without a destination return in the cases an emulation must get
 * right, one `CASE result` line each: EAGAIN on a full non-blocking socket, a blocking send that
 * waits for a reader, SO_SNDTIMEO, EPIPE with and without MSG_NOSIGNAL (counting SIGPIPEs), EFAULT
 * in a datagram and in a stream, a sendmmsg whose second message faults, and MSG_ZEROCOPY with its
 * completion. Then, with SIGPIPE at its default action, an EPIPE that kills the probe.
 */
static void do_sendsem(int argc, char **argv)
{
	int sv[2], r;
	long n;
	static char big[200000];
	char *bad = (char *)1;

	(void)argv;
	if (argc != 0)
		usage("sendsem");
	signal(SIGPIPE, sem_on_sigpipe);

	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv))
		setup_fail("socketpair");
	n = sem_fill(sv[0]);
	r = (int)sem_sendmsg(sv[0], big, 100, MSG_DONTWAIT);
	out("dgram-full sent=%ld then %s", n, r < 0 ? errname(errno) : "ok");
	close(sv[0]);
	close(sv[1]);

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		setup_fail("socketpair");
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	sem_fill(sv[0]);
	r = (int)sem_sendmsg(sv[0], big, 100, 0);
	out("stream-nonblock %s", r < 0 ? errname(errno) : "ok");
	fcntl(sv[0], F_SETFL, 0);
	{
		pthread_t th;
		struct sem_drain d = { sv[1], 100 };
		if (pthread_create(&th, NULL, sem_drainer, &d))
			setup_fail("pthread_create");
		n = sem_sendmsg(sv[0], big, sizeof(big), 0);
		out("stream-block-until-drained %ld", n < 0 ? -(long)errno : n);
		shutdown(sv[0], SHUT_WR);
		pthread_join(th, NULL);
	}
	close(sv[0]);
	close(sv[1]);

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		setup_fail("socketpair");
	{
		struct timeval tv = { 0, 200000 };
		setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		sem_fill(sv[0]);
		r = (int)sem_sendmsg(sv[0], big, sizeof(big), 0);
		out("stream-sndtimeo %s", r < 0 ? errname(errno) : (r < (int)sizeof(big) ? "partial" : "all"));
	}
	close(sv[1]);
	r = (int)sem_sendmsg(sv[0], big, 10, MSG_NOSIGNAL);
	out("epipe-nosignal %s sigpipe=%d", r < 0 ? errname(errno) : "ok", atomic_load(&sem_sigpipes));
	r = (int)sem_sendmsg(sv[0], big, 10, 0);
	out("epipe %s sigpipe=%d", r < 0 ? errname(errno) : "ok", atomic_load(&sem_sigpipes));
	close(sv[0]);

	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv))
		setup_fail("socketpair");
	{
		struct iovec iov[2] = { { big, 10 }, { bad, 10 } };
		struct msghdr mh = { NULL, 0, iov, 2, NULL, 0, 0 };
		r = (int)syscall(SYS_sendmsg, sv[0], &mh, 0);
		out("dgram-efault %s", r < 0 ? errname(errno) : "ok");
		struct mmsghdr mm[2];
		memset(mm, 0, sizeof(mm));
		mm[0].msg_hdr.msg_iov = iov;
		mm[0].msg_hdr.msg_iovlen = 1;
		mm[1].msg_hdr.msg_iov = iov + 1;
		mm[1].msg_hdr.msg_iovlen = 1;
		r = (int)syscall(SYS_sendmmsg, sv[0], mm, 2, 0);
		out("sendmmsg-second-faults %s len0=%u len1=%u", r < 0 ? errname(errno) : (r == 1 ? "1" : "other"),
		    mm[0].msg_len, mm[1].msg_len);
	}
	close(sv[0]);
	close(sv[1]);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		setup_fail("socketpair");
	{
		struct iovec iov[2] = { { big, 10 }, { bad, 10 } };
		struct msghdr mh = { NULL, 0, iov, 2, NULL, 0, 0 };
		r = (int)syscall(SYS_sendmsg, sv[0], &mh, 0);
		out("stream-efault %s", r < 0 ? errname(errno) : "ok");
	}
	close(sv[0]);
	close(sv[1]);

	{
		int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), c, a, one = 1;
		struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t sl = sizeof(sin);
		char cbuf[128];
		if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof(sin)) || listen(l, 1) ||
		    getsockname(l, (struct sockaddr *)&sin, &sl))
			setup_fail("listener");
		c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (c < 0 || connect(c, (struct sockaddr *)&sin, sizeof(sin)) || (a = accept(l, NULL, NULL)) < 0)
			setup_fail("tcp pair");
		setsockopt(c, SOL_SOCKET, SO_ZEROCOPY, &one, sizeof(one));
		r = (int)sem_sendmsg(c, big, 1000, MSG_ZEROCOPY);
		struct msghdr eh = { NULL, 0, NULL, 0, cbuf, sizeof(cbuf), 0 };
		int got = -1;
		for (int tries = 0; tries < 100 && got < 0; tries++) {
			got = (int)recvmsg(c, &eh, MSG_ERRQUEUE | MSG_DONTWAIT);
			if (got < 0) {
				struct timespec ts = { 0, 10000000 };
				nanosleep(&ts, NULL);
			}
		}
		out("zerocopy %s completion=%s", r < 0 ? errname(errno) : "ok", got < 0 ? "none" : "yes");
		close(c);
		close(a);
		close(l);
	}

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		setup_fail("socketpair");
	close(sv[1]);
	signal(SIGPIPE, SIG_DFL);
	r = (int)sem_sendmsg(sv[0], big, 10, 0);
	out("survived-sigpipe %s", r < 0 ? errname(errno) : "ok");
}

int main(int argc, char **argv)
{
	const char *cmd;
	int i = 1;

	while (i < argc && argv[i][0] == '-' && argv[i][1]) {
		if (strcmp(argv[i], "-r") == 0)
			read_mode = 1;
		else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else
			usage("unknown option %s", argv[i]);
		i++;
	}
	if (i >= argc)
		usage("missing SUBCOMMAND");
	cmd = argv[i++];
	argc -= i;
	argv += i;

	if (!strcmp(cmd, "open") || !strcmp(cmd, "openat") || !strcmp(cmd, "openat2") ||
	    !strcmp(cmd, "creat"))
		do_open_family(cmd, argc, argv);
	else if (!strcmp(cmd, "badptr"))
		do_badptr(argc, argv);
	else if (!strcmp(cmd, "clone3"))
		do_clone(1, argc, argv);
	else if (!strcmp(cmd, "clone"))
		do_clone(0, argc, argv);
	else if (!strcmp(cmd, "mknod"))
		do_mknod(argc, argv);
	else if (!strcmp(cmd, "setxattr")) {
		if (argc != 3)
			usage("setxattr PATH NAME VALUE");
		report(syscall(SYS_setxattr, argv[0], argv[1], argv[2], strlen(argv[2]), 0));
	} else if (!strcmp(cmd, "unlink")) {
		if (argc != 1)
			usage("unlink PATH");
		report(syscall(SYS_unlink, argv[0]));
	} else if (!strcmp(cmd, "mkdir")) {
		if (argc != 1)
			usage("mkdir PATH");
		report(syscall(SYS_mkdir, argv[0], 0755));
	} else if (!strcmp(cmd, "rename")) {
		if (argc != 2)
			usage("rename OLD NEW");
		report(syscall(SYS_rename, argv[0], argv[1]));
	} else if (!strcmp(cmd, "connect"))
		do_connect(argc, argv);
	else if (!strcmp(cmd, "exec")) {
		if (argc < 1)
			usage("exec PATH [ARG...]");
		report(syscall(SYS_execve, argv[0], argv, environ));
	} else if (!strcmp(cmd, "threads"))
		do_threads(argc, argv);
	else if (!strcmp(cmd, "flip"))
		do_race(0, argc, argv);
	else if (!strcmp(cmd, "swap"))
		do_race(1, argc, argv);
	else if (!strcmp(cmd, "sharedfd"))
		do_sharedfd(argc, argv);
	else if (!strcmp(cmd, "uffdstall"))
		do_uffdstall(argc, argv);
	else if (!strcmp(cmd, "excl"))
		do_excl(argc, argv);
	else if (!strcmp(cmd, "emfile"))
		do_emfile(argc, argv);
	else if (!strcmp(cmd, "cloexec"))
		do_cloexec(argc, argv);
	else if (!strcmp(cmd, "unlinkswap"))
		do_unlinkswap(argc, argv);
	else if (!strcmp(cmd, "pathswap") && argc >= 1)
		do_pathswap(argv[0], argc - 1, argv + 1);
	else if (!strcmp(cmd, "remap"))
		do_remap(argc, argv);
	else if (!strcmp(cmd, "execflip"))
		do_execflip(argc, argv);
	else if (!strcmp(cmd, "connectflip"))
		do_connectflip(argc, argv);
	else if (!strcmp(cmd, "tmpflip"))
		do_tmpflip(argc, argv);
	else if (!strcmp(cmd, "bindflip"))
		do_bindflip(argc, argv);
	else if (!strcmp(cmd, "cloneflip"))
		do_cloneflip(argc, argv);
	else if (!strcmp(cmd, "loop"))
		do_loop(argc, argv);
	else if (!strcmp(cmd, "restart"))
		do_restart(argc, argv);
	else if (!strcmp(cmd, "pending-exit"))
		do_pending_exit(argc, argv);
	else if (!strcmp(cmd, "i386") && argc == 0)
		do_i386();
	else if (!strcmp(cmd, "x32") && argc == 0)
		do_x32();
	else if (!strcmp(cmd, "hardened"))
		do_hardened(argc, argv);
	else if (!strcmp(cmd, "fidelity"))
		do_fidelity(argc, argv);
	else if (!strcmp(cmd, "send"))
		do_send(argc, argv);
	else if (!strcmp(cmd, "sendflip"))
		do_sendflip(argc, argv);
	else if (!strcmp(cmd, "sendsem"))
		do_sendsem(argc, argv);
	else
		usage("unknown SUBCOMMAND %s (or wrong arguments)", cmd);
	return 0;
}
