package observe

import (
	"encoding/binary"
	"io"
	"testing"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/loader"
)

// syntheticOpen builds the record of a successful openat of path whose
// kernel path is the same (the common, literal case).
func syntheticOpen(tb testing.TB, path string) []byte {
	b := make([]byte, loader.ObsHeaderSize+2*len(path))
	le := binary.LittleEndian
	le.PutUint64(b[0:], 1_000_000)           // ts_enter
	le.PutUint64(b[8:], 1_004_321)           // ts_exit
	le.PutUint64(b[16:], 3)                  // ret
	le.PutUint64(b[24:], uint64(0xffffff9c)) // AT_FDCWD
	le.PutUint64(b[40:], unix.O_RDONLY|unix.O_CLOEXEC)
	le.PutUint64(b[72:], 254<<20) // dev
	le.PutUint64(b[80:], 1234)    // ino
	le.PutUint32(b[160:], 4242)   // tgid
	le.PutUint32(b[164:], 4242)   // tid
	le.PutUint32(b[168:], unix.SYS_OPENAT)
	le.PutUint32(b[172:], uint32(loader.FlagObsHasRet|loader.FlagObsHasPath|loader.FlagObsHasObject|loader.FlagObsStartFound))
	le.PutUint32(b[184:], unix.S_IFREG|0o644)
	le.PutUint16(b[192:], uint16(len(path)))
	le.PutUint16(b[194:], uint16(len(path)))
	b[198] = byte(loader.StartRoot)
	copy(b[224:], "workload")
	copy(b[loader.ObsHeaderSize:], path)
	copy(b[loader.ObsHeaderSize+len(path):], path)
	if _, err := loader.ParseCall(b); err != nil {
		tb.Fatal(err)
	}
	return b
}

// BenchmarkHandle is the reader's per-record cost: parse, judge (the
// literal case), count, encode.
func BenchmarkHandle(b *testing.B) {
	rec := syntheticOpen(b, "/tmp/vigil-bench-123/allowed")
	o, err := New(Config{Out: io.Discard, Log: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c, _ := loader.ParseCall(rec)
		o.Handle(c)
		if i%256 == 255 {
			o.CaughtUp()
		}
	}
}

// BenchmarkHandleSummary is the same without encoding (-c).
func BenchmarkHandleSummary(b *testing.B) {
	rec := syntheticOpen(b, "/tmp/vigil-bench-123/allowed")
	o, err := New(Config{Log: zerolog.Nop()})
	if err != nil {
		b.Fatal(err)
	}
	defer o.Close()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c, _ := loader.ParseCall(rec)
		o.Handle(c)
		if i%256 == 255 {
			o.CaughtUp()
		}
	}
}
