/*
 * refsup — minimal C reference supervisor: the performance floor vigil is compared with.
 *
 *   refsup [--trap SYSCALL]... [--deny PATH]... [--resolve] [--emulate] [--count] -- CMD [ARGS...]
 *
 * Runs CMD under a seccomp user-notification filter that traps the --trap syscalls (open,
 * openat, execve, connect; without --trap: open and openat) and nothing else. Every trapped
 * call is answered with SECCOMP_USER_NOTIF_FLAG_CONTINUE, except that a path spelled exactly
 * like a --deny PATH is answered with -EACCES. (The comparison is on the spelling, not the
 * object, and CONTINUE is racy: this is a benchmark baseline, not a security tool.) A path
 * argument the supervisor cannot read is answered with the errno the kernel would give (EFAULT,
 * or ENAMETOOLONG when there is no NUL within PATH_MAX bytes). A trapped connect's address is
 * read (at most sizeof(struct sockaddr_storage) bytes; EFAULT when unreadable) and the call
 * continued whatever it names: the floor of a supervisor that looks at addresses. --resolve
 * also names the object a trapped path leads to, as vigil's bound decision does on its fast
 * path (enforcer/resolve, lexical): openat2(path, O_PATH, RESOLVE_NO_SYMLINKS) from refsup's
 * own root and cwd (the watchee's, for the absolute paths vigil bench uses), statx of the
 * descriptor, close. The answer does not depend on it: it is the cost of naming the object,
 * which a sound path decision pays and this floor otherwise leaves out. --emulate answers a
 * trapped open or openat by performing it: refsup opens the path itself with the call's flags
 * and mode (from its own root and cwd, and as itself: again the watchee's for vigil bench's
 * absolute paths) and installs the file in the watchee as the call's result with
 * SECCOMP_IOCTL_NOTIF_ADDFD and SECCOMP_ADDFD_FLAG_SEND, or answers the errno its open got:
 * the floor of a supervisor that performs side-effecting opens from its own copy of the
 * arguments, as vigil's emulator does (an ADDFD is a round trip to the watchee, which installs
 * the file, while the supervisor waits). With both, the open acts on the object --resolve
 * named: refsup keeps the O_PATH descriptor and reopens it through a held /proc/self/fd
 * (openat of its number with the call's flags less O_CREAT, O_EXCL and O_NOFOLLOW), then
 * closes it — name, decide, act on what was named, as a sound emulation must (a path opened
 * again by name could lead elsewhere by then); a path it could not name is opened by name as
 * with --emulate alone. --count
 * prints `refsup: N notifications, M objects named, K opens emulated` on stderr at the end (N
 * answered, M named by --resolve, K installed by --emulate), so a test can check what was
 * trapped.
 *
 * Filter (hand-written cBPF, no libseccomp):
 *   arch != AUDIT_ARCH_X86_64        -> SECCOMP_RET_KILL_PROCESS (i386 int $0x80 and the like)
 *   nr >= 0x40000000 (x32 ABI)       -> SECCOMP_RET_ERRNO(ENOSYS) (what a kernel without x32 says;
 *                                      it also stops x32 numbers aliasing the open/openat checks)
 *   nr is one of the trapped calls   -> SECCOMP_RET_USER_NOTIF
 *   otherwise                        -> SECCOMP_RET_ALLOW
 * (one JEQ per trapped call).
 * installed with SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
 * (without the latter on kernels older than 5.19); SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP is set on
 * the listener where the kernel has it (6.6+).
 *
 * The per-notification path is RECV + process_vm_readv + ID_VALID + SEND (a second
 * process_vm_readv only when a path crosses a page boundary; openat2, statx and close
 * between with --resolve). The loop ends when the filter
 * has no users left — CMD and every descendant that inherited the filter have exited and been
 * reaped — which is when the listener reports POLLHUP (like strace -f, a daemon left behind by
 * CMD keeps refsup running; it stays supervised rather than getting ENOSYS). refsup is a child
 * subreaper, and a SIGCHLD handler (no SA_RESTART) reaps every child and records CMD's status.
 * While CMD runs the loop blocks in RECV only; once CMD is gone it polls the listener before
 * each RECV. The switch is race-free on 6.6+ kernels, where a RECV blocked on a filter whose
 * last user went away returns ENOENT; on older kernels the SIGCHLD that reaps the last user
 * interrupts the RECV, which leaves only a tiny window.
 *
 * Exit status: CMD's exit status, or 128+signal if CMD was killed by a signal; 125 if refsup
 * itself failed, 127 if CMD could not be executed.
 *
 * Build: gcc -O2 -Wall -Wextra -o refsup scripts/refsup.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <sys/stat.h>

#ifndef SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
#define SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV (1UL << 5)
#endif
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif
#ifndef SECCOMP_USER_NOTIF_FLAG_CONTINUE
#define SECCOMP_USER_NOTIF_FLAG_CONTINUE (1UL << 0)
#endif

#define X32_SYSCALL_BIT 0x40000000U

static volatile sig_atomic_t child_done;
static volatile sig_atomic_t child_status;
static pid_t child_pid;
static int listener_fd = -1;

static void die(const char *what)
{
	fprintf(stderr, "refsup: %s: %s\n", what, strerror(errno));
	exit(125);
}

static void on_sigchld(int sig)
{
	int saved = errno, st;
	pid_t p;
	(void)sig;
	/* Reap CMD and any orphaned descendant (we are their subreaper): a zombie still counts
	 * as a user of the filter. */
	while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
		if (p == child_pid) {
			child_status = st;
			child_done = 1;
		}
	}
	errno = saved;
}

