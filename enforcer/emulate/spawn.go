package emulate

import (
	"os/exec"
	"runtime"
	"sync"
)

// Workers are forked from one thread of vigil's own, never from the thread
// that asked for them. Go's fork saves the forking thread's signal mask as
// the one the child restores, and a receiver may block every signal while
// it serves (enforcer's quiet receivers): a worker forked there would start
// with its signals blocked. The spawner thread is locked for the life of
// the process and never blocks a signal, and since PR_SET_PDEATHSIG fires
// when the forking *thread* exits, the workers' parent-death signal fires
// only when vigil does.
var (
	spawnOnce  sync.Once
	spawnQueue chan spawnRequest
)

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

// startOnSpawner starts cmd from the spawner thread and returns Start's error.
func startOnSpawner(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnQueue = make(chan spawnRequest)
		go serveSpawns(spawnQueue)
	})
	r := spawnRequest{cmd: cmd, done: make(chan error, 1)}
	spawnQueue <- r
	return <-r.done
}

// serveSpawns runs on a thread it never unlocks. A goroutine started with
// go runs on an unlocked thread, whose mask is the runtime's own (quiet
// receivers restore theirs before they unlock).
func serveSpawns(q <-chan spawnRequest) {
	runtime.LockOSThread()
	for r := range q {
		r.done <- r.cmd.Start()
	}
}
