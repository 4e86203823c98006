# Everyday file and text tools of coreutils, util-linux, diffutils, patch and
# perl, each with its own way of writing: sort spilling runs into temporary
# files and merging them, split and csplit, dd into an existing file, truncate
# and fallocate, mktemp, flock, find | xargs -0, diff | patch (a temporary
# renamed over the file), perl -i (a backup and a new file), shred -u.
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
seq 1 20000 | awk '{ printf "%08d line %d\n", ($1 * 7919) % 20011, $1 }' >data
mkdir tmp
# A 64 KiB buffer for 400 KB makes sort write its runs to tmp and merge them.
x sort -S 64K -T tmp -o sorted data
x sort -n -r -S 64K -T tmp data -o rsorted
head -n 3 sorted rsorted
echo "temporaries left: $(ls tmp | wc -l)"
x split -l 5000 -d sorted part.
x csplit -s -f sect sorted '/^00005/' '/^00015/'
cat part.* | cmp - sorted && echo "split parts join up"
x sha256sum part.* sect* >sums
x sha256sum -c --quiet sums
printf 'abcdefghij' >blob
x dd if=/dev/zero of=blob bs=1 seek=3 count=2 conv=notrunc status=none
x dd if=sorted of=first8k bs=4096 count=2 status=none
od -An -c blob
x truncate -s 100 blob
x truncate -s -95 blob
x fallocate -l 65536 allocated
x base64 blob >blob.b64
base64 -d blob.b64 | cmp - blob && echo "base64 round trip"
tac part.00 | head -n 2
d=$(mktemp -d -p "$PWD" made.XXXXXX) && x mv "$d" made-dir
f=$(mktemp -p "$PWD") && printf 'temp\n' >"$f" && x mv "$f" made-dir/file
x flock lockfile -c 'echo under the lock'
(flock -n 9 && echo "lock taken on fd 9") 9>lockfile2
find . -name 'part.*' -print0 | sort -z | xargs -0 cat | wc -l
head -n 20 sorted >orig
cp orig changed
x sed -i '5s/line/LINE/;12d' changed
# The labels stand in for the files' modification times, which differ per run.
diff -u --label orig --label changed orig changed >p.diff
echo "diff status $?"
cp orig patched
x patch -s patched p.diff
cmp patched changed && echo "patch applied"
x perl -i.bak -pe 's/line/row/ if $. <= 3' patched
head -n 4 patched
printf 'secret\n' >secret
x shred -u -n 1 secret
[ -e secret ] || echo "shredded"
x sync allocated
finish
