// Namespace entry of the emulation worker, run as an ELF constructor before
// the Go runtime starts.
//
// setns(2) refuses a multi-threaded caller for a user namespace
// (userns_install: thread_group_empty) and a caller sharing its fs_struct for
// a mount namespace (mntns_install: fs->users != 1). A Go process is
// multi-threaded before main runs, so the worker joins the watchee's
// namespaces here, while the process is still single-threaded, the way runc's
// nsexec and LXD's forksyscall do. Every other process that links package
// emulate returns at the first comparison.
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

// Keep in sync with worker.go: VIGIL_WORKER_ARG0 is reexec.Arg0(workerRole),
// the fds are fdUserns, fdMntns and fdCtl (TestNsenterAgreesWithGo).
#define VIGIL_WORKER_ARG0 "vigil:emulate"
#define VIGIL_FD_USERNS 3
#define VIGIL_FD_MNTNS 4
#define VIGIL_FD_CTL 5
#define VIGIL_MAX_GROUPS 65536

// vigil_nsenter_fail reports to the supervisor as one SOCK_SEQPACKET message
// ("E" + text) and exits; the supervisor turns it into an error.
static void vigil_nsenter_fail(const char *what, int err)
{
	char buf[256];
	size_t n = 0;
	const char *e = strerror(err);
	buf[n++] = 'E';
	for (const char *p = what; *p && n < sizeof(buf) - 2; p++)
		buf[n++] = *p;
	buf[n++] = ':';
	buf[n++] = ' ';
	for (const char *p = e; *p && n < sizeof(buf); p++)
		buf[n++] = *p;
	(void)!write(VIGIL_FD_CTL, buf, n);
	_exit(125);
}

// argv[1] holds "u" to join the user namespace on VIGIL_FD_USERNS and "m" to
// join the mount namespace on VIGIL_FD_MNTNS ("-" for neither), leaving out
// the namespaces the watchee shares with vigil: joining one's own user
// namespace is EINVAL, and both need privileges an unprivileged vigil lacks.
// argv[2] lists the watchee's supplementary groups as
// decimal host gids separated by commas. The groups are set here, as host
// root in the initial user namespace, because inside the watchee's namespace
// setgroups(2) may be denied (/proc/<pid>/setgroups) and unmapped groups
// cannot be named at all, yet they still grant access on the host.
__attribute__((constructor)) static void vigil_emulate_nsenter(int argc, char **argv, char **envp)
{
	(void)envp;
	if (argc < 3 || argv == NULL || argv[0] == NULL || strcmp(argv[0], VIGIL_WORKER_ARG0) != 0)
		return;
	// Before joining: the watchee must never be able to ptrace or read the
	// worker (ptrace_may_access then checks mm->user_ns, the initial one).
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		vigil_nsenter_fail("PR_SET_DUMPABLE", errno);

	gid_t *groups = calloc(VIGIL_MAX_GROUPS, sizeof(gid_t));
	if (groups == NULL)
		vigil_nsenter_fail("allocating groups", ENOMEM);
	size_t ngroups = 0;
	for (const char *p = argv[2]; *p;) {
		char *end;
		errno = 0;
		unsigned long g = strtoul(p, &end, 10);
		if (end == p || errno != 0 || g > 0xfffffffful || ngroups >= VIGIL_MAX_GROUPS)
			vigil_nsenter_fail("parsing groups", EINVAL);
		groups[ngroups++] = (gid_t)g;
		p = end;
		if (*p == ',')
			p++;
	}
	// Unchanged groups need no CAP_SETGID.
	gid_t *cur = calloc(VIGIL_MAX_GROUPS, sizeof(gid_t));
	if (cur == NULL)
		vigil_nsenter_fail("allocating groups", ENOMEM);
	int ncur = getgroups(VIGIL_MAX_GROUPS, cur);
	if (ncur < 0 || (size_t)ncur != ngroups || memcmp(cur, groups, ngroups * sizeof(gid_t)) != 0) {
		if (syscall(SYS_setgroups, ngroups, groups) < 0)
			vigil_nsenter_fail("setgroups", errno);
	}
	free(cur);
	free(groups);

	// The mount namespace first, while the worker still has vigil's
	// capabilities: joining one needs CAP_SYS_ADMIN in the user namespace
	// that owns it, which may be an ancestor of the watchee's (unshare -U
	// in a container: a new user namespace, the container's mount
	// namespace), where root of the watchee's namespace has none. A vigil
	// without root has no such capability before joining either: it can
	// join the mount namespace of a user namespace it owns only from
	// inside that namespace, so the attempt is made again after it.
	int want_mnt = strchr(argv[1], 'm') != NULL;
	if (want_mnt && setns(VIGIL_FD_MNTNS, CLONE_NEWNS) == 0)
		want_mnt = 0;
	if (strchr(argv[1], 'u') != NULL && setns(VIGIL_FD_USERNS, CLONE_NEWUSER) < 0)
		vigil_nsenter_fail("joining the watchee's user namespace", errno);
	if (want_mnt && setns(VIGIL_FD_MNTNS, CLONE_NEWNS) < 0)
		vigil_nsenter_fail("joining the watchee's mount namespace", errno);
	close(VIGIL_FD_USERNS);
	close(VIGIL_FD_MNTNS);
}
