# ln and ln -s: hard links, symlinks, forced replacement, relative targets,
# links into directories, -T and -n.
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
mkdir -p d/sub other
printf 'data\n' >d/file
x ln d/file d/hard
x ln d/file other/
x ln -s file d/soft
x ln -s "$PWD/d/file" d/abs
x ln -sr d/file other/relative
x ln -sf sub d/dirlink
x ln -sfn file d/dirlink
x ln -sT ../d other/up
x ln -s d/sub/missing dangling
x ln -f d/file d/soft-replaced
x ln -s nowhere d/soft-replaced-too
x ln -sf file d/soft-replaced-too
x ln -L d/soft other/followed
x ln -P d/soft other/physical
x ln -v -s file d/verbose
x readlink d/soft other/relative d/dirlink other/up other/physical
x cat d/hard other/file other/relative other/up/file
x ln d/file d/hard
finish