static void on_forward(int sig)
{
	int saved = errno;
	if (child_pid > 0)
		kill(child_pid, sig);
	errno = saved;
}

/* The calls --trap can name, and where their pointer argument is. */
static const struct trappable {
	const char *name;
	int nr;
	int arg;     /* index of the pointer argument */
	int is_path; /* a NUL-terminated path, else a sockaddr of length args[arg + 1] */
} trappable[] = {
	{ "open", __NR_open, 0, 1 },
	{ "openat", __NR_openat, 1, 1 },
	{ "execve", __NR_execve, 0, 1 },
	{ "connect", __NR_connect, 1, 0 },
};
#define NTRAPPABLE (int)(sizeof(trappable) / sizeof(trappable[0]))

static int trapped[NTRAPPABLE]; /* trapped[i]: trappable[i] is in the filter */

static int install_filter(void)
{
	/* arch check (3), x32 check (3), one JEQ per trapped call, allow, notify */
	struct sock_filter insns[6 + NTRAPPABLE + 2];
	unsigned short n = 0, ntrap = 0;

	insns[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
	insns[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0);
	insns[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS);
	insns[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
	insns[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, X32_SYSCALL_BIT, 0, 1);
	insns[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA));
	for (int i = 0; i < NTRAPPABLE; i++)
		ntrap += (unsigned short)trapped[i];
	/* The k-th JEQ (k from 0) jumps over the ntrap-1-k JEQs after it and the ALLOW to the
	 * notify. */
	for (int i = 0, k = 0; i < NTRAPPABLE; i++)
		if (trapped[i]) {
			insns[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
								   (unsigned)trappable[i].nr,
								   (unsigned char)(ntrap - k), 0);
			k++;
		}
	insns[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	insns[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF);
	struct sock_fprog prog = { .len = n, .filter = insns };
	long fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER,
			  SECCOMP_FILTER_FLAG_NEW_LISTENER | SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV, &prog);
	if (fd < 0 && errno == EINVAL) /* kernels before 5.19 lack WAIT_KILLABLE_RECV */
		fd = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
	return (int)fd;
}

static int send_fd(int sock, int fd)
{
	char byte = 0;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c;

	memset(&u, 0, sizeof(u));
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, MSG_NOSIGNAL) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = u.buf, .msg_controllen = sizeof(u.buf) };
	struct cmsghdr *c;
	ssize_t n;
	int fd;

	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n != 1)
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
	    c->cmsg_len != CMSG_LEN(sizeof(int)))
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

