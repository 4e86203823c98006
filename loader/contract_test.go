package loader

import (
	"os"
	"regexp"
	"strconv"
	"testing"
	"unsafe"
)

// TestContractMatchesHeader reads bpf/vigil.h and checks every constant the
// Go side mirrors, so that the "keep in sync" comments are enforced.
func TestContractMatchesHeader(t *testing.T) {
	src, err := os.ReadFile("../bpf/vigil.h")
	if err != nil {
		t.Fatal(err)
	}
	consts := map[string]uint64{}
	for _, m := range regexp.MustCompile(`(?m)^#define (VIGIL_\w+) (\d+)`).FindAllSubmatch(src, -1) {
		consts[string(m[1])] = mustUint(t, string(m[2]))
	}
	for _, m := range regexp.MustCompile(`(?m)^\s*(VIGIL_\w+) = (\d+),`).FindAllSubmatch(src, -1) {
		consts[string(m[1])] = mustUint(t, string(m[2]))
	}
	want := map[string]uint64{
		"VIGIL_PATH_MAX":        PathMax,
		"VIGIL_EVENT_PATH":      EventPath,
		"VIGIL_MAX_WATCHED":     MaxWatched,
		"VIGIL_MAX_BINDINGS":    MaxBindings,
		"VIGIL_CAPTURE_NR":      CaptureNr,
		"VIGIL_BIND_SLOTS":      BindSlots,
		"VIGIL_BIND_QUIET":      bindQuiet,
		"VIGIL_SLOT_PUBLISHED":  slotPublished,
		"VIGIL_BIND_FILE":       uint64(BindFile),
		"VIGIL_BIND_CREATE":     uint64(BindCreate),
		"VIGIL_BIND_EXEC":       uint64(BindExec),
		"VIGIL_BIND_CONNECT":    uint64(BindConnect),
		"VIGIL_BIND_CLONE":      uint64(BindClone),
		"VIGIL_STATE_ARMED":     bindArmed,
		"VIGIL_STATE_ENTERED":   bindEntered,
		"VIGIL_STATE_KILLED":    bindKilled,
		"VIGIL_STATE_CHECKED":   bindChecked,
		"VIGIL_STATE_REPLACED":  bindReplaced,
		"VIGIL_UNIX_PATH":       unixPath,
		"VIGIL_UNIX_ABSTRACT":   unixAbstract,
		"VIGIL_EV_ENTER":        uint64(EventEnter),
		"VIGIL_EV_EXIT":         uint64(EventExit),
		"VIGIL_EV_VIOLATION":    uint64(EventViolation),
		"VIGIL_OK":              uint64(ReasonOK),
		"VIGIL_ARG_UNREADABLE":  uint64(ReasonArgUnreadable),
		"VIGIL_ARG_CHANGED":     uint64(ReasonArgChanged),
		"VIGIL_OBJECT_MISMATCH": uint64(ReasonObjectMismatch),
		"VIGIL_NO_OBJECT":       uint64(ReasonNoObject),
		"VIGIL_UNTRACKED":       uint64(ReasonUntracked),
		"VIGIL_UNCHECKED":       uint64(ReasonUnchecked),
		"VIGIL_SHARED_FILES":    uint64(ReasonSharedFiles),
		"VIGIL_F_BOUND":         uint64(FlagBound),
		"VIGIL_F_PATH_TRUNC":    uint64(FlagPathTrunc),
		"VIGIL_F_KPATH_TRUNC":   uint64(FlagKPathTrunc),
		"VIGIL_F_KILLED":        uint64(FlagKilled),
		"VIGIL_F_HAS_OBJECT":    uint64(FlagHasObject),
		"VIGIL_F_AT_EXIT":       uint64(FlagAtExit),
		"VIGIL_F_HAS_PEER":      uint64(FlagHasPeer),
		"VIGIL_F_HAS_CHILD":     uint64(FlagHasChild),
		"VIGIL_F_REPLACED":      uint64(FlagReplaced),
	}
	for name, w := range want {
		got, ok := consts[name]
		if !ok {
			t.Errorf("%s: not defined in vigil.h", name)
		} else if got != w {
			t.Errorf("%s = %d in vigil.h, %d in Go", name, got, w)
		}
	}
	for name := range consts {
		if _, ok := want[name]; !ok {
			t.Errorf("%s: defined in vigil.h but not mirrored in Go (add it to this test)", name)
		}
	}
}

func mustUint(t *testing.T, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestEventLayoutMatchesGenerated checks the hand-written decoder offsets
// against the layout bpf2go generated from the object's BTF.
func TestEventLayoutMatchesGenerated(t *testing.T) {
	var e vigilVigilEvent
	for _, c := range []struct {
		name      string
		got, want uintptr
	}{
		{"size", unsafe.Sizeof(e), EventSize},
		{"type", unsafe.Offsetof(e.Type), offType},
		{"tgid", unsafe.Offsetof(e.Tgid), offTgid},
		{"tid", unsafe.Offsetof(e.Tid), offTid},
		{"nr", unsafe.Offsetof(e.Nr), offNr},
		{"ts_ns", unsafe.Offsetof(e.TsNs), offTs},
		{"ret", unsafe.Offsetof(e.Ret), offRet},
		{"args", unsafe.Offsetof(e.Args), offArgs},
		{"dev", unsafe.Offsetof(e.Dev), offDev},
		{"ino", unsafe.Offsetof(e.Ino), offIno},
		{"reason", unsafe.Offsetof(e.Reason), offReason},
		{"flags", unsafe.Offsetof(e.Flags), offFlags},
		{"path_len", unsafe.Offsetof(e.PathLen), offPathLen},
		{"kpath_len", unsafe.Offsetof(e.KpathLen), offKPathLen},
		{"child_tid", unsafe.Offsetof(e.ChildTid), offChildTid},
		{"child_ns", unsafe.Offsetof(e.ChildNs), offChildNS},
		{"peer_family", unsafe.Offsetof(e.PeerFamily), offPeerFam},
		{"peer_port", unsafe.Offsetof(e.PeerPort), offPeerPort},
		{"peer", unsafe.Offsetof(e.Peer), offPeer},
		{"len(peer)", uintptr(len(e.Peer)), 16},
		{"path", unsafe.Offsetof(e.Path), offPath},
		{"kpath", unsafe.Offsetof(e.Kpath), offKPath},
		{"len(path)", uintptr(len(e.Path)), EventPath},
		{"len(kpath)", uintptr(len(e.Kpath)), EventPath},
		{"sizeof(vigil_binding)", unsafe.Sizeof(vigilVigilBinding{}), 120},
		{"sizeof(vigil_slot)", unsafe.Sizeof(vigilVigilSlot{}), slotSize},
		{"vigil_slot.b", unsafe.Offsetof(vigilVigilSlot{}.B), 8},
		{"len(vigil_binding.addr)", uintptr(len(vigilVigilBinding{}.Addr)), 16},
	} {
		if c.got != c.want {
			t.Errorf("%s: generated %d, decoder uses %d", c.name, c.got, c.want)
		}
	}
}
