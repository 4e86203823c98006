# gcc and make -j2 on a small multi-file C project (testdata/cproject):
# parallel compiles through temporary files, a static library made with ar,
# a link, then the program runs and a second make finds nothing to do.
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
x cp -r "$CONFORMANCE_DATA/cproject" proj
x make -s -j2 -C proj
x proj/calc 6 7
x make -s -j2 -C proj
x make -s -C proj check
x make -s -C proj clean
x make -s -j2 -C proj calc
finish