static void child(int sock, char **argv)
{
	int fd;

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		perror("refsup: child: PR_SET_NO_NEW_PRIVS");
		_exit(125);
	}
	fd = install_filter();
	if (fd < 0) {
		perror("refsup: child: seccomp(SECCOMP_SET_MODE_FILTER)");
		_exit(125);
	}
	if (send_fd(sock, fd) < 0) {
		perror("refsup: child: send listener");
		_exit(125);
	}
	close(fd);
	close(sock);
	execvp(argv[0], argv);
	fprintf(stderr, "refsup: exec %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

/*
 * Reads the NUL-terminated string at addr in pid into buf (PATH_MAX bytes), one page at a time
 * so that an unmapped page after the string does not fail the read. Returns 0 or an errno the
 * kernel's getname() would give: EFAULT (unreadable before the NUL), ENAMETOOLONG (no NUL in
 * PATH_MAX bytes).
 */
static int read_path(pid_t pid, uint64_t addr, char *buf, size_t pagesz)
{
	size_t got = 0;

	if (addr == 0)
		return EFAULT;
	while (got < PATH_MAX) {
		uint64_t a = addr + got;
		size_t chunk = pagesz - (size_t)(a & (pagesz - 1));
		struct iovec local, remote;
		ssize_t n;

		if (chunk > PATH_MAX - got)
			chunk = PATH_MAX - got;
		local.iov_base = buf + got;
		local.iov_len = chunk;
		remote.iov_base = (void *)(uintptr_t)a;
		remote.iov_len = chunk;
		n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
		if (n <= 0)
			return EFAULT; /* includes ESRCH: the answer is discarded then anyway */
		if (memchr(buf + got, 0, (size_t)n))
			return 0;
		got += (size_t)n;
		if ((size_t)n < chunk)
			return EFAULT;
	}
	return ENAMETOOLONG;
}

/*
 * Reads a trapped connect's address (addrlen bytes at addr, at most sizeof(struct
 * sockaddr_storage)) into buf. Returns 0 or EFAULT; the kernel's move_addr_to_kernel gives
 * EINVAL for a longer addrlen, which the CONTINUEd call reports itself.
 */
static int read_sockaddr(pid_t pid, uint64_t addr, uint64_t addrlen, struct sockaddr_storage *buf)
{
	struct iovec local = { .iov_base = buf }, remote = { .iov_base = (void *)(uintptr_t)addr };
	ssize_t n;

	if (addrlen > sizeof(*buf))
		addrlen = sizeof(*buf);
	if (addrlen == 0)
		return 0;
	local.iov_len = remote.iov_len = (size_t)addrlen;
	n = process_vm_readv(pid, &local, 1, &remote, 1, 0);
	return n == (ssize_t)addrlen ? 0 : EFAULT;
}

/*
 * Names the object at path as vigil's lexical resolution does (--resolve): one openat2 that
 * refuses symlinks, the descriptor's identity, close. The result is discarded.
 */
static unsigned long resolved; /* objects --resolve named */

/* Returns the O_PATH descriptor of the object named when keep is set (the caller closes it),
 * else closes it; -1 when nothing was named. */
static int resolve_path(const char *path, int keep)
{
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_NO_SYMLINKS };
	struct statx stx;
	int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));

	if (fd < 0)
		return -1;
	if (statx(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_MNT_ID, &stx) == 0)
		resolved++;
	if (keep)
		return fd;
	close(fd);
	return -1;
}

/*
 * Performs the trapped open described by req, whose path was read into path, and installs the
 * result in the watchee as the call's return value (--emulate). Returns 0 when the call was
 * answered (installed, or the watchee went away meanwhile), else the errno to answer. The
 * caller sends only what refsup can open as the watchee would: absolute paths, or paths
 * relative to the cwd (refsup's is the watchee's start cwd).
 */
static unsigned long emulated; /* opens --emulate installed */
static int self_fds = -1;       /* /proc/self/fd (O_PATH), with --resolve --emulate */

