package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"
)

// MemoryMechanism is the mechanism whose memory is measured: vigil in its
// default mode, every open bound in the kernel.
const MemoryMechanism = "vigil-allow-bound"

// Memory measurement parameters.
const (
	// maxMemoryRounds is how many times the calls are split up: vigil's
	// RSS at rest after each round is one point of the curve that shows
	// growth, or none.
	maxMemoryRounds = 10
	// rssInterval is how often VmRSS is read during a round.
	rssInterval = 20 * time.Millisecond
	// settle lets vigil's notify loop and Go runtime go idle before an
	// "at rest" reading.
	settle = 200 * time.Millisecond
	// roundTimeout bounds one round; a round of 100,000 bound opens takes
	// seconds on a loaded 2-CPU machine.
	roundTimeout = 5 * time.Minute
)

// Memory is vigil's resident set size (/proc/PID/status VmRSS of the vigil
// process, in KiB) over one long run: at rest after start, under the
// open-threads-8 load, and at rest after Calls trapped calls.
type Memory struct {
	Workload  string `json:"workload"`
	Mechanism string `json:"mechanism"`
	Threads   int    `json:"threads"`
	// Calls is the number of trapped calls (opens) made in all.
	Calls int `json:"calls"`
	// RestKiB is VmRSS once the watchee runs, before the load, and
	// RestAnonKiB its anonymous part (RssAnon: heap and stacks; the rest
	// is mostly vigil's executable, mapped from the page cache).
	RestKiB     int `json:"rest_kib"`
	RestAnonKiB int `json:"rest_anon_kib"`
	// LoadKiBMedian and LoadKiBMax summarize the readings taken every
	// 20 ms while the threads ran.
	LoadKiBMedian int `json:"load_kib_median"`
	LoadKiBMax    int `json:"load_kib_max"`
	// LoadSamples is the number of those readings.
	LoadSamples int `json:"load_samples"`
	// AfterKiB is VmRSS at rest after the last round, AfterAnonKiB its
	// anonymous part.
	AfterKiB     int `json:"after_kib"`
	AfterAnonKiB int `json:"after_anon_kib"`
	// PeakKiB is the largest RSS vigil had: VmHWM at the end, or a
	// larger reading (the kernel updates VmHWM lazily).
	PeakKiB int `json:"peak_kib"`
	// GrowthKiB is AfterKiB minus the RSS at rest after the first round:
	// what the later rounds' calls added, ~0 when flat. GrowthAnonKiB is
	// the same of RssAnon, which the page cache does not blur.
	GrowthKiB     int `json:"growth_kib"`
	GrowthAnonKiB int `json:"growth_anon_kib"`
	// OpsPerSec is the throughput over all rounds.
	OpsPerSec float64 `json:"ops_per_sec"`
	// Rounds is the RSS at rest after each round.
	Rounds []MemoryRound `json:"rounds"`
}

// MemoryRound is vigil's RSS, and its anonymous part, at rest after Calls
// trapped calls in all.
type MemoryRound struct {
	Calls   int `json:"calls"`
	RSSKiB  int `json:"rss_kib"`
	AnonKiB int `json:"anon_kib"`
}

// memoryRounds returns the number of rounds calls are split into.
func memoryRounds(calls int) int { return max(1, min(maxMemoryRounds, calls)) }

// measureMemory runs one vigil of mechanism m around the serve workload
// with MemoryWorkload's threads, makes cfg.MemoryCalls trapped calls in
// rounds, and reads vigil's RSS at rest, during the rounds and after them.
func (b *bencher) measureMemory(ctx context.Context, m Mechanism) (*Memory, error) {
	w, err := selectWorkloads([]string{MemoryWorkload})
	if err != nil {
		return nil, err
	}
	mem := &Memory{Workload: MemoryWorkload, Mechanism: m.Name, Threads: w[0].Threads}
	b.prog.show("memory · starting vigil")
	s, err := b.env.startSupervised(ctx, m, mem.Threads)
	if err != nil {
		return nil, err
	}
	stopped := false
	defer func() {
		if !stopped {
			s.kill()
		}
	}()
	time.Sleep(settle)
	rest, err := readMemInfo(s.pid())
	if err != nil {
		return nil, err
	}
	mem.RestKiB, mem.RestAnonKiB = rest.rss, rest.anon

	rounds := memoryRounds(b.cfg.MemoryCalls)
	per := (b.cfg.MemoryCalls + rounds - 1) / rounds
	var load []float64
	var busy time.Duration
	for i := range rounds {
		b.prog.show(fmt.Sprintf("memory · round %d/%d · %d calls on %d threads", i+1, rounds, per, mem.Threads))
		samples, d, err := b.memoryRound(ctx, s, per)
		if err != nil {
			return nil, fmt.Errorf("round %d: %w", i+1, err)
		}
		busy += d
		load = append(load, samples...)
		mem.Calls += per
		mi, err := readMemInfo(s.pid())
		if err != nil {
			return nil, err
		}
		mem.Rounds = append(mem.Rounds, MemoryRound{Calls: mem.Calls, RSSKiB: mi.rss, AnonKiB: mi.anon})
		b.prog.advance()
	}
	time.Sleep(settle)
	after, err := readMemInfo(s.pid())
	if err != nil {
		return nil, err
	}
	stopped = true
	if err := s.stop(); err != nil {
		return nil, err
	}
	mem.AfterKiB, mem.AfterAnonKiB = after.rss, after.anon
	mem.GrowthKiB = after.rss - mem.Rounds[0].RSSKiB
	mem.GrowthAnonKiB = after.anon - mem.Rounds[0].AnonKiB
	mem.LoadSamples = len(load)
	mem.LoadKiBMedian = int(math.Round(median(load)))
	mem.LoadKiBMax = int(slices.Max(load))
	mem.PeakKiB = max(after.hwm, mem.LoadKiBMax, mem.RestKiB, mem.AfterKiB)
	for _, r := range mem.Rounds {
		mem.PeakKiB = max(mem.PeakKiB, r.RSSKiB)
	}
	if busy > 0 {
		mem.OpsPerSec = math.Round(float64(mem.Calls) / busy.Seconds())
	}
	return mem, nil
}

// memoryRound has the watchee make n opens over its threads and reads
// vigil's RSS every rssInterval meanwhile (at least once). Every open must
// be allowed. It returns the readings and how long the round took.
func (b *bencher) memoryRound(ctx context.Context, s *supervised, n int) ([]float64, time.Duration, error) {
	type reading struct {
		kib []float64
		err error
	}
	stop := make(chan struct{})
	got := make(chan reading, 1)
	start := time.Now()
	go func() {
		var r reading
		t := time.NewTicker(rssInterval)
		defer t.Stop()
		for {
			mi, err := readMemInfo(s.pid())
			if err != nil {
				r.err = err
				got <- r
				return
			}
			r.kib = append(r.kib, float64(mi.rss))
			select {
			case <-stop:
				got <- r
				return
			case <-t.C:
			}
		}
	}()
	o, err := s.round(ctx, n, roundTimeout)
	d := time.Since(start)
	close(stop)
	r := <-got
	if err != nil {
		return nil, 0, err
	}
	if err := checkOutcome(o, n, "allowed"); err != nil {
		return nil, 0, err
	}
	if r.err != nil {
		return nil, 0, r.err
	}
	return r.kib, d, nil
}
