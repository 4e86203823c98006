/*
 * workload — the micro-workloads `vigil bench` times under each mechanism.
 *
 *   workload getpid N               N x SYS_getpid (never trapped by any policy)
 *   workload open N PATH            N x (SYS_openat(AT_FDCWD, PATH, O_RDONLY|O_CLOEXEC) + close)
 *   workload write N PATH           N x (SYS_openat(AT_FDCWD, PATH, O_WRONLY|O_APPEND|O_CLOEXEC) + close)
 *   workload exec N PATH            N x (vfork + SYS_execve(PATH, {PATH, NULL}, environ) + wait4)
 *   workload connect N HOST PORT    N x (socket + SYS_connect to HOST:PORT (IPv4) + close); the
 *                                   socket lingers 0 s, so close sends RST and leaves no
 *                                   TIME_WAIT behind to exhaust the ephemeral ports
 *
 * Every operation is a raw syscall(2), so exactly the syscall named is made. An operation may
 * succeed or be refused (a policy that denies it): both are counted, and after the loop the
 * program prints one line on stdout, written with write(2):
 *
 *   vigil-bench-result OK FAILED FIRST_ERROR
 *
 * FIRST_ERROR is the errno name of the first failure (`exit<N>` for an exec whose child exited
 * with status N, which is how a refused execve shows), or `-`. The line has a prefix so it can be
 * found among other output on stdout. Exit status 0 after the loop, 2 on a usage error, 3 when a
 * setup step (socket) fails.
 *
 * Build: gcc -O2 -Wall -Wextra -o workload workload.c   (libc and kernel headers only)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static long ok, failed;
static char first[32] = "-";

static void usage(void)
{
	fprintf(stderr, "usage: workload getpid N | open N PATH | write N PATH | exec N PATH | connect N HOST PORT\n");
	exit(2);
}

static long parse_count(const char *s)
{
	char *end;
	long n;

	errno = 0;
	n = strtol(s, &end, 10);
	if (errno || *end || end == s || n < 0)
		usage();
	return n;
}

static const char *errname(int e)
{
	switch (e) {
	case EPERM: return "EPERM";
	case ENOENT: return "ENOENT";
	case EACCES: return "EACCES";
	case EFAULT: return "EFAULT";
	case EINVAL: return "EINVAL";
	case ENOSYS: return "ENOSYS";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
	case EAGAIN: return "EAGAIN";
	}
	return "EOTHER";
}

static void fail(const char *what)
{
	if (failed++ == 0)
		snprintf(first, sizeof(first), "%s", what);
}

static void loop_getpid(long n)
{
	for (long i = 0; i < n; i++)
		syscall(SYS_getpid);
	ok = n;
}

static void loop_open(long n, const char *path, int flags)
{
	for (long i = 0; i < n; i++) {
		long fd = syscall(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC, 0);
		if (fd < 0) {
			fail(errname(errno));
			continue;
		}
		syscall(SYS_close, fd);
		ok++;
	}
}

/* spawn is its own function so that no variable of the loop lives across vfork: the child
 * execs or exits here and never returns. */
static __attribute__((noinline)) pid_t spawn(const char *path)
{
	char *argv[] = { (char *)path, NULL };
	pid_t pid = vfork();

	if (pid == 0) {
		syscall(SYS_execve, path, argv, environ);
		_exit(127);
	}
	return pid;
}

static void loop_exec(long n, const char *path)
{
	for (long i = 0; i < n; i++) {
		int st;
		pid_t pid = spawn(path);
		if (pid < 0) {
			fail(errname(errno));
			continue;
		}
		while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
			ok++;
		} else {
			char buf[32];
			snprintf(buf, sizeof(buf), "exit%d", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
			fail(buf);
		}
	}
}

static void loop_connect(long n, const char *host, const char *port)
{
	struct sockaddr_in sin;
	struct linger lg = { 1, 0 };
	long p = parse_count(port);

	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((unsigned short)p);
	if (p > 65535 || inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		usage();
	for (long i = 0; i < n; i++) {
		int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (s < 0) {
			perror("workload: socket");
			exit(3);
		}
		setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		if (syscall(SYS_connect, s, &sin, sizeof(sin)) < 0)
			fail(errname(errno));
		else
			ok++;
		close(s);
	}
}

int main(int argc, char **argv)
{
	char line[96];
	long n;
	int len;

	if (argc < 3)
		usage();
	n = parse_count(argv[2]);
	if (!strcmp(argv[1], "getpid") && argc == 3)
		loop_getpid(n);
	else if (!strcmp(argv[1], "open") && argc == 4)
		loop_open(n, argv[3], O_RDONLY);
	else if (!strcmp(argv[1], "write") && argc == 4)
		loop_open(n, argv[3], O_WRONLY | O_APPEND);
	else if (!strcmp(argv[1], "exec") && argc == 4)
		loop_exec(n, argv[3]);
	else if (!strcmp(argv[1], "connect") && argc == 5)
		loop_connect(n, argv[3], argv[4]);
	else
		usage();
	len = snprintf(line, sizeof(line), "vigil-bench-result %ld %ld %s\n", ok, failed, first);
	if (write(1, line, (size_t)len) != len)
		return 1;
	return 0;
}
