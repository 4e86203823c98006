# A Go program with many goroutines doing file-system work on the runtime's
# threads (testdata/goroutines).
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
x "$CONFORMANCE_GOPROG" out 500
finish
