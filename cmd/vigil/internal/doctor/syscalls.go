package doctor

import (
	"fmt"

	seccomp "github.com/seccomp/libseccomp-golang"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/enforcer/filter"
)

// probeSyscalls tries openat2 the way the resolver uses it: an O_PATH open
// with resolve flags. ENOSYS (no openat2) and EINVAL/E2BIG (no such resolve
// flag) both mean vigil cannot resolve paths.
func probeSyscalls(found map[string]result) {
	fd, err := unix.Openat2(unix.AT_FDCWD, "/", &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_CLOEXEC | unix.O_DIRECTORY,
		Resolve: unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_IN_ROOT,
	})
	if err != nil {
		found[Openat2] = no("openat2(O_PATH, RESOLVE_NO_MAGICLINKS|RESOLVE_IN_ROOT): %s", errText(err))
		return
	}
	unix.Close(fd)
	found[Openat2] = yes("O_PATH with RESOLVE_NO_MAGICLINKS|RESOLVE_IN_ROOT")
}

// probeLibseccomp compiles a filter with the library exactly as vigil does
// and reports the library's version and whether it can export in memory.
func probeLibseccomp(found map[string]result) {
	major, minor, micro := seccomp.GetLibraryVersion()
	api, apiErr := seccomp.GetAPI()
	version := fmt.Sprintf("%d.%d.%d, API level %d", major, minor, micro, api)
	if apiErr != nil {
		version = fmt.Sprintf("%d.%d.%d, API level unknown (%v)", major, minor, micro, apiErr)
	}
	if _, err := filter.Compile(filter.Spec{Notify: []int{unix.SYS_OPENAT}}); err != nil {
		found[Libseccomp] = no("%s; compiling a filter: %v", version, err)
		return
	}
	found[Libseccomp] = yes("%s; %s", version, exportMem())
}

// exportMem says whether the library exports a filter in memory. vigil does
// not need it (it exports through a memfd) but libseccomp 2.5 lacks it.
func exportMem() string {
	f, err := seccomp.NewFilter(seccomp.ActAllow)
	if err != nil {
		return "in-memory export untested"
	}
	defer f.Release()
	if _, err := f.ExportBPFMem(); err != nil {
		return "no in-memory export (vigil exports through a memfd)"
	}
	return "in-memory export"
}