/* named is the O_PATH descriptor --resolve kept for path, or -1: the open reopens it. */
static int emulate_open(const struct seccomp_notif *req, const char *path, int named)
{
	int at = req->data.nr == __NR_openat;
	int oflags = (int)req->data.args[at + 1];
	mode_t mode = (mode_t)req->data.args[at + 2];
	struct seccomp_notif_addfd addfd = { .id = req->id, .flags = SECCOMP_ADDFD_FLAG_SEND };
	char num[16];
	int fd;

	if (named >= 0) {
		snprintf(num, sizeof(num), "%d", named);
		fd = openat(self_fds, num, (oflags & ~(O_CREAT | O_EXCL | O_NOFOLLOW)) | O_CLOEXEC, mode);
	} else {
		fd = open(path, oflags | O_CLOEXEC, mode);
	}
	if (fd < 0)
		return errno;
	addfd.srcfd = (uint32_t)fd;
	addfd.newfd_flags = (uint32_t)(oflags & O_CLOEXEC);
	if (ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_ADDFD, &addfd) >= 0)
		emulated++;
	else if (errno != ENOENT && errno != EINTR)
		die("SECCOMP_IOCTL_NOTIF_ADDFD");
	close(fd);
	return 0;
}

static const struct trappable *trappable_nr(int nr)
{
	for (int i = 0; i < NTRAPPABLE; i++)
		if (trapped[i] && trappable[i].nr == nr)
			return &trappable[i];
	return NULL;
}

static int trap(const char *name)
{
	for (int i = 0; i < NTRAPPABLE; i++)
		if (strcmp(name, trappable[i].name) == 0) {
			trapped[i] = 1;
			return 0;
		}
	return -1;
}

