/*
 * storm — the watchee of vigil's signal-storm test ("one syscall, one effect").
 *
 * Build: gcc -O2 -Wall -Wextra -pthread -o storm storm.c   (libc and kernel headers only)
 *
 * SYNTAX: storm DIR THREADS ITERS INTERVAL_US
 *
 * THREADS worker threads each run ITERS rounds of nine non-idempotent calls on names no other
 * round uses, relative to an O_DIRECTORY descriptor of DIR (T = thread, I = round):
 *
 *   openat(dir, "T-I-a", O_CREAT|O_EXCL|O_WRONLY)  a restart after the create: EEXIST
 *   mkdirat(dir, "T-I-d")                          EEXIST
 *   linkat(dir, "T-I-a", dir, "T-I-l")             EEXIST
 *   symlinkat("target", dir, "T-I-s")              EEXIST
 *   renameat(dir, "T-I-a", dir, "T-I-r")           ENOENT (the source is gone)
 *   unlinkat(dir, "T-I-r"), "T-I-l", "T-I-s"       ENOENT
 *   unlinkat(dir, "T-I-d", AT_REMOVEDIR)           ENOENT
 *
 * Each call, done once, must succeed. A call whose effect was applied twice (carried out, then
 * carried out again when the kernel restarted it after a signal) fails with the errno in the
 * right column: that is a DOUBLED effect. Any other failure (EINTR, a foreign result, an fd
 * that is not the file just created — checked with fstat against fstatat of the name) is a
 * WRONG answer. Meanwhile one more thread sends SIGUSR1, whose handler is installed with
 * SA_RESTART, to the workers in turn, one every INTERVAL_US microseconds (0: as fast as it
 * can), until they are done. Calls are raw syscall(2)s, so exactly the syscall named is made.
 *
 * OUTPUT (stdout, write(2)): up to 20 lines `doubled OP T-I errno=NAME` / `wrong OP T-I
 * errno=NAME` (or `wrong open-identity T-I-a fd=N fstat=... name=...`, the descriptor and the
 * name's inodes) as they happen, then one summary line:
 *   calls=<calls made> ok=<n> doubled=<n> wrong=<n> leftover=<entries left in DIR> signals=<n>
 * leftover counts what a lost or doubled effect left behind (every round removes what it made).
 * EXIT STATUS: 0 when the storm ran (whatever it found); 2 on a usage error; 3 when a setup step
 * failed (message on stderr).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 256
#define MAX_REPORTS 20

static int dirfd_;
static long iters;
static long interval_us;
static atomic_long calls, oks, doubled, wrong, signals_seen;
static atomic_int reports;
static atomic_int done;
static pid_t tids[MAX_THREADS];
static atomic_int ready;

static void out(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (n > (int)sizeof(buf) - 2)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(1, buf, n) < 0) {
		/* nothing to do: stdout is the only channel */
	}
}

static void setup_fail(const char *what)
{
	fprintf(stderr, "storm: %s: %s\n", what, strerror(errno));
	exit(3);
}

static void on_usr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&signals_seen, 1);
}

static const char *errname(int e)
{
	switch (e) {
	case EEXIST: return "EEXIST";
	case ENOENT: return "ENOENT";
	case EINTR: return "EINTR";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case EBADF: return "EBADF";
	case EINVAL: return "EINVAL";
	case ENOSYS: return "ENOSYS";
	case EBUSY: return "EBUSY";
	case ENOTEMPTY: return "ENOTEMPTY";
	case EINPROGRESS: return "EINPROGRESS";
	case ESRCH: return "ESRCH";
	}
	static _Thread_local char buf[16];
	snprintf(buf, sizeof(buf), "E%d", e);
	return buf;
}

/*
 * check classifies one call's result: ret >= 0 is ok; errno == doubled_errno is a doubled
 * effect; anything else is wrong.
 */
static void check(long ret, int e, int doubled_errno, const char *op, const char *name)
{
	atomic_fetch_add(&calls, 1);
	if (ret >= 0) {
		atomic_fetch_add(&oks, 1);
		return;
	}
	if (e == doubled_errno)
		atomic_fetch_add(&doubled, 1);
	else
		atomic_fetch_add(&wrong, 1);
	if (atomic_fetch_add(&reports, 1) < MAX_REPORTS)
		out("%s %s %s errno=%s", e == doubled_errno ? "doubled" : "wrong", op, name, errname(e));
}

