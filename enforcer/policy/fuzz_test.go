package policy

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/sysinfo"
)

// FuzzParse feeds arbitrary bytes to Parse: it must never panic, an error
// must be a non-empty, sorted ErrorList whose entries all carry the file name
// and a line, and a policy it accepts must be usable.
func FuzzParse(f *testing.F) {
	f.Add([]byte(defaultYAML))
	f.Add([]byte(designExample))
	f.Add([]byte(""))
	f.Add([]byte("version: 1\n"))
	f.Add([]byte("version: 1\nrules:\n  - {syscalls: [open], match: {path: &p [/a/**]}, action: deny}\n  - {syscalls: [unlink], match: {path: *p}, action: deny}\n"))
	f.Add([]byte("version: 1\nrules:\n  - syscalls: [connect]\n    match: {addr: [\"[::1]:22\", \"unix:@x*\", \"10.0.0.0/8:443\"]}\n    action: deny\n"))
	f.Add([]byte("version: 1\nrules:\n  - syscalls: [clone3]\n    match: {flags: {any: [CLONE_NEWUSER], none: [CLONE_THREAD]}}\n    action: deny\n"))
	f.Add([]byte("version: 1\nrules:\n  - syscalls: [mknod]\n    match: {dev: [\"c 1:*\"]}\n    action: emulate\n  - syscalls: [setxattr]\n    match: {xattr: [user.*]}\n    action: emulate\n"))
	f.Add([]byte("{version: 1, version: 2, <<: *a}"))
	f.Add([]byte("version: 1\n---\n- x\n"))
	f.Add([]byte("version: 1\nrules:\n\t- x\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		pol, err := Parse("f.yaml", data)
		if err != nil {
			if pol != nil {
				t.Fatalf("policy and error both returned")
			}
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T %v is not a non-empty ErrorList", err, err)
			}
			for _, e := range list {
				if e.Pos.File != "f.yaml" || e.Pos.Line < 1 || e.Pos.Col < 0 || e.Msg == "" {
					t.Fatalf("bad error entry %#v", e)
				}
			}
			if !slices.IsSortedFunc(list, func(a, b *Error) int { return comparePos(a.Pos, b.Pos) }) {
				t.Fatalf("errors not sorted:\n%v", err)
			}
			return
		}
		if pol.Version != 1 {
			t.Fatalf("accepted version %d", pol.Version)
		}
		for _, name := range pol.Syscalls() {
			n, ok := sysinfo.Number(name)
			if !ok {
				t.Fatalf("accepted unknown syscall %q", name)
			}
			_ = pol.Needs(n)
			_ = pol.ContentDependent(n)
			for _, c := range []Call{
				{Nr: n},
				{Nr: n, Path: "/etc/shadow", Path2: "/", Flags: ^uint64(0), HasFlags: true, Resolve: ^uint64(0),
					Addr: Sockaddr{Family: unix.AF_INET6, IP: netip.IPv6Unspecified(), Port: 22}, HasAddr: true,
					Dev: Dev{DevChar, 1, 3}, HasDev: true, Xattr: "user.x", HasXattr: true},
				{Nr: n, Addr: Sockaddr{Family: unix.AF_UNIX, UnixPath: "x", Abstract: true}, HasAddr: true},
			} {
				d := pol.Evaluate(&c)
				if d.Action < ActionAllow || d.Action > ActionLog {
					t.Fatalf("Evaluate returned invalid action %v", d.Action)
				}
			}
		}
	})
}
