package loader

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// record builds a ring-buffer record the way the programs lay it out.
type record struct {
	typ, tgid, tid, nr   uint32
	ts                   uint64
	ret                  int64
	args                 [6]uint64
	dev, ino             uint64
	reason, flags        uint32
	pathLen, kpathLen    uint16
	childTid             uint32
	childNS              uint64
	peerFamily, peerPort uint16
	peer                 [16]byte
	path, kpath          string
	overridePathLen      bool
	overrideKPathLen     bool
	truncateTo, extendBy int
}

func (r record) bytes() []byte {
	b := make([]byte, EventSize+r.extendBy)
	le := binary.LittleEndian
	le.PutUint32(b[offType:], r.typ)
	le.PutUint32(b[offTgid:], r.tgid)
	le.PutUint32(b[offTid:], r.tid)
	le.PutUint32(b[offNr:], r.nr)
	le.PutUint64(b[offTs:], r.ts)
	le.PutUint64(b[offRet:], uint64(r.ret))
	for i, a := range r.args {
		le.PutUint64(b[offArgs+8*i:], a)
	}
	le.PutUint64(b[offDev:], r.dev)
	le.PutUint64(b[offIno:], r.ino)
	le.PutUint32(b[offReason:], r.reason)
	le.PutUint32(b[offFlags:], r.flags)
	pl, kl := uint16(len(r.path)), uint16(len(r.kpath))
	if r.overridePathLen {
		pl = r.pathLen
	}
	if r.overrideKPathLen {
		kl = r.kpathLen
	}
	le.PutUint16(b[offPathLen:], pl)
	le.PutUint16(b[offKPathLen:], kl)
	le.PutUint32(b[offChildTid:], r.childTid)
	le.PutUint64(b[offChildNS:], r.childNS)
	le.PutUint16(b[offPeerFam:], r.peerFamily)
	le.PutUint16(b[offPeerPort:], r.peerPort)
	copy(b[offPeer:offPeer+16], r.peer[:])
	copy(b[offPath:offPath+EventPath], r.path)
	copy(b[offKPath:offKPath+EventPath], r.kpath)
	// Bytes past the lengths are garbage in real records (the programs copy
	// a fixed EventPath bytes from scratch).
	for i := offPath + len(r.path); i < offKPath && !r.overridePathLen; i++ {
		b[i] = 'G'
	}
	if r.truncateTo > 0 {
		b = b[:r.truncateTo]
	}
	return b
}

