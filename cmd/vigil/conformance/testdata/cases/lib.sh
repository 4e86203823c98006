# Sourced by every conformance case. A case runs in its own empty directory
# (the current one), once bare and once under each policy; the suite compares
# stdout, stderr, the exit status and the directory's tree afterwards.
#
# x runs one step and, when it fails, says so on stdout and counts it: a step
# that fails only under vigil shows up in the diff with its exit status, and
# the steps after it still run, so one diff shows every difference.
fails=0
x() {
	"$@"
	local rc=$?
	if [ "$rc" -ne 0 ]; then
		echo "exit $rc: $*"
		fails=$((fails + 1))
	fi
	return 0
}

# finish exits with the number of failed steps.
finish() {
	exit "$fails"
}

# stamp sets the mtime of every path under its arguments (symlinks
# themselves, not their targets) to one fixed instant, so that programs
# that preserve times produce the same tree in every run.
stamp() {
	find "$@" -depth -exec touch -h -d @1700000000 {} +
}

# mktree makes a small tree with the kinds of entries and metadata the
# archive and copy tools must carry over: directories with 0755, 0750 and
# 0700 modes, files with 0644, 0600, 0755 and setuid modes, several owners,
# relative, absolute and dangling symlinks, a hard link, a FIFO, an empty
# file, a file with a space and one with a newline in its name.
mktree() {
	local d=$1
	mkdir -p "$d/a/b/c" "$d/priv" "$d/group" "$d/empty"
	chmod 0755 "$d" "$d/a" "$d/a/b" "$d/a/b/c"
	chmod 0700 "$d/priv"
	chmod 0750 "$d/group"
	printf 'hello\n' >"$d/a/hello.txt"
	printf 'secret\n' >"$d/priv/key"
	chmod 0600 "$d/priv/key"
	printf '#!/bin/sh\necho run\n' >"$d/a/b/run.sh"
	chmod 0755 "$d/a/b/run.sh"
	printf 'suid\n' >"$d/a/b/c/suid"
	chmod 4755 "$d/a/b/c/suid"
	head -c 100000 /usr/share/common-licenses/GPL-3 >"$d/a/b/c/big"
	: >"$d/empty-file"
	printf 'space\n' >"$d/with space"
	printf 'newline\n' >"$d/new
line"
	chown 1234:5678 "$d/a/hello.txt" "$d/group"
	chown 65534:65534 "$d/a/b/run.sh"
	ln -s hello.txt "$d/a/rel-link"
	ln -s /etc/hostname "$d/a/abs-link"
	ln -s does-not-exist "$d/a/dangling"
	chown -h 1234:5678 "$d/a/rel-link"
	ln "$d/a/hello.txt" "$d/group/hard"
	mkfifo "$d/fifo"
	chmod 0640 "$d/fifo"
	stamp "$d"
}
