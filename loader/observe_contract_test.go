package loader

import (
	"encoding/binary"
	"errors"
	"os"
	"regexp"
	"testing"
	"unsafe"
)

// TestObserveContractMatchesHeader reads bpf/observe.h and checks every
// constant the Go side mirrors, so that its "keep in sync" comments are
// enforced.
func TestObserveContractMatchesHeader(t *testing.T) {
	src, err := os.ReadFile("../bpf/observe.h")
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]uint64{}
	for _, m := range regexp.MustCompile(`(?m)^#define (OBS_\w+) (\d+)`).FindAllSubmatch(src, -1) {
		consts[string(m[1])] = mustUint(t, string(m[2]))
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*(OBS_\w+) = (\d+),`).FindAllSubmatch(src, -1) {
		consts[string(m[1])] = mustUint(t, string(m[2]))
	}
	want := map[string]uint64{
		"OBS_PATH_MAX":              ObsPathMax,
		"OBS_SYSCALL_NR":            ObsSyscallNr,
		"OBS_MAX_WATCHED":           ObsMaxWatched,
		"OBS_SOCKADDR_MAX":          ObsSockaddrMax,
		"OBS_KPATH_DEPTH":           ObsKPathDepth,
		"OBS_START_NONE":            uint64(StartNone),
		"OBS_START_ROOT":            uint64(StartRoot),
		"OBS_START_CWD":             uint64(StartCwd),
		"OBS_START_DIRFD":           uint64(StartDirfd),
		"OBS_F_HAS_RET":             uint64(FlagObsHasRet),
		"OBS_F_HAS_PATH":            uint64(FlagObsHasPath),
		"OBS_F_PATH_TRUNC":          uint64(FlagObsPathTrunc),
		"OBS_F_PATH_AT_EXIT":        uint64(FlagObsPathAtExit),
		"OBS_F_HAS_OBJECT":          uint64(FlagObsHasObject),
		"OBS_F_KPATH_TRUNC":         uint64(FlagObsKPathTrunc),
		"OBS_F_START_FOUND":         uint64(FlagObsStartFound),
		"OBS_F_SOCKADDR":            uint64(FlagObsSockaddr),
		"OBS_F_HAS_PEER":            uint64(FlagObsHasPeer),
		"OBS_F_HAS_HOW":             uint64(FlagObsHasHow),
		"OBS_F_KNAME_CHECKED":       uint64(FlagObsKNameChecked),
		"OBS_F_KNAME_DIFFERS":       uint64(FlagObsKNameDiffers),
		"OBS_F_NO_RETURN":           uint64(FlagObsNoReturn),
		"OBS_F_START_PATH":          uint64(FlagObsStartPath),
		"OBS_E_PATH_UNREADABLE":     uint64(ErrObsPathUnreadable),
		"OBS_E_OBJECT_UNREADABLE":   uint64(ErrObsObjectUnreadable),
		"OBS_E_START_UNREADABLE":    uint64(ErrObsStartUnreadable),
		"OBS_E_HOW_UNREADABLE":      uint64(ErrObsHowUnreadable),
		"OBS_E_SOCKADDR_UNREADABLE": uint64(ErrObsSockaddrUnreadable),
		"OBS_E_EXIT_MISSED":         uint64(ErrObsExitMissed),
		"OBS_E_KPATH_UNREADABLE":    uint64(ErrObsKPathUnreadable),
	}
	for name, w := range want {
		got, ok := consts[name]
		if !ok {
			t.Errorf("%s: not defined in observe.h", name)
		} else if got != w {
			t.Errorf("%s = %d in observe.h, %d in Go", name, got, w)
		}
	}
	for name := range consts {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: defined in observe.h but not mirrored in Go (add it to this test)", name)
		}
	}
	// Every error bit has its words, and no more.
	if n := len(obsErrorText); obsErrorsKnown != 1<<n-1 {
		t.Errorf("obsErrorText has %d entries for error mask %#x", n, obsErrorsKnown)
	}
}

// TestObserveLayoutMatchesGenerated checks the accessor offsets against the
// layout bpf2go generated from the object's BTF.
func TestObserveLayoutMatchesGenerated(t *testing.T) {
	var e observeObsEvent
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"size", unsafe.Sizeof(e), ObsHeaderSize},
		{"ts_enter", unsafe.Offsetof(e.TsEnter), obsOffTsEnter},
		{"ts_exit", unsafe.Offsetof(e.TsExit), obsOffTsExit},
		{"ret", unsafe.Offsetof(e.Ret), obsOffRet},
		{"args", unsafe.Offsetof(e.Args), obsOffArgs},
		{"dev", unsafe.Offsetof(e.Dev), obsOffDev},
		{"ino", unsafe.Offsetof(e.Ino), obsOffIno},
		{"how_flags", unsafe.Offsetof(e.HowFlags), obsOffHow},
		{"how_mode", unsafe.Offsetof(e.HowMode), obsOffHow + 8},
		{"how_resolve", unsafe.Offsetof(e.HowResolve), obsOffHow + 16},
		{"start", unsafe.Offsetof(e.Start), obsOffStart},
		{"root", unsafe.Offsetof(e.Root), obsOffRoot},
		{"tgid", unsafe.Offsetof(e.Tgid), obsOffTgid},
		{"tid", unsafe.Offsetof(e.Tid), obsOffTid},
		{"nr", unsafe.Offsetof(e.Nr), obsOffNr},
		{"flags", unsafe.Offsetof(e.Flags), obsOffFlags},
		{"errors", unsafe.Offsetof(e.Errors), obsOffErrors},
		{"mnt_id", unsafe.Offsetof(e.MntId), obsOffMntID},
		{"mode", unsafe.Offsetof(e.Mode), obsOffMode},
		{"fs_magic", unsafe.Offsetof(e.FsMagic), obsOffFsMagic},
		{"path_len", unsafe.Offsetof(e.PathLen), obsOffPathLen},
		{"kpath_len", unsafe.Offsetof(e.KpathLen), obsOffKPathLen},
		{"start_off", unsafe.Offsetof(e.StartOff), obsOffStartOff},
		{"start_kind", unsafe.Offsetof(e.StartKind), obsOffStartKind},
		{"peer_family", unsafe.Offsetof(e.PeerFamily), obsOffPeerFamily},
		{"peer_port", unsafe.Offsetof(e.PeerPort), obsOffPeerPort},
		{"spath_len", unsafe.Offsetof(e.SpathLen), obsOffSPathLen},
		{"peer", unsafe.Offsetof(e.Peer), obsOffPeer},
		{"len(peer)", uintptr(len(e.Peer)), 16},
		{"comm", unsafe.Offsetof(e.Comm), obsOffComm},
		{"len(comm)", uintptr(len(e.Comm)), 16},
		{"obs_ident.dev", unsafe.Offsetof(e.Start.Dev), obsIdentDev},
		{"obs_ident.ino", unsafe.Offsetof(e.Start.Ino), obsIdentIno},
		{"obs_ident.mnt_id", unsafe.Offsetof(e.Start.MntId), obsIdentMntID},
		{"sizeof(obs_counters)", unsafe.Sizeof(observeObsCounters{}), 32},
	} {
		if c.got != c.want {
			t.Errorf("%s: generated %d, accessors use %d", c.name, c.got, c.want)
		}
	}
}

// FuzzParseCall: ParseCall never panics, and every accessor of a Call it
// accepts stays inside the record.
func FuzzParseCall(f *testing.F) {
	good := make([]byte, ObsHeaderSize+5+7)
	binary.LittleEndian.PutUint16(good[obsOffPathLen:], 5)
	binary.LittleEndian.PutUint16(good[obsOffKPathLen:], 7)
	binary.LittleEndian.PutUint32(good[obsOffFlags:], uint32(FlagObsHasPath|FlagObsHasObject|FlagObsStartFound))
	binary.LittleEndian.PutUint16(good[obsOffStartOff:], 3)
	f.Add(good)
	f.Add(good[:ObsHeaderSize])
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCall(b)
		if err != nil {
			if !errors.Is(err, ErrBadCall) {
				t.Fatalf("error %v does not wrap ErrBadCall", err)
			}
			return
		}
		_ = c.Path()
		_ = c.KPath()
		_ = c.SPath()
		_ = c.Comm()
		_ = c.Peer()
		if c.Flags().Has(FlagObsStartFound) {
			_ = c.KPath()[c.StartOff():]
		}
		for i := range 6 {
			_ = c.Arg(i)
		}
		_, _, _ = c.How()
		_, _, _ = c.Start(), c.Root(), c.Object()
	})
}

func TestParseCallRejects(t *testing.T) {
	good := make([]byte, ObsHeaderSize+2)
	binary.LittleEndian.PutUint16(good[obsOffPathLen:], 2)
	if _, err := ParseCall(good); err != nil {
		t.Fatalf("a well-formed record: %v", err)
	}
	for name, mutate := range map[string]func(b []byte) []byte{
		"short":      func(b []byte) []byte { return b[:ObsHeaderSize-1] },
		"lengths":    func(b []byte) []byte { binary.LittleEndian.PutUint16(b[obsOffPathLen:], 3); return b },
		"trailing":   func(b []byte) []byte { return append(b, 0) },
		"flags":      func(b []byte) []byte { binary.LittleEndian.PutUint32(b[obsOffFlags:], 1<<30); return b },
		"errors":     func(b []byte) []byte { binary.LittleEndian.PutUint32(b[obsOffErrors:], 1<<30); return b },
		"start kind": func(b []byte) []byte { b[obsOffStartKind] = 9; return b },
		"start offset": func(b []byte) []byte {
			binary.LittleEndian.PutUint32(b[obsOffFlags:], uint32(FlagObsStartFound))
			binary.LittleEndian.PutUint16(b[obsOffStartOff:], 1)
			return b
		},
	} {
		b := mutate(append([]byte(nil), good...))
		if _, err := ParseCall(b); !errors.Is(err, ErrBadCall) {
			t.Errorf("%s: ParseCall = %v, want ErrBadCall", name, err)
		}
	}
}
