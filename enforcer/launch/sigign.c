// The signals vigil's own parent left ignored, recorded before the Go runtime
// starts. The runtime installs its handler for almost every signal, and a
// handler is reset to the default at exec, so without this record the command
// would lose what it would inherit alone: the SIGINT and SIGQUIT a shell
// ignores for a background job, nohup's SIGHUP, a `trap '' TERM`.
#include <signal.h>
#include <stdint.h>
#include <stddef.h>

uint64_t vigil_inherited_sigign;

__attribute__((constructor)) static void vigil_record_sigign(void)
{
	for (int sig = 1; sig <= 64; sig++) {
		struct sigaction sa;

		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		if (sigaction(sig, NULL, &sa) == 0 && sa.sa_handler == SIG_IGN)
			vigil_inherited_sigign |= (uint64_t)1 << (sig - 1);
	}
}
