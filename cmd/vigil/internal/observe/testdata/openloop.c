// openloop.c — one thread opening and closing PATH for SECONDS seconds, as
// fast as it can; prints "ok N" with the number of opens. For the test that
// observe loses nothing from a busy watchee at the default buffer size.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct timespec start, now;
	long n = 0;

	if (argc != 3) {
		fprintf(stderr, "usage: openloop SECONDS PATH\n");
		return 2;
	}
	double secs = atof(argv[1]);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		for (int i = 0; i < 1000; i++) {
			long fd = syscall(SYS_openat, AT_FDCWD, argv[2], O_RDONLY | O_CLOEXEC, 0);
			if (fd < 0) {
				perror("openat");
				return 1;
			}
			syscall(SYS_close, fd);
			n++;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		if ((now.tv_sec - start.tv_sec) + (now.tv_nsec - start.tv_nsec) / 1e9 >= secs)
			break;
	}
	printf("ok %ld\n", n);
	return 0;
}