func TestDecodeEvent(t *testing.T) {
	long := strings.Repeat("p", EventPath)
	tests := []struct {
		name    string
		rec     record
		want    Event
		wantErr bool
	}{
		{
			name: "exit with object",
			rec: record{typ: 2, tgid: 100, tid: 101, nr: 257, ts: 12345, ret: 3,
				args: [6]uint64{0xffffff9c, 0x7ffd0000, 0, 0, 0, 0}, dev: 254 << 20, ino: 42,
				flags: uint32(FlagBound | FlagHasObject), path: "/etc/hostname", kpath: "/etc/hostname"},
			want: Event{Type: EventExit, Tgid: 100, Tid: 101, Nr: 257, Time: 12345, Ret: 3,
				Args: [6]uint64{0xffffff9c, 0x7ffd0000}, Dev: unix.Mkdev(254, 0), Ino: 42,
				Flags: FlagBound | FlagHasObject, Path: "/etc/hostname", KPath: "/etc/hostname"},
		},
		{
			name: "violation with negative return and large minor",
			rec: record{typ: 3, tgid: 7, tid: 8, nr: 2, ret: -13, dev: 8<<20 | 300, reason: 3,
				flags: uint32(FlagKilled | FlagBound | FlagHasObject), kpath: "/etc/shadow"},
			want: Event{Type: EventViolation, Tgid: 7, Tid: 8, Nr: 2, Ret: -13, Dev: unix.Mkdev(8, 300),
				Reason: ReasonObjectMismatch, Flags: FlagKilled | FlagBound | FlagHasObject, KPath: "/etc/shadow"},
		},
		{
			name: "fork violation has nr -1",
			rec:  record{typ: 3, tgid: 7, tid: 7, nr: 0xffffffff, reason: 5, args: [6]uint64{9}},
			want: Event{Type: EventViolation, Tgid: 7, Tid: 7, Nr: -1, Reason: ReasonUntracked, Args: [6]uint64{9}},
		},
		{
			name: "connect with an IPv4 peer",
			rec: record{typ: 2, nr: 42, flags: uint32(FlagBound | FlagHasPeer | FlagAtExit),
				peerFamily: unix.AF_INET, peerPort: 6379, peer: [16]byte{127, 0, 0, 1}},
			want: Event{Type: EventExit, Nr: 42, Flags: FlagBound | FlagHasPeer | FlagAtExit,
				PeerFamily: unix.AF_INET, Peer: netip.MustParseAddrPort("127.0.0.1:6379")},
		},
		{
			name: "connect with a v4-mapped IPv6 peer stays mapped",
			rec: record{typ: 3, nr: 42, ret: -115, reason: 3, flags: uint32(FlagKilled | FlagBound | FlagHasPeer | FlagAtExit),
				peerFamily: unix.AF_INET6, peerPort: 22, peer: [16]byte{10: 0xff, 11: 0xff, 12: 10, 15: 1}},
			want: Event{Type: EventViolation, Nr: 42, Ret: -115, Reason: ReasonObjectMismatch,
				Flags:      FlagKilled | FlagBound | FlagHasPeer | FlagAtExit,
				PeerFamily: unix.AF_INET6, Peer: netip.MustParseAddrPort("[::ffff:10.0.0.1]:22")},
		},
		{
			name: "connect with an abstract AF_UNIX peer",
			rec: record{typ: 2, nr: 42, flags: uint32(FlagHasPeer | FlagAtExit), peerFamily: unix.AF_UNIX,
				peerPort: 0, kpath: "\x00vigil"},
			want: Event{Type: EventExit, Nr: 42, Flags: FlagHasPeer | FlagAtExit, PeerFamily: unix.AF_UNIX, KPath: "\x00vigil"},
		},
		{
			name: "peer and child fields without their flags are ignored",
			rec:  record{typ: 2, peerFamily: unix.AF_INET, peerPort: 1, peer: [16]byte{1, 2, 3, 4}, childTid: 9, childNS: 1 << 26},
			want: Event{Type: EventExit},
		},
		{
			name: "clone with a child in a new UTS namespace",
			rec:  record{typ: 2, nr: 56, ret: 4242, flags: uint32(FlagBound | FlagHasChild | FlagAtExit), childTid: 4242, childNS: unix.CLONE_NEWUTS},
			want: Event{Type: EventExit, Nr: 56, Ret: 4242, Flags: FlagBound | FlagHasChild | FlagAtExit, Child: 4242, ChildNS: unix.CLONE_NEWUTS},
		},
		{
			name: "exec not checked",
			rec:  record{typ: 3, nr: 59, reason: 6, flags: uint32(FlagBound | FlagKilled | FlagAtExit)},
			want: Event{Type: EventViolation, Nr: 59, Reason: ReasonUnchecked, Flags: FlagBound | FlagKilled | FlagAtExit},
		},
		{
			name: "full-length paths",
			rec:  record{typ: 1, flags: uint32(FlagPathTrunc | FlagKPathTrunc), path: long, kpath: long},
			want: Event{Type: EventEnter, Flags: FlagPathTrunc | FlagKPathTrunc, Path: long, KPath: long},
		},
		{
			name: "trailing bytes are ignored",
			rec:  record{typ: 1, path: "/x", extendBy: 8},
			want: Event{Type: EventEnter, Path: "/x"},
		},
		{name: "empty", rec: record{typ: 1, truncateTo: -1}, wantErr: true},
		{name: "truncated", rec: record{typ: 1, truncateTo: EventSize - 1}, wantErr: true},
		{name: "header only", rec: record{typ: 1, truncateTo: offPath}, wantErr: true},
		{name: "type zero", rec: record{typ: 0}, wantErr: true},
		{name: "unknown type", rec: record{typ: 4}, wantErr: true},
		{name: "unknown reason", rec: record{typ: 3, reason: 8}, wantErr: true},
		{name: "unknown flag", rec: record{typ: 2, flags: 512}, wantErr: true},
		{name: "path length past the field", rec: record{typ: 1, pathLen: EventPath + 1, overridePathLen: true}, wantErr: true},
		{name: "kpath length past the field", rec: record{typ: 2, kpathLen: 0xffff, overrideKPathLen: true}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := tt.rec.bytes()
			if tt.rec.truncateTo < 0 {
				b = nil
			}
			for _, alias := range []bool{false, true} {
				var ev Event
				err := decodeEvent(b, &ev, alias)
				if tt.wantErr {
					if !errors.Is(err, ErrBadEvent) {
						t.Fatalf("alias=%v: got %v, want ErrBadEvent", alias, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("alias=%v: %v", alias, err)
				}
				if ev != tt.want {
					t.Errorf("alias=%v:\n got %+v\nwant %+v", alias, ev, tt.want)
				}
			}
		})
	}
}

// TestDecodeEventReusesEvent checks that decoding into a used Event leaves
// nothing of the previous record behind.
func TestDecodeEventReusesEvent(t *testing.T) {
	var ev Event
	if err := DecodeEvent(record{typ: 2, ret: 3, path: "/long/path", kpath: "/k", flags: uint32(FlagHasObject | FlagHasPeer | FlagHasChild), ino: 9,
		peerFamily: unix.AF_INET6, peerPort: 80, peer: [16]byte{15: 1}, childTid: 7, childNS: 1}.bytes(), &ev); err != nil {
		t.Fatal(err)
	}
	if err := DecodeEvent(record{typ: 1}.bytes(), &ev); err != nil {
		t.Fatal(err)
	}
	if want := (Event{Type: EventEnter}); ev != want {
		t.Errorf("got %+v, want %+v", ev, want)
	}
}

// TestEventCloneOwnsStrings checks that a cloned event survives the reuse
// of the buffer ReadEvents decodes from.
func TestEventCloneOwnsStrings(t *testing.T) {
	b := record{typ: 2, path: "/a", kpath: "/b"}.bytes()
	var ev Event
	if err := decodeEvent(b, &ev, true); err != nil {
		t.Fatal(err)
	}
	c := ev.Clone()
	copy(b[offPath:], "/x")
	copy(b[offKPath:], "/y")
	if ev.Path != "/x" {
		t.Fatalf("aliased path = %q: the test does not exercise aliasing", ev.Path)
	}
	if c.Path != "/a" || c.KPath != "/b" {
		t.Errorf("clone changed with the buffer: %q %q", c.Path, c.KPath)
	}
}

func TestDecodeEventAllocatesNothingWhenAliasing(t *testing.T) {
	for _, r := range []record{
		{typ: 2, path: "/etc/hostname", kpath: "/etc/hostname"},
		{typ: 2, flags: uint32(FlagHasPeer | FlagHasChild), peerFamily: unix.AF_INET6, peerPort: 22, peer: [16]byte{15: 1}, childTid: 3},
		{typ: 2, flags: uint32(FlagHasPeer), peerFamily: unix.AF_INET, peerPort: 22, peer: [16]byte{127, 0, 0, 1}},
	} {
		b := r.bytes()
		var ev Event
		if n := testing.AllocsPerRun(100, func() { _ = decodeEvent(b, &ev, true) }); n != 0 {
			t.Errorf("decodeEvent allocated %v times per record %+v", n, r)
		}
	}
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add(record{typ: 2, path: "/etc/hostname", kpath: "/etc/hostname", flags: 17}.bytes())
	f.Add(record{typ: 3, reason: 3, flags: 63}.bytes())
	f.Add(record{typ: 1, truncateTo: 100}.bytes())
	f.Add(record{typ: 2, nr: 42, flags: uint32(FlagHasPeer | FlagAtExit), peerFamily: unix.AF_INET6, peerPort: 443, peer: [16]byte{0: 0xfe, 1: 0x80, 15: 1}}.bytes())
	f.Add(record{typ: 2, nr: 42, flags: uint32(FlagHasPeer | FlagHasObject), peerFamily: unix.AF_UNIX, kpath: "\x00abstract"}.bytes())
	f.Add(record{typ: 3, nr: 435, reason: 3, flags: uint32(FlagBound | FlagKilled | FlagHasChild), childTid: 77, childNS: unix.CLONE_NEWUSER}.bytes())
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev, aliased Event
		err := DecodeEvent(b, &ev)
		aerr := decodeEvent(b, &aliased, true)
		if (err == nil) != (aerr == nil) {
			t.Fatalf("copying and aliasing disagree: %v vs %v", err, aerr)
		}
		if err != nil {
			if !errors.Is(err, ErrBadEvent) {
				t.Fatalf("error does not wrap ErrBadEvent: %v", err)
			}
			return
		}
		if ev != aliased {
			t.Fatalf("copying and aliasing decode differently: %+v vs %+v", ev, aliased)
		}
		if len(b) < EventSize || len(ev.Path) > EventPath || len(ev.KPath) > EventPath {
			t.Fatalf("accepted an impossible record: %d bytes, %+v", len(b), ev)
		}
		if ev.Type < EventEnter || ev.Type > EventViolation || ev.Reason > ReasonUnchecked || ev.Flags&^flagsKnown != 0 {
			t.Fatalf("accepted unknown values: %+v", ev)
		}
		if !ev.Flags.Has(FlagHasPeer) && (ev.PeerFamily != 0 || ev.Peer.IsValid()) {
			t.Fatalf("peer without FlagHasPeer: %+v", ev)
		}
		if !ev.Flags.Has(FlagHasChild) && (ev.Child != 0 || ev.ChildNS != 0) {
			t.Fatalf("child without FlagHasChild: %+v", ev)
		}
		inet := ev.PeerFamily == unix.AF_INET || ev.PeerFamily == unix.AF_INET6
		if ev.Peer.IsValid() != (ev.Flags.Has(FlagHasPeer) && inet) {
			t.Fatalf("peer address %v does not fit family %d: %+v", ev.Peer, ev.PeerFamily, ev)
		}
		if ev.Peer.IsValid() && (ev.Peer.Addr().Is4() != (ev.PeerFamily == unix.AF_INET) || ev.Peer.Addr().Zone() != "") {
			t.Fatalf("peer address %v decoded in the wrong form for family %d", ev.Peer, ev.PeerFamily)
		}
	})
}

