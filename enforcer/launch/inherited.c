// What vigil's own parent left for the command, recorded before the Go
// runtime starts and changes it.
//
// Signals: the runtime installs its handler for almost every signal (a
// handler is reset to the default at exec) and unblocks the signals it is
// asked to notify, so without this record the command would lose what it
// would inherit alone: the SIGINT and SIGQUIT a shell ignores for a
// background job, nohup's SIGHUP, a `trap '' TERM`, a blocked mask.
//
// Standard descriptors: the runtime opens /dev/null on whichever of 0, 1
// and 2 it finds closed, so a command started with `<&-` or `>&-` would find
// /dev/null there instead of nothing (and `echo hi >&-`, which fails alone
// with EBADF, would succeed).
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stddef.h>

uint64_t vigil_inherited_sigign, vigil_inherited_sigblk;
uint32_t vigil_inherited_closed;

__attribute__((constructor)) static void vigil_record_inherited(void)
{
	sigset_t blocked;
	int have_mask = sigprocmask(SIG_BLOCK, NULL, &blocked) == 0;

	for (int sig = 1; sig <= 64; sig++) {
		struct sigaction sa;

		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
			vigil_inherited_sigign |= (uint64_t)1 << (sig - 1);
		if (have_mask && sigismember(&blocked, sig) == 1)
			vigil_inherited_sigblk |= (uint64_t)1 << (sig - 1);
	}
	for (int fd = 0; fd <= 2; fd++) {
		if (fcntl(fd, F_GETFD) == -1 && errno == EBADF)
			vigil_inherited_closed |= 1u << fd;
	}
}
