// Package version says which vigil this is and what it runs on: the version
// and commit the build stamped in, the build settings the Go toolchain
// recorded (runtime/debug.ReadBuildInfo), the libseccomp it is linked with
// and the kernel it runs on (`vigil version`, `vigil --version`).
package version

import (
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strings"

	seccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"
)

// Version and Commit are set at link time by the Makefile
// (-ldflags "-X github.com/vigilsec/vigil/cmd/vigil/internal/version.Version=...");
// a plain `go build` leaves them empty and Get falls back to the module
// version and the VCS stamp, when the toolchain recorded them.
var (
	Version string
	Commit  string
)

// Info is what `vigil version` prints.
type Info struct {
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Modified  bool   `json:"modified,omitempty"`
	Time      string `json:"commit_time,omitempty"`
	Module    string `json:"module"`
	GoVersion string `json:"go"`
	Platform  string `json:"platform"`
	// Settings are the build settings the toolchain recorded (CGO_ENABLED,
	// -tags, -ldflags, GOAMD64, ...), in its order.
	Settings []Setting `json:"settings,omitempty"`
	// Libseccomp is the version of the libseccomp vigil is linked with, and
	// APILevel the API level it reports on this kernel.
	Libseccomp string `json:"libseccomp"`
	APILevel   uint   `json:"libseccomp_api_level"`
	// Static says the binary has no ELF interpreter: libseccomp and libc
	// are linked in and nothing is loaded from the library path.
	Static bool   `json:"static"`
	Kernel string `json:"kernel"`
}

// Setting is one build setting.
type Setting struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Get collects Info for the running binary.
func Get() Info {
	in := Info{
		Version: Version, Commit: Commit, Module: "github.com/vigilsec/vigil",
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH,
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		in.Module = bi.Main.Path
		if in.Version == "" && bi.Main.Version != "" {
			in.Version = bi.Main.Version
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if in.Commit == "" {
					in.Commit = s.Value
				}
			case "vcs.time":
				in.Time = s.Value
			case "vcs.modified":
				in.Modified = s.Value == "true"
			case "vcs":
			default:
				if s.Value == "" {
					continue // CGO_CFLAGS= and the like say nothing
				}
				in.Settings = append(in.Settings, Setting{s.Key, s.Value})
			}
		}
	}
	if in.Version == "" {
		in.Version = "(devel)"
	}
	maj, min, mic := seccomp.GetLibraryVersion()
	in.Libseccomp = fmt.Sprintf("%d.%d.%d", maj, min, mic)
	// The API level says which kernel features libseccomp found usable
	// here (6: notify with CONTINUE and ADDFD); it probes the kernel.
	if lvl, err := seccomp.GetAPI(); err == nil {
		in.APILevel = lvl
	}
	in.Static = isStatic()
	in.Kernel = kernel()
	return in
}

// Short is the one-line form: "vigil VERSION (COMMIT)".
func (in Info) Short() string {
	s := "vigil " + in.Version
	if in.Commit != "" {
		c := in.Commit
		if len(c) > 12 {
			c = c[:12]
		}
		if in.Modified {
			c += "-dirty"
		}
		s += " (" + c + ")"
	}
	return s
}

// Write prints in as `vigil version` does.
func (in Info) Write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintln(&b, in.Short())
	row := func(k, v string) { fmt.Fprintf(&b, "  %-11s %s\n", k+":", v) }
	row("module", in.Module)
	if in.Commit != "" {
		c := in.Commit
		if in.Time != "" {
			c += " " + in.Time
		}
		if in.Modified {
			c += " (modified)"
		}
		row("commit", c)
	}
	row("go", in.GoVersion+" "+in.Platform)
	link := "dynamic (libseccomp.so.2 and libc from the library path)"
	if in.Static {
		link = "static (no shared libraries)"
	}
	row("linking", link)
	lib := in.Libseccomp
	if in.APILevel != 0 {
		lib += fmt.Sprintf(" (API level %d on this kernel)", in.APILevel)
	}
	row("libseccomp", lib)
	row("kernel", in.Kernel)
	for _, s := range in.Settings {
		row("build", s.Key+"="+s.Value)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON prints in as one JSON object.
func (in Info) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(in)
}

func kernel() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return unix.ByteSliceToString(u.Sysname[:]) + " " + unix.ByteSliceToString(u.Release[:]) + " " +
		unix.ByteSliceToString(u.Machine[:])
}

// isStatic reports whether the running executable has no PT_INTERP program
// header, i.e. the kernel starts it without a dynamic loader.
func isStatic() bool {
	f, err := elf.Open("/proc/self/exe")
	if err != nil {
		exe, err2 := os.Executable()
		if err2 != nil {
			return false
		}
		if f, err = elf.Open(exe); err != nil {
			return false
		}
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return false
		}
	}
	return true
}
