#!/usr/bin/env bash
# One kernel's pass of scripts/kernel-matrix.sh: runs in a guest (chrooted
# into the host's read-only root by the guest init) or on the host itself.
# Everything it needs was built on the host; it only writes into OUT.
#
#   pass.sh OUT
# OUT/pass.env says what to run: BIN (vigil, test binaries, test2json), REPO
# (the source tree, for the tests' working directories) and PASS (light or
# full). It writes OUT/kernel, OUT/cmdline, OUT/doctor.json, OUT/doctor.txt,
# OUT/tests.jsonl (go test -json events of every test run), OUT/bench.json
# (full pass), OUT/steps (one line per step: name, seconds, exit status), a
# log per step in OUT/logs/, and OUT/pass-done at the end.
set -uo pipefail
out=$1
# shellcheck source=/dev/null
. "$out/pass.env"
mkdir -p "$out/logs"
: >"$out/tests.jsonl"
: >"$out/steps"
export VIGIL_REQUIRE_PRIVILEGED=1 VIGIL_BIN="$BIN/vigil"
uname -r >"$out/kernel"
cat /proc/cmdline >"$out/cmdline"
ulimit -n 65536 2>/dev/null || true

# step NAME CMD...: runs CMD with its output in logs/NAME.log and records how
# long it took and how it ended.
step() {
  local name=$1 start rc ms
  shift
  start=$(date +%s%N)
  echo "kernel-matrix: $(uname -r): $name" >&2
  "$@" >"$out/logs/$name.log" 2>&1
  rc=$?
  ms=$((($(date +%s%N) - start) / 1000000))
  printf '%s %d.%d %d\n' "$name" $((ms / 1000)) $((ms % 1000 / 100)) "$rc" >>"$out/steps"
  [ "$rc" -eq 0 ] || echo "kernel-matrix: $(uname -r): $name failed (exit $rc); see logs/$name.log" >&2
  return 0
}

# gotest NAME PKG BINARY REGEX [ARGS...]: runs a prebuilt test binary in its
# package's directory, as go test does; its go test -json events go to
# logs/NAME.jsonl and tests.jsonl. The status is the test binary's.
gotest() {
  local name=$1 pkg=$2 bin=$3 run=$4 rc
  shift 4
  (cd "$REPO/$pkg" && "$BIN/test2json" -t -p "$pkg" "$BIN/$bin" -test.v=test2json \
    -test.run "$run" -test.count 1 -test.timeout 15m "$@" >"$out/logs/$name.jsonl")
  rc=$?
  cat "$out/logs/$name.jsonl" >>"$out/tests.jsonl"
  # The top-level results, for the log and the console.
  grep -oE '"Action":"(pass|fail|skip)","Package":"[^"]*","Test":"[^/"]*"' "$out/logs/$name.jsonl" |
    sed -E 's/"Action":"([a-z]+)","Package":"([^"]*)","Test":"([^"]*)"/\1 \2 \3/'
  return $rc
}

doctor() {
  "$BIN/vigil" doctor --json >"$out/doctor.json"
  local rc=$?
  "$BIN/vigil" doctor >"$out/doctor.txt"
  return $rc
}

step doctor doctor
# vigil run end to end (the CLI's own tests drive VIGIL_BIN), the eBPF
# binding's tests, and the bound fexecve through the whole engine.
step vigil-run gotest vigil-run cmd/vigil vigil.test \
  '^(TestDoctorSaysVigilCanRunHere|TestCatShadowFollowsThePolicy|TestExitStatusIsTheWatchees|TestKilledSupervisorGrantsNothing)$'
step loader gotest loader loader loader.test .
if [ "$PASS" = light ]; then
  step enforcer gotest enforcer enforcer enforcer.test '^TestFexecveIsBoundAndRuns$'
else
  # The whole engine: seccomp notify paths, binding, races, emulation, and
  # the differential (conformance) tests against unsupervised runs.
  step enforcer gotest enforcer enforcer enforcer.test .
  step doctor-tests gotest doctor-tests cmd/vigil/internal/doctor doctor.test .
  # A short bench: what each mechanism costs relative to this kernel's own
  # bare run (absolute times under emulation mean little).
  step bench "$BIN/vigil" bench --json "$out/bench.json" --reps 3 --run-time 100ms \
    --workloads getpid,open,write,exec,connect \
    --mechanisms bare,filter-only,refsup,vigil-passthrough,vigil-allow-unverified,vigil-allow-bound,vigil-deny
fi
echo done >"$out/pass-done"
