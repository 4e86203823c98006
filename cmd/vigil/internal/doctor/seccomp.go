package doctor

import (
	"golang.org/x/sys/unix"
)

// probeSeccompLocal runs the seccomp probes that need no listener: the
// notification struct sizes and whether the kernel knows the USER_NOTIF
// return action. Both are queries without side effects.
func probeSeccompLocal(found map[string]result) {
	s, err := getNotifSizes()
	if err != nil {
		found[SeccompUserNotif] = no("SECCOMP_GET_NOTIF_SIZES: %s", errText(err))
		return
	}
	if err := actionAvailable(unix.SECCOMP_RET_USER_NOTIF); err != nil {
		found[SeccompUserNotif] = no("SECCOMP_GET_ACTION_AVAIL(USER_NOTIF): %s", errText(err))
		return
	}
	found[SeccompUserNotif] = yes("notif %d, resp %d, data %d bytes", s.notif, s.resp, s.data)
}
