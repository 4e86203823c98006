package bench

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// progress draws a one-line progress bar (carriage return, no newline) on a
// terminal. A nil writer draws nothing.
type progress struct {
	w     io.Writer
	total int
	done  int
	start time.Time
}

const barWidth = 24

func newProgress(w io.Writer, steps int) *progress {
	return &progress{w: w, total: steps, start: time.Now()}
}

// show draws the bar with label for the step in progress.
func (p *progress) show(label string) {
	if p.w == nil || p.total == 0 {
		return
	}
	f := float64(p.done) / float64(p.total)
	filled := int(f * barWidth)
	eta := ""
	if f > 0.02 {
		left := time.Duration(float64(time.Since(p.start)) * (1 - f) / f)
		eta = " · ETA " + left.Round(time.Second).String()
	}
	fmt.Fprintf(p.w, "\r\033[K[%s%s] %3.0f%% %s%s",
		strings.Repeat("=", filled), strings.Repeat(" ", barWidth-filled), 100*f, label, eta)
}

// advance marks one step done.
func (p *progress) advance() { p.done++ }

// finish clears the bar.
func (p *progress) finish() {
	if p.w != nil && p.total > 0 {
		fmt.Fprint(p.w, "\r\033[K")
	}
}
