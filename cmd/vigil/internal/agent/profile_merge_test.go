package agent

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"testing"

	mseccomp "github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	seccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer"
	"github.com/vigilsec/vigil/enforcer/filter"
	"github.com/vigilsec/vigil/enforcer/policy"
)

// Capability sets the Docker default profile is resolved for: runc spec's
// default, Docker's default, and one that unlocks the profile's
// CAP_SYS_ADMIN and CAP_SYS_PTRACE rules.
var (
	runcSpecCaps = []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
	dockerCaps   = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID",
		"CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}
	adminCaps = append(slices.Clone(dockerCaps), "CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_DAC_READ_SEARCH")
)

func specWithCaps(caps []string) *specs.Spec {
	return &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
}

func dockerDefault(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/docker-default.json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadWebPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.Load("testdata/web.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var webOpts = ProfileOptions{Socket: "/run/vigil/agent.sock", Metadata: "policy=web.yaml"}

// TestMergeIntoDockerDefaultKeepsEveryRestriction compiles the Docker
// default profile and its merge with a vigil policy with libseccomp, as
// runc does, and runs both programs on every x86_64 and i386 syscall with
// argument values around every constant the profiles compare: wherever the
// base denies, the merged program gives the very same answer; wherever the
// base allows, it allows, notifies the agent (a trapped syscall) or denies
// (vigil's hardening).
func TestMergeIntoDockerDefaultKeepsEveryRestriction(t *testing.T) {
	// wide traps syscalls the base allows only for some arguments or
	// capabilities, and one vigil's hardening would otherwise deny.
	wide, err := policy.Parse("wide.yaml", []byte("version: 1\nrules:\n  - syscalls: [socket, personality, clone, clone3, unshare, mount, ptrace, openat]\n    action: log\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, pol := range []*policy.Policy{loadWebPolicy(t), wide} {
		for _, tc := range []struct {
			name string
			caps []string
		}{{"runc-spec-caps", runcSpecCaps}, {"docker-caps", dockerCaps}, {"admin-caps", adminCaps}} {
			t.Run(pol.File+"/"+tc.name, func(t *testing.T) {
				base, err := ResolveProfile(dockerDefault(t), specWithCaps(tc.caps))
				if err != nil {
					t.Fatal(err)
				}
				merged, _, err := Merge(base, pol, webOpts)
				if err != nil {
					t.Fatal(err)
				}
				compareBehaviour(t, base, merged, trappedBy(pol))
			})
		}
	}
}

// TestMergeIntoAnAllowingBaseKeepsItsDenials does the same for a base that
// allows by default and denies a few calls, some by argument.
func TestMergeIntoAnAllowingBaseKeepsItsDenials(t *testing.T) {
	base, err := ParseProfile([]byte(`{
  "defaultAction": "SCMP_ACT_ALLOW",
  "architectures": ["SCMP_ARCH_X86_64"],
  "syscalls": [
    {"names": ["reboot", "kexec_load"], "action": "SCMP_ACT_KILL_PROCESS"},
    {"names": ["socket"], "action": "SCMP_ACT_ERRNO", "errnoRet": 97, "args": [{"index": 0, "value": 40, "op": "SCMP_CMP_EQ"}]},
    {"names": ["ptrace"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
    {"names": ["openat", "getpid"], "action": "SCMP_ACT_LOG"}
  ]
}`))
	if err != nil {
		t.Fatal(err)
	}
	pol := loadWebPolicy(t)
	merged, changes, err := Merge(base, pol, webOpts)
	if err != nil {
		t.Fatal(err)
	}
	compareBehaviour(t, base, merged, trappedBy(pol))
	joined := fmt.Sprint(changes)
	for _, want := range []string{"ptrace: already denied by the base", "io_uring_setup: SCMP_ACT_ERRNO (EPERM) rule added", "connect, fsmount, mknod, mknodat, mount, move_mount, open, open_tree, openat, pivot_root, sendmmsg, sendmsg, umount2: allowed by the base's defaultAction", "sendto: calls with a destination address"} {
		if !strings.Contains(joined, want) {
			t.Errorf("changes lack %q:\n%v", want, strings.Join(changeLines(changes), "\n"))
		}
	}
}

// TestMergeIntoAPodmanProfileKeepsItsErrnos: Podman's default profile
// (containers/common) names its errnos beside the numbers, or instead of
// them: "defaultErrno": "ENOSYS" with "defaultErrnoRet": 38. The names
// become the numbers every engine reads, and the merge keeps every denial
// with its errno.
func TestMergeIntoAPodmanProfileKeepsItsErrnos(t *testing.T) {
	base, err := ParseProfile([]byte(`{
  "defaultAction": "SCMP_ACT_ERRNO",
  "defaultErrnoRet": 38,
  "defaultErrno": "ENOSYS",
  "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]}],
  "syscalls": [
    {"names": ["read", "write", "openat", "connect", "getpid", "exit_group", "seccomp"], "action": "SCMP_ACT_ALLOW", "args": [], "comment": "", "includes": {}, "excludes": {}},
    {"names": ["bdflush", "kexec_file_load"], "action": "SCMP_ACT_ERRNO", "args": [], "comment": "", "includes": {}, "excludes": {}, "errnoRet": 1, "errno": "EPERM"},
    {"names": ["chroot"], "action": "SCMP_ACT_ERRNO", "args": [], "comment": "", "includes": {}, "excludes": {}, "errno": "EACCES"}
  ]
}`))
	if err != nil {
		t.Fatal(err)
	}
	if base.DefaultErrnoRet == nil || *base.DefaultErrnoRet != 38 {
		t.Errorf("defaultErrnoRet %v, want 38", base.DefaultErrnoRet)
	}
	if r := base.Syscalls[2]; r.ErrnoRet == nil || *r.ErrnoRet != uint(unix.EACCES) {
		t.Errorf("chroot's errnoRet %v, want EACCES (13) from its name", r.ErrnoRet)
	}
	pol := loadWebPolicy(t)
	merged, _, err := Merge(base, pol, webOpts)
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := ResolveProfile(mustJSON(t, merged), specWithCaps(dockerCaps))
	if err != nil {
		t.Fatal(err)
	}
	baseResolved, err := ResolveProfile(mustJSON(t, base), specWithCaps(dockerCaps))
	if err != nil {
		t.Fatal(err)
	}
	compareBehaviour(t, baseResolved, resolved, trappedBy(pol))
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// trappedBy is every syscall a profile for p may send to the agent: the
// policy's, the sends its connect address rules govern, and the calls that
// change mounts.
func trappedBy(p *policy.Policy) []string {
	pl, err := enforcer.NewPlan(p, false)
	if err != nil {
		panic(err)
	}
	whole, addrOnly := pl.TrappedNames()
	return append(append(whole, addrOnly...), filter.MountWatch...)
}

func changeLines(cs []Change) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.String()
	}
	return out
}

func TestMergeRefusesWhatWouldWeakenTheBase(t *testing.T) {
	pol := loadWebPolicy(t)
	for _, tc := range []struct {
		name, base, want string
	}{
		{"conditional denial of a trapped syscall under an allowing default",
			`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["openat"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 2, "value": 64, "valueTwo": 64, "op": "SCMP_CMP_MASKED_EQ"}]}]}`,
			"openat: the base restricts it only for some calls"},
		{"conditional kill of a hardened syscall under an allowing default",
			`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["ptrace"], "action": "SCMP_ACT_KILL", "args": [{"index": 0, "value": 16, "op": "SCMP_CMP_EQ"}]}]}`,
			"ptrace: the base restricts it for some calls"},
		{"seccomp allowed by arguments vigil's hardening compares",
			`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["seccomp"], "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}`,
			"seccomp: syscalls[0] allows it with conditions on its first two arguments"},
		{"another agent",
			`{"defaultAction": "SCMP_ACT_ALLOW", "listenerPath": "/run/other.sock", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}`,
			"already names a seccomp agent"},
		{"a notify rule",
			`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}`,
			"syscalls[0] of the base profile is SCMP_ACT_NOTIFY"},
		{"unknown action",
			`{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_MAYBE"}]}`,
			`unknown action "SCMP_ACT_MAYBE"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, err := ParseProfile([]byte(tc.base))
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := Merge(base, pol, webOpts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Merge: %v, want an error with %q", err, tc.want)
			}
		})
	}
}

func TestParseProfileRefusesWhatItCannotKeep(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscall": [{"names": ["read"], "action": "SCMP_ACT_ALLOW"}]}`, `unknown field "syscall"`},
		{`{"syscalls": []}`, "no defaultAction"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "architectures": ["SCMP_ARCH_X86_64"], "archMap": [{"architecture": "SCMP_ARCH_X86_64"}]}`, "both architectures and archMap"},
		{`{"defaultAction": "SCMP_ACT_ERRNO"} {}`, "data after"},
		{`[1, 2]`, "parsing seccomp profile"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrno": "EPERM", "defaultErrnoRet": 38}`, "defaultErrno EPERM (1) and defaultErrnoRet 38 disagree"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrno": "ENOPE"}`, `defaultErrno: "ENOPE" is not an errno name`},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errno": "EPERM", "errnoRet": 13}]}`, "syscalls[0].errno EPERM (1) and errnoRet 13 disagree"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "errno": 1}]}`, "syscalls[0].errno: json"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO", "Errno": "EPERM", "ErrnoRet": 13}]}`, "syscalls[0].errno EPERM (1) and errnoRet 13 disagree"},
		{`{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrno": "EPERM", "DefaultErrno": "EPERM"}`, "defaultErrno given twice"},
	} {
		if _, err := ParseProfile([]byte(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseProfile(%s): %v, want %q", tc.in, err, tc.want)
		}
	}
	base, err := ParseProfile([]byte(`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"name": "read", "names": ["write"], "action": "SCMP_ACT_ALLOW"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Merge(base, loadWebPolicy(t), webOpts); err == nil || !strings.Contains(err.Error(), "both name and names") {
		t.Errorf("Merge of a rule with name and names: %v", err)
	}
}

func TestMergeDoesNotTrapWhatTheBaseNeverAllows(t *testing.T) {
	base, err := ParseProfile([]byte(`{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read", "exit_group"], "action": "SCMP_ACT_ALLOW"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	merged, changes, err := Merge(base, loadWebPolicy(t), webOpts)
	if err != nil {
		t.Fatal(err)
	}
	if merged.ListenerPath != "" || merged.ListenerMetadata != "" {
		t.Errorf("listener set though nothing is trapped: %+v", merged.LinuxSeccomp)
	}
	for _, r := range merged.Syscalls {
		if r.Action == specs.ActNotify {
			t.Errorf("notify rule %v", r.Names)
		}
	}
	if s := fmt.Sprint(changes); !strings.Contains(s, "openat: the base never allows it") || !strings.Contains(s, "no listenerPath set") {
		t.Errorf("changes:\n%s", strings.Join(changeLines(changes), "\n"))
	}
	// The base is not modified.
	if len(base.Syscalls) != 1 || len(base.Syscalls[0].Names) != 2 {
		t.Fatalf("base modified: %+v", base.Syscalls)
	}
}

func TestSniffTellsProfilesConfigsAndPolicies(t *testing.T) {
	for in, want := range map[string]FileKind{
		string(dockerDefault(t)):               SeccompProfile,
		`{"defaultAction": "SCMP_ACT_ALLOW"}`:  SeccompProfile,
		`{"ociVersion": "1.0.2", "linux": {}}`: OCIConfig,
		"version: 1\nrules: []\n":              OtherFile,
		`{"version": 1}`:                       OtherFile,
		"":                                     OtherFile,
		`{"defaultAction": `:                   OtherFile,
	} {
		if got := Sniff([]byte(in)); got != want {
			t.Errorf("Sniff(%.40q) = %d, want %d", in, got, want)
		}
	}
}

// compareBehaviour runs both profiles' programs over every syscall number
// of x86_64 and i386 with interesting arguments.
func compareBehaviour(t *testing.T, base, merged *mseccomp.Seccomp, trapped []string) {
	t.Helper()
	baseOCI, err := ToOCI(base)
	if err != nil {
		t.Fatal(err)
	}
	mergedOCI, err := ToOCI(merged)
	if err != nil {
		t.Fatal(err)
	}
	bp, mp := compileOCI(t, baseOCI), compileOCI(t, mergedOCI)
	isTrapped := map[string]bool{}
	for _, s := range trapped {
		isTrapped[s] = true
	}
	hardened := map[string]bool{}
	for _, h := range filter.HardeningRules() {
		hardened[h.Syscall] = !isTrapped[h.Syscall]
	}
	// A hardening rule carved out of an allowing rule (seccomp without a
	// nested listener) leaves the rest to the defaultAction: EPERM in
	// Docker's profile, ENOSYS in Podman's.
	hardenedByDefault := uint32(unix.SECCOMP_RET_ERRNO | uint32(unix.EPERM))
	if mergedOCI.DefaultAction == specs.ActErrno && mergedOCI.DefaultErrnoRet != nil {
		hardenedByDefault = unix.SECCOMP_RET_ERRNO | uint32(*mergedOCI.DefaultErrnoRet)
	}
	checked, notified := 0, 0
	for _, arch := range []struct {
		audit uint32
		scmp  seccomp.ScmpArch
	}{{unix.AUDIT_ARCH_X86_64, seccomp.ArchAMD64}, {unix.AUDIT_ARCH_I386, seccomp.ArchX86}} {
		for nr := int32(0); nr < 470; nr++ {
			name, err := seccomp.ScmpSyscall(nr).GetNameByArch(arch.scmp)
			if err != nil {
				continue
			}
			for _, args := range argSets(argValues(name, baseOCI, mergedOCI)) {
				d := seccompData{nr: nr, arch: arch.audit, args: args}
				b, m := runBPF(t, bp, d), runBPF(t, mp, d)
				checked++
				if b == m {
					continue
				}
				bAct, mAct := b&unix.SECCOMP_RET_ACTION_FULL, m&unix.SECCOMP_RET_ACTION_FULL
				switch {
				case bAct != unix.SECCOMP_RET_ALLOW && bAct != unix.SECCOMP_RET_LOG:
					t.Fatalf("%s(%x) on %v: the base answers %#x, the merged profile %#x", name, args, arch.scmp, b, m)
				case mAct == unix.SECCOMP_RET_USER_NOTIF && isTrapped[name]:
					notified++
				case hardened[name] && (m == unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM) || m == hardenedByDefault):
				default:
					t.Fatalf("%s(%x) on %v: the base allows (%#x), the merged profile answers %#x", name, args, arch.scmp, b, m)
				}
			}
		}
	}
	// The checks have teeth: trapped calls the base allows do reach the
	// agent, and a nested listener is refused while other seccomp calls
	// keep the base's answer.
	if notified == 0 {
		t.Fatal("no call reaches the agent")
	}
	openat, _ := seccomp.GetSyscallFromName("openat")
	sc, _ := seccomp.GetSyscallFromName("seccomp")
	if r := runBPF(t, mp, seccompData{nr: int32(openat), arch: unix.AUDIT_ARCH_X86_64}); r&unix.SECCOMP_RET_ACTION_FULL != unix.SECCOMP_RET_USER_NOTIF {
		t.Fatalf("openat: %#x, want notify", r)
	}
	nested := seccompData{nr: int32(sc), arch: unix.AUDIT_ARCH_X86_64, args: [6]uint64{unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_NEW_LISTENER | unix.SECCOMP_FILTER_FLAG_TSYNC}}
	if r := runBPF(t, mp, nested); r != unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM) && r != hardenedByDefault {
		t.Fatalf("nested listener: %#x, want EPERM or the defaultAction %#x", r, hardenedByDefault)
	}
	plain := seccompData{nr: int32(sc), arch: unix.AUDIT_ARCH_X86_64, args: [6]uint64{unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC}}
	if b, m := runBPF(t, bp, plain), runBPF(t, mp, plain); b != m {
		t.Fatalf("seccomp without a listener: base %#x, merged %#x", b, m)
	}
	t.Logf("%d calls compared, %d notified", checked, notified)
}

// argValues collects, per argument index, the values around every constant
// either profile compares for the syscall name.
func argValues(name string, ps ...*specs.LinuxSeccomp) [6][]uint64 {
	var out [6][]uint64
	for i := range out {
		out[i] = []uint64{0, 1, 0xffffffff, 1 << 40}
	}
	for _, p := range ps {
		for _, r := range p.Syscalls {
			if !slices.Contains(r.Names, name) {
				continue
			}
			for _, a := range r.Args {
				for _, v := range []uint64{a.Value, a.Value - 1, a.Value + 1, a.ValueTwo, a.Value | a.ValueTwo, ^a.Value} {
					if !slices.Contains(out[a.Index], v) {
						out[a.Index] = append(out[a.Index], v)
					}
				}
			}
		}
	}
	return out
}

// argSets varies one argument at a time, and the first two together.
func argSets(values [6][]uint64) [][6]uint64 {
	sets := [][6]uint64{{}}
	for i, vs := range values {
		for _, v := range vs {
			var a [6]uint64
			a[i] = v
			sets = append(sets, a)
		}
	}
	for _, v0 := range values[0] {
		for _, v1 := range values[1] {
			sets = append(sets, [6]uint64{v0, v1})
		}
	}
	return sets
}

// compileOCI builds the program runc 1.1 would load for s: libseccomp with
// s's default and architectures, rules that repeat the default skipped,
// unknown names skipped, conditions on one argument split into rules.
func compileOCI(t *testing.T, s *specs.LinuxSeccomp) []byte {
	t.Helper()
	def := scmpAction(t, s.DefaultAction, s.DefaultErrnoRet)
	f, err := seccomp.NewFilter(def)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Release()
	if err := f.SetNoNewPrivsBit(false); err != nil {
		t.Fatal(err)
	}
	for _, a := range s.Architectures {
		// runc maps the OCI names to libseccomp's (configs.archs).
		name := strings.ToLower(strings.TrimPrefix(string(a), "SCMP_ARCH_"))
		if name == "x86_64" {
			name = "amd64"
		}
		arch, err := seccomp.GetArchFromString(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.AddArch(arch); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range s.Syscalls {
		act := scmpAction(t, r.Action, r.ErrnoRet)
		if act == def {
			continue
		}
		var conds []seccomp.ScmpCondition
		perIndex := map[uint]int{}
		for _, a := range r.Args {
			c, err := seccomp.MakeCondition(a.Index, scmpOp(t, a.Op), a.Value, a.ValueTwo)
			if err != nil {
				t.Fatal(err)
			}
			conds = append(conds, c)
			perIndex[a.Index]++
		}
		split := false
		for _, n := range perIndex {
			split = split || n > 1
		}
		for _, name := range r.Names {
			nr, err := seccomp.GetSyscallFromName(name)
			if err != nil {
				continue
			}
			switch {
			case len(conds) == 0:
				err = f.AddRule(nr, act)
			case split:
				for _, c := range conds {
					if err = f.AddRuleConditional(nr, act, []seccomp.ScmpCondition{c}); err != nil {
						break
					}
				}
			default:
				err = f.AddRuleConditional(nr, act, conds)
			}
			if err != nil {
				t.Fatalf("adding %s %s: %v", name, r.Action, err)
			}
		}
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan []byte)
	go func() {
		b, _ := io.ReadAll(rd)
		done <- b
	}()
	err = f.ExportBPF(wr)
	wr.Close()
	prog := <-done
	rd.Close()
	if err != nil {
		t.Fatal(err)
	}
	return prog
}

func scmpAction(t *testing.T, a specs.LinuxSeccompAction, errnoRet *uint) seccomp.ScmpAction {
	t.Helper()
	ret := int16(unix.EPERM)
	if errnoRet != nil {
		ret = int16(*errnoRet)
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return seccomp.ActKillThread
	case specs.ActKillProcess:
		return seccomp.ActKillProcess
	case specs.ActErrno:
		return seccomp.ActErrno.SetReturnCode(ret)
	case specs.ActTrap:
		return seccomp.ActTrap
	case specs.ActTrace:
		return seccomp.ActTrace.SetReturnCode(ret)
	case specs.ActAllow:
		return seccomp.ActAllow
	case specs.ActLog:
		return seccomp.ActLog
	case specs.ActNotify:
		return seccomp.ActNotify
	}
	t.Fatalf("action %s", a)
	return seccomp.ActInvalid
}

func scmpOp(t *testing.T, op specs.LinuxSeccompOperator) seccomp.ScmpCompareOp {
	t.Helper()
	switch op {
	case specs.OpEqualTo:
		return seccomp.CompareEqual
	case specs.OpNotEqual:
		return seccomp.CompareNotEqual
	case specs.OpGreaterThan:
		return seccomp.CompareGreater
	case specs.OpGreaterEqual:
		return seccomp.CompareGreaterEqual
	case specs.OpLessThan:
		return seccomp.CompareLess
	case specs.OpLessEqual:
		return seccomp.CompareLessOrEqual
	case specs.OpMaskedEqual:
		return seccomp.CompareMaskedEqual
	}
	t.Fatalf("operator %s", op)
	return seccomp.CompareInvalid
}

// seccompData is struct seccomp_data as a filter sees it.
type seccompData struct {
	nr   int32
	arch uint32
	args [6]uint64
}

// runBPF interprets a classic BPF seccomp program as the kernel does, for
// the instructions libseccomp emits; anything else fails the test.
func runBPF(t *testing.T, prog []byte, d seccompData) uint32 {
	t.Helper()
	data := make([]byte, 64)
	binary.LittleEndian.PutUint32(data[0:], uint32(d.nr))
	binary.LittleEndian.PutUint32(data[4:], d.arch)
	for i, a := range d.args {
		binary.LittleEndian.PutUint64(data[16+8*i:], a)
	}
	var a, x uint32
	jump := func(c bool, jt, jf int) int {
		if c {
			return jt
		}
		return jf
	}
	for pc := 0; pc < len(prog)/8; pc++ {
		ins := prog[pc*8:]
		code := binary.LittleEndian.Uint16(ins[0:])
		jt, jf := int(ins[2]), int(ins[3])
		k := binary.LittleEndian.Uint32(ins[4:])
		switch code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if int(k)+4 > len(data) {
				t.Fatalf("pc %d: load beyond seccomp_data at %d", pc, k)
			}
			a = binary.LittleEndian.Uint32(data[k:])
		case unix.BPF_LD | unix.BPF_IMM:
			a = k
		case unix.BPF_LDX | unix.BPF_IMM:
			x = k
		case unix.BPF_MISC | unix.BPF_TAX:
			x = a
		case unix.BPF_MISC | unix.BPF_TXA:
			a = x
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			a &= k
		case unix.BPF_ALU | unix.BPF_OR | unix.BPF_K:
			a |= k
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(k)
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K:
			pc += jump(a == k, jt, jf)
		case unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K:
			pc += jump(a > k, jt, jf)
		case unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K:
			pc += jump(a >= k, jt, jf)
		case unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			pc += jump(a&k != 0, jt, jf)
		case unix.BPF_RET | unix.BPF_K:
			return k
		case unix.BPF_RET | unix.BPF_A:
			return a
		default:
			t.Fatalf("pc %d: instruction 0x%04x not interpreted", pc, code)
		}
	}
	t.Fatal("program fell off its end")
	return 0
}
