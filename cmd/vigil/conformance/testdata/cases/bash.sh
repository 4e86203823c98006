# bash: process substitution (/dev/fd/63), here-documents and here-strings,
# exec N< and /dev/fd/N for low and high N, /dev/std*, coprocesses, tee to
# a process substitution. Each of these opens a /proc magic link or a pipe
# the shell set up.
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
x cat <(echo hi)
diff <(printf 'a\nb\n') <(printf 'a\nc\n') >diff.out
echo "diff exit $?" # 1: the inputs differ
x cat diff.out
x cat <<'DOC' >heredoc.txt
here
document $HOME
DOC
x cat heredoc.txt
x tr a-z A-Z <<<"here string"
exec 40</etc/hostname
x cmp /dev/fd/40 /etc/hostname
exec 40<&-
exec 7<heredoc.txt
x cat /dev/fd/7
exec 7<&-
exec 41>fd41.out
echo 'to fd 41' >&41
x sh -c 'echo through /dev/fd/41 >>/dev/fd/41'
exec 41>&-
x cat fd41.out
x sh -c 'echo to stdout >/dev/stdout; echo to stderr >/dev/stderr' >std.out 2>std.err
x cat std.out std.err
x sh -c 'cat /dev/stdin' <heredoc.txt
x cat /proc/self/fd/0 <heredoc.txt
coproc UPPER { tr a-z A-Z; }
upper_pid=$UPPER_PID # bash unsets UPPER_PID once it has reaped the coprocess
echo 'from the coprocess' >&"${UPPER[1]}"
exec {UPPER[1]}>&-
read -r line <&"${UPPER[0]}"
wait "$upper_pid"
echo "$line"
tee >(wc -c >tee-count.out) <heredoc.txt >tee.out
wait $! # bash 5.1+ waits for the last process substitution
x cat tee.out tee-count.out
x paste <(seq 3) <(seq 4 6) >paste.out
x cat paste.out
x bash -c 'exec 3>&1; echo via fd 3 >&3' >fd3.out
x cat fd3.out
finish
