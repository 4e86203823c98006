package loader

import (
	"sync"

	"github.com/rs/zerolog"
)

// The one warning vigil gives when the eBPF programs drop events because
// their ring buffer was full, whichever program (the supervisor's binding
// or observe's) and whichever reader notices: same message, same fields.
// A supervisor's records of bound calls whose event was lost then say
// verified: unconfirmed (docs/design.md §6).
const (
	// LostMessage is the warning's message.
	LostMessage = "eBPF ring buffer full: events lost"
	// FieldLost counts the events lost since the previous warning.
	FieldLost = "lost"
	// FieldLostTotal counts the events lost since the programs were loaded.
	FieldLostTotal = "lost_total"
)

// WarnLost writes the lost-events warning: lost since the previous one,
// total since load.
func WarnLost(log *zerolog.Logger, lost, total uint64) {
	log.Warn().Uint64(FieldLost, lost).Uint64(FieldLostTotal, total).Msg(LostMessage)
}

// LostEvents turns a cumulative lost-event counter into warnings: one per
// increase, however many goroutines look at the counter.
type LostEvents struct {
	mu   sync.Mutex
	seen uint64
}

// Note takes the counter's current total and warns about the events lost
// since the total it last saw; it returns how many (0 when none).
func (t *LostEvents) Note(log *zerolog.Logger, total uint64) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if total <= t.seen {
		return 0
	}
	n := total - t.seen
	t.seen = total
	WarnLost(log, n, total)
	return n
}