static void *worker(void *arg)
{
	long t = (long)arg;
	char a[64], d[64], l[64], s[64], r[64];
	struct stat fst, nst;
	long ret;
	int e;

	tids[t] = (pid_t)syscall(SYS_gettid);
	atomic_fetch_add(&ready, 1);
	/*
	 * Start only once the first signal was handled: a short storm on a fast machine could
	 * otherwise finish before the signaller ever ran, and a storm without signals tests nothing.
	 */
	while (atomic_load(&signals_seen) == 0)
		sched_yield();
	for (long i = 0; i < iters; i++) {
		snprintf(a, sizeof(a), "%ld-%ld-a", t, i);
		snprintf(d, sizeof(d), "%ld-%ld-d", t, i);
		snprintf(l, sizeof(l), "%ld-%ld-l", t, i);
		snprintf(s, sizeof(s), "%ld-%ld-s", t, i);
		snprintf(r, sizeof(r), "%ld-%ld-r", t, i);

		ret = syscall(SYS_openat, dirfd_, a, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		e = errno;
		check(ret, e, EEXIST, "open", a);
		if (ret >= 0) {
			/* The descriptor must be the file this call created, not another call's. */
			int fe = fstat((int)ret, &fst) < 0 ? errno : 0;
			int ne = fstatat(dirfd_, a, &nst, AT_SYMLINK_NOFOLLOW) < 0 ? errno : 0;
			if (fe || ne || fst.st_ino != nst.st_ino || fst.st_dev != nst.st_dev) {
				atomic_fetch_add(&oks, -1);
				atomic_fetch_add(&wrong, 1);
				if (atomic_fetch_add(&reports, 1) < MAX_REPORTS)
					out("wrong open-identity %s fd=%ld fstat=%s mode=%o ino=%lu name=%s ino=%lu", a, ret,
					    fe ? errname(fe) : "ok", fe ? 0 : (unsigned)fst.st_mode, fe ? 0ul : (unsigned long)fst.st_ino,
					    ne ? errname(ne) : "ok", ne ? 0ul : (unsigned long)nst.st_ino);
			}
			close((int)ret);
		}
		ret = syscall(SYS_mkdirat, dirfd_, d, 0700);
		check(ret, errno, EEXIST, "mkdir", d);
		ret = syscall(SYS_linkat, dirfd_, a, dirfd_, l, 0);
		check(ret, errno, EEXIST, "link", l);
		ret = syscall(SYS_symlinkat, "target", dirfd_, s);
		check(ret, errno, EEXIST, "symlink", s);
		ret = syscall(SYS_renameat, dirfd_, a, dirfd_, r);
		check(ret, errno, ENOENT, "rename", a);
		ret = syscall(SYS_unlinkat, dirfd_, r, 0);
		check(ret, errno, ENOENT, "unlink", r);
		ret = syscall(SYS_unlinkat, dirfd_, l, 0);
		check(ret, errno, ENOENT, "unlink", l);
		ret = syscall(SYS_unlinkat, dirfd_, s, 0);
		check(ret, errno, ENOENT, "unlink", s);
		ret = syscall(SYS_unlinkat, dirfd_, d, AT_REMOVEDIR);
		check(ret, errno, ENOENT, "rmdir", d);
	}
	return NULL;
}

static void *signaller(void *arg)
{
	long n = (long)arg;
	pid_t pid = getpid();
	struct timespec ts = { 0, interval_us * 1000 };

	while (atomic_load(&ready) < n)
		sched_yield();
	for (long k = 0; !atomic_load(&done); k++) {
		syscall(SYS_tgkill, pid, tids[k % n], SIGUSR1);
		if (interval_us > 0)
			nanosleep(&ts, NULL);
	}
	return NULL;
}

static long count_entries(void)
{
	long n = 0;
	int fd = openat(dirfd_, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dp;
	struct dirent *de;

	if (fd < 0 || !(dp = fdopendir(fd)))
		setup_fail("opening DIR to count what is left");
	while ((de = readdir(dp)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(dp);
	return n;
}

int main(int argc, char **argv)
{
	pthread_t w[MAX_THREADS], sig;
	struct sigaction sa;
	long nthreads;
	int e;

	if (argc != 5) {
		fprintf(stderr, "usage: storm DIR THREADS ITERS INTERVAL_US\n");
		return 2;
	}
	nthreads = atol(argv[2]);
	iters = atol(argv[3]);
	interval_us = atol(argv[4]);
	if (nthreads < 1 || nthreads > MAX_THREADS || iters < 1 || interval_us < 0 || interval_us > 999999) {
		fprintf(stderr, "storm: THREADS in 1..%d, ITERS >= 1, INTERVAL_US in 0..999999\n", MAX_THREADS);
		return 2;
	}
	dirfd_ = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd_ < 0)
		setup_fail("opening DIR");
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		setup_fail("sigaction");
	for (long t = 0; t < nthreads; t++)
		if ((e = pthread_create(&w[t], NULL, worker, (void *)t)) != 0) {
			errno = e;
			setup_fail("pthread_create");
		}
	if ((e = pthread_create(&sig, NULL, signaller, (void *)nthreads)) != 0) {
		errno = e;
		setup_fail("pthread_create");
	}
	for (long t = 0; t < nthreads; t++)
		pthread_join(w[t], NULL);
	atomic_store(&done, 1);
	pthread_join(sig, NULL);
	out("calls=%ld ok=%ld doubled=%ld wrong=%ld leftover=%ld signals=%ld", atomic_load(&calls),
	    atomic_load(&oks), atomic_load(&doubled), atomic_load(&wrong), count_entries(),
	    atomic_load(&signals_seen));
	return 0;
}
