package emulate_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/emulate"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// raceFixture is a watchee's directory where "d" flips, atomically and as
// fast as a racer thread can, between a real directory and a symlink into
// "protected". The watchee may write protected (it owns it): only vigil's
// policy protects it, so only vetting and doing one object keeps it safe.
type raceFixture struct {
	work, protected string
	realFd          int // the real directory, whatever its name
	w               *watchee
	e               *emulate.Emulator
	c               emulate.Caller
	stop            chan struct{}
	wg              sync.WaitGroup
}

func newRaceFixture(t *testing.T) *raceFixture {
	t.Helper()
	_, work := workDir(t)
	f := &raceFixture{work: work, protected: filepath.Join(work, "protected"), stop: make(chan struct{})}
	for _, d := range []string{f.protected, filepath.Join(work, "d"), filepath.Join(work, "out")} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, hostBase, hostBase); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(f.protected, filepath.Join(work, "dl")); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(filepath.Join(work, "d"), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.realFd = fd
	t.Cleanup(func() { unix.Close(fd) })
	f.w = startWatchee(t, childOpts{userns: true, dir: work})
	f.e = newEmulator(t)
	f.c = caller(f.w)
	return f
}

// allowed is the policy: nothing in or at protected.
func (f *raceFixture) allowed(p string) bool {
	return p != f.protected && !strings.HasPrefix(p, f.protected+"/")
}

func (f *raceFixture) race(t *testing.T) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		d, dl := filepath.Join(f.work, "d"), filepath.Join(f.work, "dl")
		for {
			select {
			case <-f.stop:
				return
			default:
			}
			if err := unix.Renameat2(unix.AT_FDCWD, d, unix.AT_FDCWD, dl, unix.RENAME_EXCHANGE); err != nil {
				t.Errorf("racer: %v", err)
				return
			}
		}
	}()
	t.Cleanup(func() {
		close(f.stop)
		f.wg.Wait()
	})
}