func TestFNV1aKnownVectors(t *testing.T) {
	// Vectors from the FNV reference (draft-eastlake-fnv, test suite).
	for _, tt := range []struct {
		in   string
		want uint64
	}{
		{"", 0xcbf29ce484222325},
		{"a", 0xaf63dc4c8601ec8c},
		{"foobar", 0x85944171f73967e8},
	} {
		if got := FNV1a([]byte(tt.in)); got != tt.want {
			t.Errorf("FNV1a(%q) = %#x, want %#x", tt.in, got, tt.want)
		}
		if got := fnv1aString(tt.in); got != tt.want {
			t.Errorf("fnv1aString(%q) = %#x, want %#x", tt.in, got, tt.want)
		}
	}
}

func TestDevEncodingRoundTrips(t *testing.T) {
	for _, d := range []struct{ maj, min uint32 }{{0, 0}, {254, 0}, {8, 1}, {8, 300}, {0, 27}, {259, 65535}, {4095, 1<<20 - 1}} {
		user := unix.Mkdev(d.maj, d.min)
		k, err := kernelDev(user)
		if err != nil {
			t.Fatalf("%d:%d: %v", d.maj, d.min, err)
		}
		if want := uint64(d.maj)<<20 | uint64(d.min); k != want {
			t.Errorf("%d:%d: kernel encoding %#x, want %#x", d.maj, d.min, k, want)
		}
		if back := userDev(k); back != user {
			t.Errorf("%d:%d: round trip gave %#x, want %#x", d.maj, d.min, back, user)
		}
	}
	if _, err := kernelDev(unix.Mkdev(4096, 0)); err == nil {
		t.Error("major 4096 accepted")
	}
	if _, err := kernelDev(unix.Mkdev(0, 1<<20)); err == nil {
		t.Error("minor 1<<20 accepted")
	}
}

