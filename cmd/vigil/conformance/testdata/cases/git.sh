# git: init, commit, clone, commit in the clone, fetch, gc — 20 times, each
# in a fresh directory. git writes through lock files renamed into place,
# hard links objects on a local clone and repacks on gc.
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
for i in $(seq 1 20); do
	d=r$i
	x git init -q -b main "$d/origin"
	printf 'file %s\n' "$i" >"$d/origin/a.txt"
	mkdir -p "$d/origin/sub"
	printf '#!/bin/sh\necho %s\n' "$i" >"$d/origin/sub/run.sh"
	chmod 0755 "$d/origin/sub/run.sh"
	ln -s a.txt "$d/origin/link"
	x git -C "$d/origin" add -A
	x git -C "$d/origin" commit -q -m "first $i"
	x git clone -q "$d/origin" "$d/clone"
	printf 'more %s\n' "$i" >>"$d/clone/a.txt"
	x git -C "$d/clone" commit -q -am "second $i"
	x git -C "$d/clone" push -q origin HEAD:refs/heads/from-clone
	x git -C "$d/origin" log --format="%H %s" -n 2 from-clone
	x git -C "$d/clone" gc -q
	x git -C "$d/origin" gc -q --prune=now
	x git -C "$d/clone" fsck --no-progress
	x git -C "$d/clone" status --porcelain
done
finish
