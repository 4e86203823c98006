package agent

import (
	"fmt"
	"strings"

	seccomp "github.com/seccomp/libseccomp-golang"

	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/policy"
)

// Severity grades a Finding.
type Severity uint8

// Severities.
const (
	// Note: works, but the runtime's own calls reach the agent.
	Note Severity = iota + 1
	// Warning: the runtime may hang before the agent has the listener.
	Warning
	// Fatal: the runtime refuses the profile, or hangs for certain.
	Fatal
)

// String returns the word `vigil policy check --oci` prints.
func (s Severity) String() string {
	switch s {
	case Note:
		return "note"
	case Warning:
		return "warning"
	case Fatal:
		return "error"
	}
	return fmt.Sprintf("Severity(%d)", uint8(s))
}

// Finding is one reason a policy is unsafe or surprising as a container
// profile.
type Finding struct {
	Syscall  string
	Severity Severity
	Why      string
}

// String formats f as "severity: syscall: why".
func (f Finding) String() string {
	return f.Severity.String() + ": " + f.Syscall + ": " + f.Why
}

// The calls an OCI runtime makes under the container's filter, before and
// right after the agent has the listener (checked against runc 1.1.5,
// libcontainer/standard_init_linux.go and init_linux.go syncParentSeccomp,
// and crun's libcrun/seccomp.c). With noNewPrivileges (runc spec's default)
// runc init installs the filter as late as possible:
//
//	seccomp(SET_MODE_FILTER, NEW_LISTENER)        filter now active
//	write(syncpipe, {"type":"procSeccomp","fd":N}) parent pidfd_getfd()s the
//	                                              listener and hands it over
//	read(syncpipe)  ← procSeccompDone             agent has the listener
//	close(N)
//	open("/proc/self/fd/<fifo>", O_WRONLY)         exec FIFO, then write+close
//	execve(container process)
//
// Without noNewPrivileges the filter goes in earlier, and finalizeNamespace
// (setgroups, setresgid, setresuid, capset, chdir, ...) also runs after the
// handoff. Only calls before the parent has read the write can deadlock;
// everything after it reaches the agent like the container's own calls.
var ociFindings = func() map[string]Finding {
	m := map[string]Finding{
		"write": {Severity: Fatal, Why: "runc refuses SCMP_ACT_NOTIFY on write: runc init announces the listener to its parent with write(2) after the filter is installed, " +
			"so a trapped write would wait for an agent that never gets the listener"},
		"sendmsg": {Severity: Warning, Why: "crun versions without its seccomp helper process send the listener from inside the filter with sendmsg(2): " +
			"with those the container never starts (runc, and crun 1.8.1 whose helper sends it from outside the filter, are not affected); " +
			"a policy traps sendmsg when it names it or when its connect rules match addresses"},
		"read":   {Severity: Note, Why: "runc init waits for its parent's go-ahead with read(2) after the handoff: allowed calls work, but every read of the container costs a round trip to the agent"},
		"close":  {Severity: Note, Why: "runc init closes its copy of the listener with close(2) after the handoff: the policy must allow it"},
		"open":   {Severity: Note, Why: "runc init opens its exec FIFO as /proc/self/fd/<n> after the handoff: the policy must allow it"},
		"openat": {Severity: Note, Why: "runc init opens its exec FIFO as /proc/self/fd/<n> after the handoff: the policy must allow it"},
		"execve": {Severity: Note, Why: "runc init's final execve of the container process is supervised: the policy must allow the container's entry point"},
	}
	// runc init is a Go program: between installing the filter and the
	// write, the Go runtime may need these (scheduler, GC, preemption).
	// They rarely run in that window, but one trapped there hangs the
	// container start for good.
	for _, sc := range []string{"futex", "mmap", "munmap", "madvise", "mprotect", "rt_sigprocmask", "rt_sigaction",
		"rt_sigreturn", "sigaltstack", "nanosleep", "sched_yield", "clone", "tgkill", "gettid", "getpid",
		"exit", "epoll_pwait", "epoll_ctl"} {
		m[sc] = Finding{Severity: Warning, Why: "runc init's Go runtime may call it between installing the filter and handing the listener over; " +
			"trapped there, it waits for an agent that does not have the listener yet and the container never starts"}
	}
	return m
}()

// CheckOCI reports what makes p unsafe or surprising as the policy of an
// OCI container whose runtime installs the filter (`vigil policy check
// --oci`). Findings come in the policy's sorted syscall order.
func CheckOCI(p *policy.Policy) []Finding {
	var out []Finding
	pl, err := enforcer.NewPlan(p, false)
	if err != nil {
		return []Finding{{Syscall: "-", Severity: Fatal, Why: err.Error()}}
	}
	trapped, _ := pl.TrappedNames()
	if len(trapped) == 0 {
		out = append(out, Finding{Syscall: "-", Severity: Note, Why: "the policy traps no syscall: the runtime never hands a listener over and only the hardening rules apply"})
	}
	for _, sc := range trapped {
		if f, ok := ociFindings[sc]; ok {
			f.Syscall = sc
			out = append(out, f)
		}
		if _, err := seccomp.GetSyscallFromName(sc); err != nil {
			// runc resolves profile names with libseccomp and skips the
			// ones it does not know, silently: the call would run
			// unsupervised.
			maj, min, mic := seccomp.GetLibraryVersion()
			out = append(out, Finding{Syscall: sc, Severity: Warning, Why: fmt.Sprintf(
				"libseccomp %d.%d.%d on this machine does not know it; a runtime using it drops the rule and the call runs unsupervised", maj, min, mic)})
		}
	}
	return out
}

// FatalFindings joins the fatal findings into one error, or returns nil.
func FatalFindings(fs []Finding) error {
	var msgs []string
	for _, f := range fs {
		if f.Severity == Fatal {
			msgs = append(msgs, f.Syscall+": "+f.Why)
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	return fmt.Errorf("not usable as an OCI seccomp profile: %s", strings.Join(msgs, "; "))
}
