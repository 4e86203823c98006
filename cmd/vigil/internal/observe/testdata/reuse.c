// reuse.c — benign programs that make descriptor numbers, working
// directories and roots change quickly under observe, for the tests that
// require zero phantom flags. Each prints "ok N" (N successful opens) and
// exits 0, or exits 1 on an unexpected failure.
//
//   reuse fds DIR THREADS ITERS
//       THREADS threads each open DIR/a or DIR/b as a directory, open "f"
//       and "l/f" relative to it (l is a symlink to ../b), close all three
//       and start over: the numbers are reused at once, by other threads
//       too. Every few rounds a thread dup2()s the other directory onto
//       its descriptor before the next relative open.
//   reuse chdir DIR ITERS
//       alternates chdir into DIR/a and DIR/b and opens "f", "l/f" and
//       "../a/f" relative to the working directory.
//   reuse chroot DIR
//       chroot(DIR), then opens "/a/f", "a/l/f", "/b/f", in itself and
//       in a forked child, which also chdirs to /a and opens "f" and "l/f".
//   reuse replace DIR ITERS
//       creates DIR/a/l/out (l is a symlink to ../b) and renames it away,
//       ITERS times: the name names a new file each time, as a build's
//       output does under a symlinked directory.
//   reuse badargs
//       openat with a NULL path, a path in unmapped memory and a closed
//       dirfd: calls whose arguments observe cannot read.
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *dir;
static long iters;
static atomic_long opens;

static int open_rel(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "openat %s: %m\n", name);
		exit(1);
	}
	atomic_fetch_add(&opens, 1);
	return fd;
}

static void *fds_thread(void *arg)
{
	char a[4096], b[4096];
	long id = (long)arg;
	snprintf(a, sizeof(a), "%s/a", dir);
	snprintf(b, sizeof(b), "%s/b", dir);
	for (long i = 0; i < iters; i++) {
		int d = open((i + id) % 2 ? a : b, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (d < 0) {
			perror("open dir");
			exit(1);
		}
		if (i % 7 == 0) {
			/* The same number, another directory, then a lookup. */
			int o = open((i + id) % 2 ? b : a, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
			if (o < 0 || dup3(o, d, O_CLOEXEC) < 0) {
				perror("dup3");
				exit(1);
			}
			close(o);
		}
		int f1 = open_rel(d, "f");
		int f2 = open_rel(d, "l/f");
		close(f1);
		close(d);
		close(f2);
	}
	return NULL;
}

static void chroot_opens(void)
{
	close(open_rel(AT_FDCWD, "/a/f"));
	close(open_rel(AT_FDCWD, "a/l/f"));
	close(open_rel(AT_FDCWD, "/b/f"));
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "fds")) {
		pthread_t th[64];
		long n = atol(argv[3]);
		dir = argv[2];
		iters = atol(argv[4]);
		if (n < 1 || n > 64)
			return 2;
		for (long i = 0; i < n; i++)
			pthread_create(&th[i], NULL, fds_thread, (void *)i);
		for (long i = 0; i < n; i++)
			pthread_join(th[i], NULL);
	} else if (argc == 4 && !strcmp(argv[1], "chdir")) {
		char a[4096], b[4096];
		snprintf(a, sizeof(a), "%s/a", argv[2]);
		snprintf(b, sizeof(b), "%s/b", argv[2]);
		for (long i = 0; i < atol(argv[3]); i++) {
			if (chdir(i % 2 ? a : b) < 0) {
				perror("chdir");
				return 1;
			}
			close(open_rel(AT_FDCWD, "f"));
			close(open_rel(AT_FDCWD, "l/f"));
			close(open_rel(AT_FDCWD, "../a/f"));
		}
	} else if (argc == 3 && !strcmp(argv[1], "chroot")) {
		if (chroot(argv[2]) < 0 || chdir("/") < 0) {
			perror("chroot");
			return 1;
		}
		chroot_opens();
		pid_t p = fork();
		if (p == 0) {
			chroot_opens();
			if (chdir("/a") < 0)
				_exit(1);
			close(open_rel(AT_FDCWD, "f"));
			close(open_rel(AT_FDCWD, "l/f"));
			_exit(0);
		}
		int st;
		if (p < 0 || waitpid(p, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			return 1;
	} else if (argc == 4 && !strcmp(argv[1], "replace")) {
		char p[4096], from[4096], to[4096];
		snprintf(p, sizeof(p), "%s/a/l/out", argv[2]);
		snprintf(from, sizeof(from), "%s/b/out", argv[2]);
		for (long i = 0; i < atol(argv[3]); i++) {
			int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
			if (fd < 0) {
				perror("open");
				return 1;
			}
			atomic_fetch_add(&opens, 1);
			close(fd);
			snprintf(to, sizeof(to), "%s/b/old%ld", argv[2], i);
			if (rename(from, to) < 0) {
				perror("rename");
				return 1;
			}
		}
	} else if (argc == 2 && !strcmp(argv[1], "badargs")) {
		if (syscall(SYS_openat, AT_FDCWD, NULL, O_RDONLY) >= 0 ||
		    syscall(SYS_openat, AT_FDCWD, (char *)8, O_RDONLY) >= 0 ||
		    syscall(SYS_openat, 999, "f", O_RDONLY) >= 0)
			return 1;
	} else {
		fprintf(stderr, "usage: reuse fds DIR THREADS ITERS | chdir DIR ITERS | chroot DIR | replace DIR ITERS | badargs\n");
		return 2;
	}
	printf("ok %ld\n", atomic_load(&opens));
	return 0;
}
