package view

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestEntryWithInoFindsTheNameByInode: among many entries (more than one
// getdents buffer), the one with the inode asked for is found; an inode the
// directory does not hold is ErrNoName.
func TestEntryWithInoFindsTheNameByInode(t *testing.T) {
	dir := t.TempDir()
	want := ""
	var wantIno uint64
	for i := 0; i < 2000; i++ {
		name := filepath.Join(dir, strings.Repeat("n", 40)+string(rune('a'+i%26))+strings.Repeat("x", i%50)+"-"+strconv.Itoa(i))
		if err := os.WriteFile(name, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if i == 1777 {
			var st unix.Stat_t
			if err := unix.Stat(name, &st); err != nil {
				t.Fatal(err)
			}
			want, wantIno = filepath.Base(name), st.Ino
		}
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	got, err := entryWithIno(fd, wantIno)
	if err != nil || got != want {
		t.Fatalf("entryWithIno = %q, %v; want %q", got, err, want)
	}
	if _, err := entryWithIno(fd, 1<<62); !errors.Is(err, ErrNoName) {
		t.Fatalf("an inode the directory does not hold: %v, want ErrNoName", err)
	}
}

// TestClimbLongNamesADirectoryDeeperThanPathMax: a directory whose path the
// kernel no longer prints is named as it would be with a longer buffer.
func TestClimbLongNamesADirectoryDeeperThanPathMax(t *testing.T) {
	dir := t.TempDir()
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	comp := strings.Repeat("d", 200)
	want := dir
	for i := 0; i < 30; i++ {
		if err := unix.Mkdirat(fd, comp, 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, comp, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd, want = next, want+"/"+comp
	}
	defer unix.Close(fd)
	if _, err := readlinkFd(fd); err != unix.ENAMETOOLONG {
		t.Fatalf("readlink of a %d-byte path: %v, want ENAMETOOLONG", len(want), err)
	}
	got, err := climbLong(fd)
	if err != nil || got != want {
		t.Fatalf("climbLong = %d bytes, %v; want %d bytes", len(got), err, len(want))
	}
}
