package audit

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
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