func TestBindingValidate(t *testing.T) {
	ok := Binding{Nr: unix.SYS_OPENAT, Kind: BindFile, ArgIndex: 1, Arg: []byte("/etc/hostname")}
	tests := []struct {
		name string
		edit func(*Binding)
		ok   bool
	}{
		{"file", func(*Binding) {}, true},
		{"create", func(b *Binding) { b.Kind, b.Name = BindCreate, "new" }, true},
		{"empty arg", func(b *Binding) { b.Arg = nil }, true},
		{"longest arg", func(b *Binding) { b.Arg = make([]byte, PathMax-1); fill(b.Arg) }, true},
		{"arg too long", func(b *Binding) { b.Arg = make([]byte, PathMax); fill(b.Arg) }, false},
		{"arg with NUL", func(b *Binding) { b.Arg = []byte("/etc\x00/x") }, false},
		{"negative nr", func(b *Binding) { b.Nr = -1 }, false},
		{"kind zero", func(b *Binding) { b.Kind = 0 }, false},
		{"kind 6 (unknown)", func(b *Binding) { b.Kind = 6 }, false},
		{"file on execve", func(b *Binding) { b.Nr = unix.SYS_EXECVE }, false},
		{"exec on openat", func(b *Binding) { b.Kind = BindExec }, false},
		{"exec", func(b *Binding) { b.Kind, b.Nr, b.ArgIndex = BindExec, unix.SYS_EXECVE, 0 }, true},
		{"exec of an fd (execveat, empty path)", func(b *Binding) { b.Kind, b.Nr, b.Arg = BindExec, unix.SYS_EXECVEAT, nil }, true},
		{"execve's path in argument 1", func(b *Binding) { b.Kind, b.Nr = BindExec, unix.SYS_EXECVE }, false},
		{"exec path with NUL", func(b *Binding) { b.Kind, b.Nr, b.ArgIndex, b.Arg = BindExec, unix.SYS_EXECVE, 0, []byte("/bin\x00") }, false},
		{"connect inet", func(b *Binding) { *b = connectBinding(unix.AF_INET, "127.0.0.1") }, true},
		{"connect inet6", func(b *Binding) { *b = connectBinding(unix.AF_INET6, "::1") }, true},
		{"connect inet6 v4-mapped", func(b *Binding) { *b = connectBinding(unix.AF_INET6, "::ffff:127.0.0.1") }, true},
		{"connect inet with an IPv6 address", func(b *Binding) { *b = connectBinding(unix.AF_INET, "::1") }, false},
		{"connect inet with a v4-mapped address", func(b *Binding) { *b = connectBinding(unix.AF_INET, "::ffff:127.0.0.1") }, false},
		{"connect inet6 with an IPv4 address", func(b *Binding) { *b = connectBinding(unix.AF_INET6, "127.0.0.1") }, false},
		{"connect inet without an address", func(b *Binding) { *b = connectBinding(unix.AF_INET, ""); b.Addr = netip.Addr{} }, false},
		{"connect unspec", func(b *Binding) { *b = connectBinding(unix.AF_UNSPEC, "") }, true},
		{"connect netlink", func(b *Binding) { *b = connectBinding(unix.AF_NETLINK, "") }, false},
		{"connect unix abstract", func(b *Binding) { *b = connectBinding(unix.AF_UNIX, ""); b.UnixName = "\x00name" }, true},
		{"connect unix abstract, empty name (autobind form)", func(b *Binding) { *b = connectBinding(unix.AF_UNIX, ""); b.UnixName = "\x00" }, true},
		{"connect unix path", func(b *Binding) { *b = connectBinding(unix.AF_UNIX, ""); b.UnixName, b.Ino = "/run/x.sock", 7 }, true},
		{"connect unix path without inode", func(b *Binding) { *b = connectBinding(unix.AF_UNIX, ""); b.UnixName = "/run/x.sock" }, false},
		{"connect unix path with NUL", func(b *Binding) { *b = connectBinding(unix.AF_UNIX, ""); b.UnixName, b.Ino = "/run\x00x", 7 }, false},
		{"connect unix without name", func(b *Binding) { *b = connectBinding(unix.AF_UNIX, "") }, false},
		{"connect unix name too long", func(b *Binding) {
			*b = connectBinding(unix.AF_UNIX, "")
			b.UnixName, b.Ino = "/"+strings.Repeat("s", 108), 7
		}, false},
		{"connect sockaddr too long", func(b *Binding) { *b = connectBinding(unix.AF_INET, "127.0.0.1"); b.Arg = make([]byte, 129) }, false},
		{"connect sockaddr with NUL bytes", func(b *Binding) { *b = connectBinding(unix.AF_INET, "127.0.0.1"); b.Arg = make([]byte, 16) }, true},
		{"connect in argument 0", func(b *Binding) { *b = connectBinding(unix.AF_INET, "127.0.0.1"); b.ArgIndex = 0 }, false},
		{"clone", func(b *Binding) { *b = Binding{Nr: unix.SYS_CLONE, Kind: BindClone, CloneFlags: unix.CLONE_NEWUTS} }, true},
		{"clone with an argument", func(b *Binding) { *b = Binding{Nr: unix.SYS_CLONE, Kind: BindClone, Arg: []byte{1}} }, false},
		{"clone3", func(b *Binding) { *b = Binding{Nr: unix.SYS_CLONE3, Kind: BindClone, Arg: make([]byte, 88)} }, true},
		{"clone3 in argument 1", func(b *Binding) { *b = Binding{Nr: unix.SYS_CLONE3, Kind: BindClone, ArgIndex: 1} }, false},
		{"clone on fork", func(b *Binding) { *b = Binding{Nr: unix.SYS_FORK, Kind: BindClone} }, false},
		{"arg index 6", func(b *Binding) { b.ArgIndex = 6 }, false},
		{"create without name", func(b *Binding) { b.Kind = BindCreate }, false},
		{"create with slash", func(b *Binding) { b.Kind, b.Name = BindCreate, "a/b" }, false},
		{"create dotdot", func(b *Binding) { b.Kind, b.Name = BindCreate, ".." }, false},
		{"create name too long", func(b *Binding) { b.Kind, b.Name = BindCreate, strings.Repeat("n", 256) }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := ok
			tt.edit(&b)
			if err := b.validate(); (err == nil) != tt.ok {
				t.Errorf("validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

func connectBinding(family uint16, addr string) Binding {
	b := Binding{Nr: unix.SYS_CONNECT, Kind: BindConnect, ArgIndex: 1, Family: family, Port: 80}
	if addr != "" {
		b.Addr = netip.MustParseAddr(addr)
	}
	return b
}

func fill(b []byte) {
	for i := range b {
		b[i] = 'a'
	}
}

func BenchmarkDecodeEvent(b *testing.B) {
	rec := record{typ: 2, path: "/etc/hostname", kpath: "/etc/hostname", flags: 17}.bytes()
	var ev Event
	b.ReportAllocs()
	for b.Loop() {
		if err := decodeEvent(rec, &ev, true); err != nil {
			b.Fatal(err)
		}
	}
}
