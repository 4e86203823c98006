# Compressors that keep the input, carry its mode and time over to their
# output, replace files (-f) and write to stdout: gzip, xz, bzip2, zstd, lz4.
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
seq 1 50000 >f
chmod 0640 f
touch -d @1700000000 f
x gzip -k f
x xz -k f
x bzip2 -k f
x zstd -q -k f
x lz4 -q -k f f.lz4
gzip -dc f.gz | cmp - f && xz -dc f.xz | cmp - f && bzip2 -dc f.bz2 | cmp - f &&
	zstd -dcq f.zst | cmp - f && lz4 -dcq f.lz4 | cmp - f && echo "every copy decompresses to f"
cp -p f g
x zstd -q --rm g
x zstd -q -d g.zst -o g.out
printf 'old\n' >h.xz
x xz -k -f -S .xz -c f >h.xz
x xz -t h.xz
mkdir d && cp -p f d/a && cp -p f d/b
x gzip -r d
x gunzip d/a.gz
stat -c '%a %Y %n' f.* g.* d/* | sort -k3
finish
