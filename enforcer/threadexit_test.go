package enforcer_test

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/vigilsec/vigil/enforcer/testenv"
)

// TestTheWatcheeOutlivesVigilsEndingThreads: the watchee carries
// PR_SET_PDEATHSIG, which fires when the thread that forked it exits, and
// vigil ends threads on purpose (the emulator's bind threads exit locked).
// While the watchee starts and sleeps, vigil's process ends thousands of
// threads —
// the forking thread among them, had the watchee been forked from an
// ordinary one: it was killed (exit 137) in a kernel-matrix guest. The
// watchee must live on and exit 0.
func TestTheWatcheeOutlivesVigilsEndingThreads(t *testing.T) {
	testenv.RequirePrivileged(t)
	pol := mustPolicy(t, "version: 1\nrules:\n  - syscalls: [bind]\n    match: { addr: [\"unix:/var/empty/vigil-denied/*\"] }\n    action: deny\n")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				done := make(chan struct{})
				go func() {
					runtime.LockOSThread() // never unlocked: the thread ends
					close(done)
				}()
				<-done
				time.Sleep(100 * time.Microsecond)
			}
		}()
	}
	r := supervise(t, pol, []string{"sh", "-c", "sleep 1.5; echo alive"})
	close(stop)
	wg.Wait()
	if r.code != 0 || r.stdout != "alive\n" {
		t.Fatalf("the watchee died while vigil ended threads: exit %d, %q", r.code, r.stdout)
	}
}
