// Package view names the objects a watchee's syscalls act on the way a
// policy's author names them: by where they sit in the *reference view*, the
// filesystem as supervision found it (vigil's own root and mount namespace for
// `vigil run`, the container's root and mount namespace at its handoff for
// `vigil agent`, the new namespace's initial copy for `vigil run --userns`).
// See docs/reference-view.md.
//
// A watchee can give an object another name: chroot(2), pivot_root(2), a new
// mount namespace with bind mounts, or a mount moved in place. The object is
// the same; only its name changed. So a path rule is never matched on the name
// the watchee used, nor on the name the kernel prints for the watchee, but on
// the object's name in the reference view:
//
//	fast: the object's mount was in the reference view when it was captured
//	      and no watchee has changed any mount topology since (Settled), or
//	      that very mount still sits where it did: the kernel's own path of
//	      the object, as vigil reads it, is its reference name.
//	slow: the object is on another mount (a bind mount, a copy in a new
//	      namespace, a detached tree): its path inside its filesystem (the
//	      mount's root from mountinfo plus the directory chain from the
//	      mount's root to the object) is mapped through the reference mounts
//	      of the same filesystem.
//
// Objects on filesystems the reference view did not have (a fresh tmpfs, a new
// procfs) have no reference name; they keep the name the watchee sees, since
// no rule could have named them. Stacking filesystems that expose another
// filesystem's files under new names (overlayfs, aufs, shiftfs, ecryptfs)
// mounted after supervision began are refused (ErrStacked): vigil cannot name
// their layers reliably, so it fails closed.
package view