static int denied(const char *path, char **deny, int ndeny)
{
	for (int i = 0; i < ndeny; i++)
		if (strcmp(path, deny[i]) == 0)
			return 1;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: refsup [--trap open|openat|execve|connect]... [--deny PATH]... [--resolve] [--emulate] [--count] -- CMD [ARGS...]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	char **deny = calloc((size_t)argc, sizeof(char *));
	int ndeny = 0, ntrap = 0, count = 0, resolve = 0, emulate = 0, i, sv[2];
	unsigned long answered = 0;
	struct seccomp_notif_sizes sizes;
	struct seccomp_notif *req;
	struct seccomp_notif_resp *resp;
	struct sockaddr_storage sa_buf;
	struct sigaction sa;
	sigset_t chld, oldmask;
	char *path;
	size_t pagesz = (size_t)sysconf(_SC_PAGESIZE);
	uint64_t flags;

	if (!deny)
		die("calloc");
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else if (strcmp(argv[i], "--deny") == 0 && i + 1 < argc) {
			deny[ndeny++] = argv[++i];
		} else if (strncmp(argv[i], "--deny=", 7) == 0) {
			deny[ndeny++] = argv[i] + 7;
		} else if (strcmp(argv[i], "--resolve") == 0) {
			resolve = 1;
		} else if (strcmp(argv[i], "--emulate") == 0) {
			emulate = 1;
		} else if (strcmp(argv[i], "--count") == 0) {
			count = 1;
		} else if (strcmp(argv[i], "--trap") == 0 && i + 1 < argc) {
			if (trap(argv[++i]) < 0)
				usage();
			ntrap++;
		} else if (strncmp(argv[i], "--trap=", 7) == 0) {
			if (trap(argv[i] + 7) < 0)
				usage();
			ntrap++;
		} else {
			usage();
		}
	}
	if (i >= argc)
		usage();
	if (ntrap == 0) {
		trap("open");
		trap("openat");
	}

	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		die("PR_SET_CHILD_SUBREAPER");
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair");

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_sigchld;
	sa.sa_flags = SA_NOCLDSTOP; /* no SA_RESTART: a blocked RECV must return EINTR */
	if (sigaction(SIGCHLD, &sa, NULL) < 0)
		die("sigaction SIGCHLD");

	/* Block SIGCHLD until child_pid is set, so the handler always recognises CMD. */
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &oldmask);
	child_pid = fork();
	if (child_pid < 0)
		die("fork");
	if (child_pid == 0) {
		sigprocmask(SIG_SETMASK, &oldmask, NULL); /* the mask survives execve */
		close(sv[0]);
		child(sv[1], argv + i);
	}
	sigprocmask(SIG_SETMASK, &oldmask, NULL);
	close(sv[1]);

	/* Like system(3): terminal signals reach the child through the process group; the rest
	 * are forwarded. The handlers interrupt RECV with EINTR, which the loop retries. */
	sa.sa_handler = SIG_IGN;
	sa.sa_flags = 0;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sa.sa_handler = on_forward;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	if (resolve && emulate) {
		self_fds = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (self_fds < 0)
			die("/proc/self/fd");
	}
	listener_fd = recv_fd(sv[0]);
	close(sv[0]);
	if (listener_fd < 0) {
		/* The child failed before sending (it said why); report its status. */
		while (!child_done) {
			int st;
			if (waitpid(child_pid, &st, 0) == child_pid) {
				child_status = st;
				child_done = 1;
			} else if (errno != EINTR && !child_done) {
				die("waitpid");
			}
		}
		goto out;
	}

	flags = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
	if (ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags) < 0 && errno != EINVAL &&
	    errno != ENOTTY)
		die("SECCOMP_IOCTL_NOTIF_SET_FLAGS");
	if (syscall(SYS_seccomp, SECCOMP_GET_NOTIF_SIZES, 0, &sizes) < 0)
		die("SECCOMP_GET_NOTIF_SIZES");
	if (sizes.seccomp_notif < sizeof(*req))
		sizes.seccomp_notif = sizeof(*req);
	if (sizes.seccomp_notif_resp < sizeof(*resp))
		sizes.seccomp_notif_resp = sizeof(*resp);
	req = malloc(sizes.seccomp_notif);
	resp = calloc(1, sizes.seccomp_notif_resp);
	path = malloc(PATH_MAX);
	if (!req || !resp || !path)
		die("malloc");

	for (;;) {
		const struct trappable *t;
		int err, is_open, named;

		if (child_done) {
			/* Only after CMD has gone: wait for a notification or for the last user. */
			struct pollfd pfd = { .fd = listener_fd, .events = POLLIN };
			if (poll(&pfd, 1, -1) < 0) {
				if (errno == EINTR)
					continue;
				die("poll");
			}
			if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL))
				break;
		}
		memset(req, 0, sizes.seccomp_notif);
		if (ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_RECV, req) < 0) {
			if (errno == EINTR || errno == ENOENT)
				continue;
			die("SECCOMP_IOCTL_NOTIF_RECV");
		}
		t = trappable_nr(req->data.nr);
		if (!t) /* the filter traps nothing else */
			err = ENOSYS;
		else if (t->is_path)
			err = read_path((pid_t)req->pid, req->data.args[t->arg], path, pagesz);
		else
			err = read_sockaddr((pid_t)req->pid, req->data.args[t->arg],
					    req->data.args[t->arg + 1], &sa_buf);
		is_open = t && (t->nr == __NR_open || t->nr == __NR_openat);
		named = -1;
		if (resolve && err == 0 && t->is_path)
			named = resolve_path(path, emulate && is_open);
		if (ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_ID_VALID, &req->id) < 0) {
			if (named >= 0)
				close(named);
			continue; /* the watchee is gone or the call was interrupted */
		}
		if (err == 0 && t->is_path && denied(path, deny, ndeny))
			err = EACCES;
		if (emulate && err == 0 && is_open &&
		    (path[0] == '/' || t->nr == __NR_open || (int)req->data.args[0] == AT_FDCWD)) {
			err = emulate_open(req, path, named);
			if (named >= 0)
				close(named);
			if (err == 0) {
				answered++;
				continue;
			}
		} else if (named >= 0) {
			close(named);
		}
		resp->id = req->id;
		resp->val = 0;
		if (err == 0) {
			resp->error = 0;
			resp->flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
		} else {
			resp->error = -err;
			resp->flags = 0;
		}
		if (ioctl(listener_fd, SECCOMP_IOCTL_NOTIF_SEND, resp) == 0)
			answered++;
		else if (errno != ENOENT && errno != EINTR)
			die("SECCOMP_IOCTL_NOTIF_SEND");
	}

out:
	if (count)
		fprintf(stderr, "refsup: %lu notifications, %lu objects named, %lu opens emulated\n",
			answered, resolved, emulated);
	if (WIFEXITED(child_status))
		return WEXITSTATUS(child_status);
	if (WIFSIGNALED(child_status))
		return 128 + WTERMSIG(child_status);
	return 125;
}
