// Package conformance is vigil's conformance suite of real programs; it
// holds tests only.
//
// Each program (a bash script under testdata/cases) runs in an empty private
// directory once bare and once under `vigil run` in the default secure mode
// (eBPF binding and emulator) with each of three policies: the embedded
// default, one that traps every syscall vigil decodes behind a
// content-dependent rule (testdata/policies/trap-all.yaml), and one that
// write-protects one directory so that every other write is emulated
// (testdata/policies/write-protect.yaml). The suite builds the vigil binary
// and runs it as a user does. Stdout, stderr, the exit status and the
// directory's tree afterwards (names, types, modes, owners, sizes, contents,
// symlink targets, hard links, and times where the program preserves them)
// must be the same as bare; any difference fails with the diff and the
// audit records that explain it.
//
// TestConformanceInAContainer runs the same cases in runc and crun
// containers, in runc containers with a user namespace of their own, and in
// runc containers under Docker's default seccomp profile (the host's
// programs through read-only mounts, Docker's default capabilities), once
// without vigil and once handed to `vigil agent` with the trap-all policy
// merged into config.json by `vigil agent seccomp-profile` (into Docker's
// default with --base), and compares them the same way.
package conformance
