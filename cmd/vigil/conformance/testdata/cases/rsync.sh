# rsync -a: a local copy (rsync forks a sender and a receiver that write
# through temporary files renamed into place), an update with --delete,
# and a copy with hard links kept (-H).
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
mktree src
x rsync -a src/ dst/
x rsync -aH src/ dsth/
printf 'changed\n' >src/a/hello.txt
touch -d @1700000100 src/a/hello.txt
rm src/with\ space
x rsync -a --delete src/ dst/
x rsync -a --itemize-changes src/ dst/
x rsync -r --chmod=D0755,F0644 src/a/ plain/
stamp plain
finish
