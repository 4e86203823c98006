package audit

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/vigilsec/vigil/enforcer/testenv"
)

func TestReopenSendsLaterRecordsToTheNewFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.log")
	open := func() *os.File {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	old := open()
	s := NewSink(old)
	log := NewLogger(s, zerolog.InfoLevel)
	log.Info().Msg("before")
	// logrotate's default: rename, then tell the daemon.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Reopen(open()); err != nil {
		t.Fatalf("Reopen: %v", err)
	}
	if _, err := old.Write([]byte("x")); err == nil {
		t.Fatal("the old file is still open after Reopen")
	}
	log.Info().Msg("after")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{path + ".1": "before", path: "after"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(lines) != 1 || !strings.Contains(lines[0], `"message":"`+want+`"`) {
			t.Fatalf("%s holds %q, want one %q record", name, b, want)
		}
	}
}

// TestSinkFlushesEachBurstWithoutClose: the flusher runs only after a
// record arrives in an empty buffer; every burst, the first and the ones
// after a flush, reaches the writer without Close or Flush.
func TestSinkFlushesEachBurstWithoutClose(t *testing.T) {
	var w testenv.Buffer
	s := NewSink(&w)
	defer s.Close()
	for i, burst := range [][]string{{"one"}, {"two", "three"}, {"four"}} {
		for _, rec := range burst {
			if _, err := s.Write([]byte(rec + "\n")); err != nil {
				t.Fatal(err)
			}
		}
		want := strings.Join(slices.Concat([][]string{{"one"}, {"two", "three"}, {"four"}}[:i+1]...), "\n") + "\n"
		deadline := time.Now().Add(10 * time.Second)
		for w.String() != want {
			if time.Now().After(deadline) {
				t.Fatalf("after burst %d the writer holds %q, want %q", i+1, w.String(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
