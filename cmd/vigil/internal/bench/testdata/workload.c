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
 *   workload open-threads N T PATH  N x the open operation, shared out over T threads started
 *                                   together (the first N % T threads do one more); the threads
 *                                   are started and joined for N = 0 too, so their cost is part
 *                                   of the start-up that vigil bench subtracts
 *   workload wait MODE ARGS...      prints `vigil-bench-ready` on stdout, waits for a line on
 *                                   stdin, then runs `workload MODE ARGS...`: started before the
 *                                   supervisor around it has settled, timed from the line; after
 *                                   its result line it waits for the end of stdin, so that the
 *                                   supervisor can still be looked at
 *   workload serve T PATH           long-lived: prints `vigil-bench-ready` on stdout, then for
 *                                   each line N read from stdin runs open-threads N T PATH and
 *                                   prints its result line; exits 0 at the end of stdin. Without
 *                                   input it is an idle process that says when it runs.
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
 * setup step (socket, thread start) fails.
 *
 * Build: gcc -O2 -Wall -Wextra -pthread -o workload workload.c   (libc and kernel headers only)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* tally counts one thread's operations; the main thread's is the program's result. */
struct tally {
	long ok, failed;
	char first[32];
};

static struct tally main_tally = { 0, 0, "-" };

static void usage(void)
{
	fprintf(stderr, "usage: workload getpid N | open N PATH | write N PATH | exec N PATH | connect N HOST PORT\n"
			"       | open-threads N T PATH | serve T PATH | wait MODE ARGS...\n");
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

static void fail_in(struct tally *t, const char *what)
{
	if (t->failed++ == 0)
		snprintf(t->first, sizeof(t->first), "%s", what);
}

static void fail(const char *what)
{
	fail_in(&main_tally, what);
}

static void loop_getpid(long n)
{
	for (long i = 0; i < n; i++)
		syscall(SYS_getpid);
	main_tally.ok = n;
}

static void loop_open_in(struct tally *t, long n, const char *path, int flags)
{
	for (long i = 0; i < n; i++) {
		long fd = syscall(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC, 0);
		if (fd < 0) {
			fail_in(t, errname(errno));
			continue;
		}
		syscall(SYS_close, fd);
		t->ok++;
	}
}

static void loop_open(long n, const char *path, int flags)
{
	loop_open_in(&main_tally, n, path, flags);
}

#define MAX_THREADS 64

struct worker {
	pthread_t th;
	long n;
	const char *path;
	struct tally t;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	loop_open_in(&w->t, w->n, w->path, O_RDONLY);
	return NULL;
}

/* threads_open runs n opens of path over nt threads and adds their tallies to the main one. */
static void threads_open(long n, long nt, const char *path)
{
	static struct worker ws[MAX_THREADS];

	for (long i = 0; i < nt; i++) {
		int err;

		ws[i].n = n / nt + (i < n % nt);
		ws[i].path = path;
		ws[i].t = (struct tally){ 0, 0, "-" };
		err = pthread_create(&ws[i].th, NULL, worker_main, &ws[i]);
		if (err) {
			fprintf(stderr, "workload: pthread_create: %s\n", strerror(err));
			exit(3);
		}
	}
	for (long i = 0; i < nt; i++) {
		pthread_join(ws[i].th, NULL);
		main_tally.ok += ws[i].t.ok;
		if (ws[i].t.failed) {
			if (main_tally.failed == 0)
				snprintf(main_tally.first, sizeof(main_tally.first), "%s", ws[i].t.first);
			main_tally.failed += ws[i].t.failed;
		}
	}
}

static long parse_threads(const char *s);
static int print_result(void);

/* serve runs rounds of threads_open as stdin asks for them, for a supervisor that is observed
 * between and during rounds (vigil bench's memory measurement). */
static int print_ready(void)
{
	static const char ready[] = "vigil-bench-ready\n";

	return write(1, ready, sizeof(ready) - 1) != (ssize_t)(sizeof(ready) - 1);
}

static int serve(long nt, const char *path)
{
	char line[64];

	if (print_ready())
		return 1;
	while (fgets(line, sizeof(line), stdin)) {
		line[strcspn(line, "\n")] = 0;
		main_tally = (struct tally){ 0, 0, "-" };
		threads_open(parse_count(line), nt, path);
		if (print_result())
			return 1;
	}
	return 0;
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
			main_tally.ok++;
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
			main_tally.ok++;
		close(s);
	}
}

static long parse_threads(const char *s)
{
	long nt = parse_count(s);

	if (nt < 1 || nt > MAX_THREADS)
		usage();
	return nt;
}

static int print_result(void)
{
	char line[96];
	int len = snprintf(line, sizeof(line), "vigil-bench-result %ld %ld %s\n", main_tally.ok,
			   main_tally.failed, main_tally.first);

	return write(1, line, (size_t)len) != len;
}

/* await_go prints the ready line and reads stdin up to the first newline (or its end). */
static void await_go(void)
{
	char c;

	if (print_ready())
		exit(1);
	while (read(0, &c, 1) == 1 && c != '\n')
		;
}

/* await_end reads stdin to its end. */
static void await_end(void)
{
	char c;

	while (read(0, &c, 1) == 1)
		;
}

int main(int argc, char **argv)
{
	int waited = 0, failed;
	long n;

	if (argc >= 4 && !strcmp(argv[1], "wait")) {
		await_go();
		waited = 1;
		argv++;
		argc--;
	}
	if (argc < 3)
		usage();
	if (!strcmp(argv[1], "serve") && argc == 4)
		return serve(parse_threads(argv[2]), argv[3]);
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
	else if (!strcmp(argv[1], "open-threads") && argc == 5)
		threads_open(n, parse_threads(argv[3]), argv[4]);
	else
		usage();
	failed = print_result();
	if (waited)
		await_end();
	return failed;
}
