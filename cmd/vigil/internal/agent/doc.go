// Package agent is vigil's OCI seccomp agent: the process a container
// runtime hands each container's seccomp listener to when the container's
// config.json sets linux.seccomp.listenerPath.
//
// The runtime protocol (runtime-spec "Seccomp: listenerPath", implemented by
// runc ≥ 1.1 and crun ≥ 0.19): for every container whose profile has an
// SCMP_ACT_NOTIFY rule, the runtime connects to the unix stream socket once,
// sends ONE message whose payload is the container process state
// (specs.ContainerProcessState: ociVersion, fds, pid, metadata = the
// profile's listenerMetadata, state {id, status, pid, bundle, annotations})
// with the fds named in "fds" attached by SCM_RIGHTS in the same order, and
// closes (runc 1.1 leaves its end open until it exits; nothing more is sent).
//
// One handoff becomes one enforcer.Supervisor with the policy that
// listenerMetadata selects, serving until the listener hangs up (every
// process of the container is gone). Everything a runtime — or anything else
// root can run — sends is untrusted input: a bad handoff is logged and
// refused, its fds are closed, and the other containers keep running. A
// refused or abandoned listener makes the container's trapped syscalls fail
// with ENOSYS: nothing is granted by a missing supervisor.
//
// Start, Run and Main are `vigil agent` itself (audit log, eBPF binding,
// emulation, socket, signals, sd_notify readiness): the CLI parses flags and
// calls Main, and the tests run the same functions. The pure parts (Frame,
// ParseHandoff, ParseMetadata, ParseNotifySocket, Profile, CheckOCI) do no
// I/O and are fuzzed; the socket side is tested against a fake runtime, runc
// and crun.
package agent