// put makes name exist with content in dir (a directory fd or path).
func putAt(t *testing.T, dirfd int, name, content string) {
	t.Helper()
	fd, err := unix.Openat(dirfd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(fd, []byte(content)); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if err := unix.Fchownat(dirfd, name, hostBase, hostBase, 0); err != nil {
		t.Fatal(err)
	}
}

// Rounds of a race run: at least raceMin, then on until the run has shown
// what it must (both outcomes of the race, or a naive bypass), up to
// raceMax, so that a loaded machine slows the test instead of failing it.
const (
	raceMin = 1500
	raceMax = 30000
)

type raceStats struct{ done, denied, touched int }

// shown reports whether a run demonstrated what it is for: the naive mode a
// bypass, the real one both a call let through and a call denied (a secure
// run keeps going to raceMin regardless, looking for a bypass).
func (s raceStats) shown(naive bool) bool {
	if naive {
		return s.touched > 0
	}
	return s.done > 0 && s.denied > 0
}

func TestPathRaceNeverTouchesProtectedDirectory(t *testing.T) {
	testenv.RequirePrivileged(t)
	f := newRaceFixture(t)
	f.race(t)
	protFd, err := unix.Open(f.protected, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(protFd)
	victimGone := func() bool {
		var st unix.Stat_t
		return unix.Fstatat(protFd, "victim", &st, unix.AT_SYMLINK_NOFOLLOW) != nil
	}

	// The operations under test, on "d/victim".
	ops := map[string]func(p *emulate.Prepared) (emulate.Result, error){
		"unlink": func(p *emulate.Prepared) (emulate.Result, error) { return f.e.Unlinkat(p, 0) },
		"rename": func(p *emulate.Prepared) (emulate.Result, error) {
			dst, err := f.e.PrepareAt(f.c, unix.AT_FDCWD, "out/moved", emulate.LookupParent)
			if err != nil {
				return emulate.Result{}, err
			}
			defer dst.Close()
			return f.e.Renameat2(p, dst, 0)
		},
		"chmod": func(p *emulate.Prepared) (emulate.Result, error) {
			// An object call: prepared with LookupFollow below.
			return f.e.Fchmodat(p, 0o600)
		},
	}
	for _, name := range []string{"unlink", "rename", "chmod"} {
		op := ops[name]
		lookup := emulate.LookupParent
		if name == "chmod" {
			lookup = emulate.LookupFollow
		}
		run := func(naive bool) raceStats {
			var s raceStats
			for i := 0; i < raceMax && !(i >= raceMin && s.shown(naive)); i++ {
				if victimGone() {
					putAt(t, protFd, "victim", "protected")
				}
				_ = unix.Fchmodat(protFd, "victim", 0o644, 0)
				putAt(t, f.realFd, "victim", "real")
				p, err := f.e.PrepareAt(f.c, unix.AT_FDCWD, "d/victim", lookup)
				if err != nil {
					continue // ENOENT while the name is mid-swap
				}
				if !f.allowed(p.Path) {
					s.denied++
					p.Close()
					continue
				}
				if naive {
					// The bug this package exists to avoid: vet one
					// resolution, act on another.
					p.Close()
					if p, err = f.e.PrepareAt(f.c, unix.AT_FDCWD, "d/victim", lookup); err != nil {
						continue
					}
				}
				r, err := op(p)
				p.Close()
				if err == nil && r.Errno == 0 {
					s.done++
				}
				var st unix.Stat_t
				if victimGone() || (unix.Fstatat(protFd, "victim", &st, 0) == nil && st.Mode&0o777 != 0o644) {
					s.touched++
				}
			}
			return s
		}
		t.Run(name, func(t *testing.T) {
			s := run(false)
			t.Logf("vet-and-do-one-object: %d done, %d denied, %d touched the protected directory", s.done, s.denied, s.touched)
			if s.touched != 0 {
				t.Errorf("the protected directory was touched %d times", s.touched)
			}
			if s.done == 0 || s.denied == 0 {
				t.Errorf("the race never let a call through (%d) or never hit protected (%d): the test proves nothing", s.done, s.denied)
			}
			n := run(true)
			t.Logf("naive re-resolution: %d done, %d denied, %d touched the protected directory", n.done, n.denied, n.touched)
			if n.touched == 0 {
				t.Errorf("the naive mode never touched the protected directory: the race has no teeth")
			}
		})
	}
}

func TestOpenRaceNeverYieldsDeniedFile(t *testing.T) {
	testenv.RequirePrivileged(t)
	f := newRaceFixture(t)
	f.race(t)
	protFd, err := unix.Open(f.protected, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(protFd)
	putAt(t, protFd, "secret", "SECRET")
	putAt(t, f.realFd, "secret", "public")

	for _, tc := range []struct {
		name  string
		flags int
	}{
		{"read", unix.O_RDONLY},
		{"truncate", unix.O_WRONLY | unix.O_TRUNC | unix.O_CREAT},
	} {
		run := func(naive bool) raceStats {
			var s raceStats
			how := emulate.OpenHowFromFlags(tc.flags, 0o644)
			buf := make([]byte, 16)
			for i := 0; i < raceMax && !(i >= raceMin && s.shown(naive)); i++ {
				putAt(t, f.realFd, "secret", "public")
				p, err := f.e.PrepareOpen(f.c, unix.AT_FDCWD, "d/secret", how)
				if err != nil {
					continue
				}
				if !f.allowed(p.Path) {
					s.denied++
					p.Close()
					continue
				}
				if naive {
					p.Close()
					if p, err = f.e.PrepareOpen(f.c, unix.AT_FDCWD, "d/secret", how); err != nil {
						continue
					}
				}
				r, err := f.e.Open(p)
				p.Close()
				if err != nil || r.Errno != 0 {
					continue
				}
				s.done++
				var st unix.Stat_t
				_ = unix.Fstat(r.Fd, &st)
				if tc.flags == unix.O_RDONLY {
					n, _ := unix.Pread(r.Fd, buf, 0)
					if string(buf[:n]) == "SECRET" {
						s.touched++
					}
				}
				unix.Close(r.Fd)
				if err := unix.Fstatat(protFd, "secret", &st, 0); err != nil || st.Size != 6 {
					s.touched++
					putAt(t, protFd, "secret", "SECRET")
				}
			}
			return s
		}
		t.Run(tc.name, func(t *testing.T) {
			s := run(false)
			t.Logf("vet-and-do-one-object: %d opened, %d denied, %d reached the denied file", s.done, s.denied, s.touched)
			if s.touched != 0 {
				t.Errorf("an emulated open reached the denied file %d times", s.touched)
			}
			if s.done == 0 || s.denied == 0 {
				t.Errorf("the race never let an open through (%d) or never hit the denied file (%d)", s.done, s.denied)
			}
			n := run(true)
			t.Logf("naive re-resolution: %d opened, %d denied, %d reached the denied file", n.done, n.denied, n.touched)
			if n.touched == 0 {
				t.Errorf("the naive mode never reached the denied file: the race has no teeth")
			}
		})
	}
}
