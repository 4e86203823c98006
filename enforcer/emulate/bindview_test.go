package emulate_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// TestBindMatchesWatcheeOwnCall: an AF_UNIX bind vigil performs through its
// private view gets the result, the socket name and the socket file the
// watchee's own bind of the same spelling gets, for bare names, names with
// directories and names laid out through a magic link, in each kind of
// namespace a watchee lives in. `unshare -Ur` inside a container leaves the
// worker without privilege over the mount namespace's owner: vigil lends it
// the clone of the parent's mount and the procfs, without which every
// spelling with a directory was refused there.
func TestBindMatchesWatcheeOwnCall(t *testing.T) {
	testenv.RequirePrivileged(t)
	for _, tc := range []struct {
		name  string
		opts  func(work string) childOpts
		owner int
	}{
		{"vigils-namespaces", func(work string) childOpts { return childOpts{dir: work} }, 0},
		{"userns", func(work string) childOpts { return childOpts{userns: true, dir: work} }, hostBase},
		{"userns-in-outer-mounts", func(work string) childOpts {
			return childOpts{dir: work, wrap: userNSInOuterMounts}
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, work := workDir(t)
			for _, d := range []string{work, filepath.Join(work, "d"), filepath.Join(work, "d", "e")} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.Chown(d, tc.owner, tc.owner); err != nil {
					t.Fatal(err)
				}
			}
			w := startWatchee(t, tc.opts(work))
			e := newEmulator(t)
			c := caller(w)
			for i, dir := range []string{"", "d/", "d/e/../", work + "/d/", work + "/d/e/../"} {
				own, emu := fmt.Sprintf("%sown%d.sock", dir, i), fmt.Sprintf("%semu%d.sock", dir, i)
				ownFd := w.must("unixsocket")
				want := w.do("bind %s %s", ownFd, own)
				emuFd := w.must("unixsocket")
				got := emulatedBind(t, e, c, dec(emuFd), emu)
				if got != want || got != "ok" {
					t.Fatalf("bind %q: emulated %s, watchee's own %q %s", emu, got, own, want)
				}
				if name := w.must("sockname %s", emuFd); name != emu {
					t.Errorf("emulated bind of %q named the socket %q", emu, name)
				}
				compareStat(t, resolveIn(work, own), resolveIn(work, emu))
			}
			// A spelling that enters the socket's directory twice cannot
			// be laid out: refused, and nothing made.
			emu := "d/e/../../d/e/../twice.sock"
			got := emulatedBind(t, e, c, dec(w.must("unixsocket")), emu)
			if !strings.HasPrefix(got, "fail "+emulate.ErrUnsupported.Error()) {
				t.Errorf("bind %q = %s, want a refusal", emu, got)
			}
			if _, err := os.Lstat(resolveIn(work, emu)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the refused bind of %q made a file: %v", emu, err)
			}
		})
	}
}

// resolveIn returns the host path of spelled, relative to work or absolute.
func resolveIn(work, spelled string) string {
	if filepath.IsAbs(spelled) {
		return filepath.Clean(spelled)
	}
	return filepath.Join(work, spelled)
}

// emulatedBind binds the watchee's socket fd to the AF_UNIX path spelled as
// vigil does (socketbind.go in package enforcer).
func emulatedBind(t testing.TB, e *emulate.Emulator, c emulate.Caller, fd int, spelled string) string {
	t.Helper()
	sock, err := e.PrepareBindSocket(c, fd)
	if err != nil {
		return prepErr(err)
	}
	defer sock.Close()
	parent, err := e.PrepareAt(c, unix.AT_FDCWD, spelled, emulate.LookupParent)
	if err != nil {
		return prepErr(err)
	}
	defer parent.Close()
	addr := binary.NativeEndian.AppendUint16(nil, unix.AF_UNIX)
	addr = append(addr, spelled...)
	return outcome(e.Bind(sock, parent, spelled, addr))
}
