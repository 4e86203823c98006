package loader

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

// TestLostEventsWarnsOncePerLoss: however many readers look at the
// counter, each loss is warned about once, with the one message and fields.
func TestLostEventsWarnsOncePerLoss(t *testing.T) {
	var buf bytes.Buffer
	log := zerolog.New(&buf)
	var lost LostEvents
	noted := uint64(0)
	for _, total := range []uint64{0, 5, 5, 12, 3} {
		noted += lost.Note(&log, total)
	}
	// Two readers seeing the same total at once: one warning.
	var wg sync.WaitGroup
	var concurrent [8]uint64
	for i := range concurrent {
		wg.Add(1)
		go func() {
			defer wg.Done()
			concurrent[i] = lost.Note(&log, 20)
		}()
	}
	wg.Wait()
	for _, n := range concurrent {
		noted += n
	}
	if noted != 20 {
		t.Errorf("Note returned %d lost in all, want 20", noted)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 warnings, got %q", lines)
	}
	for i, want := range []struct{ lost, total uint64 }{{5, 5}, {7, 12}, {8, 20}} {
		var w struct {
			Level, Message  string
			Lost, LostTotal *uint64
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatal(err)
		}
		_ = json.Unmarshal(m["level"], &w.Level)
		_ = json.Unmarshal(m["message"], &w.Message)
		_ = json.Unmarshal(m[FieldLost], &w.Lost)
		_ = json.Unmarshal(m[FieldLostTotal], &w.LostTotal)
		if len(m) != 4 || w.Level != "warn" || w.Message != LostMessage || w.Lost == nil || *w.Lost != want.lost ||
			w.LostTotal == nil || *w.LostTotal != want.total {
			t.Errorf("warning %d: %s, want lost %d of %d", i, lines[i], want.lost, want.total)
		}
	}
}
