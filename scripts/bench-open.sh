#!/usr/bin/env bash
# bench-open.sh — per-open(2) cost of supervision: bare vs the C reference supervisor (refsup)
# vs vigil.
#
# Usage:
#   scripts/bench-open.sh [-n N] [-r REPS] [-p PATH]
#   VIGIL=./vigil VIGIL_POLICY=policy.yaml scripts/bench-open.sh
#
#   -n N      opens per run (default 200000, or $N)
#   -r REPS   repetitions per mechanism; the median is reported (default 5, or $REPS)
#   -p PATH   file to open (default /etc/hostname)
#   VIGIL         path to a vigil binary; when set, vigil is measured too, as
#                 `$VIGIL run [--policy $VIGIL_POLICY] -- probe loop N PATH`
#   VIGIL_POLICY  policy file for vigil (optional; without it vigil's embedded default applies).
#                 It must trap openat and allow PATH, or the run fails.
#   CC            C compiler (default gcc)
#
# Builds scripts/refsup.c and enforcer/testdata/probe/probe.c into a temporary directory,
# runs one discarded warm-up per mechanism, then REPS × `probe loop N PATH` (N × openat+close)
# and REPS × `probe loop 0 PATH` (startup only: fork/exec, filter install, vigil's BPF load).
# ns/op = (median time of loop N − median time of loop 0) / N, so start-up costs do not leak
# into the per-open figure; they are reported separately. Needs root for vigil, and bash,
# gcc, date +%s%N, sort and awk only. Each mechanism's stdout must be exactly `ok`; its stderr
# goes to a file in the temporary directory and is shown if a run fails.
set -euo pipefail

N=${N:-200000}
REPS=${REPS:-5}
TARGET=/etc/hostname
while getopts "n:r:p:h" opt; do
	case $opt in
	n) N=$OPTARG ;;
	r) REPS=$OPTARG ;;
	p) TARGET=$OPTARG ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 2 ;;
	esac
done
case $N$REPS in *[!0-9]*) echo "bench-open: -n and -r take positive integers" >&2; exit 2 ;; esac
if [ "$N" -lt 1 ] || [ "$REPS" -lt 1 ]; then
	echo "bench-open: -n and -r take positive integers" >&2
	exit 2
fi

root=$(cd "$(dirname "$0")/.." && pwd)
CC=${CC:-gcc}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/bench-open.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

"$CC" -O2 -Wall -Wextra -o "$tmp/refsup" "$root/scripts/refsup.c"
"$CC" -O2 -Wall -Wextra -pthread -o "$tmp/probe" "$root/enforcer/testdata/probe/probe.c"
probe=$tmp/probe

mechs=(bare refsup)
cmd_bare=()
cmd_refsup=("$tmp/refsup" --)
if [ -n "${VIGIL:-}" ]; then
	[ -x "$VIGIL" ] || { echo "bench-open: VIGIL=$VIGIL is not executable" >&2; exit 2; }
	mechs+=(vigil)
	cmd_vigil=("$VIGIL" run)
	if [ -n "${VIGIL_POLICY:-}" ]; then
		cmd_vigil+=(--policy "$VIGIL_POLICY")
	fi
	cmd_vigil+=(--)
fi

# run_once MECH ITERS -> prints elapsed nanoseconds
run_once() {
	local mech=$1 iters=$2 t0 t1 out
	local -n pre="cmd_$mech"
	t0=$(date +%s%N)
	out=$("${pre[@]}" "$probe" loop "$iters" "$TARGET" 2>"$tmp/stderr") || true
	t1=$(date +%s%N)
	if [ "$out" != ok ]; then
		echo "bench-open: $mech: probe loop $iters $TARGET printed '${out}', want 'ok'" >&2
		tail -n 20 "$tmp/stderr" >&2
		exit 1
	fi
	echo $((t1 - t0))
}

median() { sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

declare -A nsop startup
for mech in "${mechs[@]}"; do
	run_once "$mech" "$N" >/dev/null # warm-up: page cache, dentries, binaries
	full=() zero=()
	for ((i = 0; i < REPS; i++)); do
		full+=("$(run_once "$mech" "$N")")
		zero+=("$(run_once "$mech" 0)")
	done
	f=$(printf '%s\n' "${full[@]}" | median)
	z=$(printf '%s\n' "${zero[@]}" | median)
	nsop[$mech]=$(awk -v f="$f" -v z="$z" -v n="$N" 'BEGIN { printf "%.1f", (f - z) / n }')
	startup[$mech]=$(awk -v z="$z" 'BEGIN { printf "%.2f", z / 1e6 }')
done

echo "probe loop $N $TARGET, median of $REPS ($(uname -r), $(nproc) CPUs)"
printf '%-8s %10s %12s %12s\n' mechanism ns/op overhead startup_ms
for mech in "${mechs[@]}"; do
	ovh=$(awk -v a="${nsop[$mech]}" -v b="${nsop[bare]}" 'BEGIN { printf "%+.1f", a - b }')
	printf '%-8s %10s %12s %12s\n' "$mech" "${nsop[$mech]}" "$ovh" "${startup[$mech]}"
done
awk -v r="${nsop[refsup]}" -v b="${nsop[bare]}" 'BEGIN { if (b > 0) printf "ratio refsup/bare: %.2f\n", r / b }'
if [ -n "${nsop[vigil]:-}" ]; then
	awk -v v="${nsop[vigil]}" -v r="${nsop[refsup]}" 'BEGIN { if (r > 0) printf "ratio vigil/refsup: %.2f\n", v / r }'
fi
