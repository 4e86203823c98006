#!/usr/bin/env bash
# One kernel's pass of scripts/kernel-matrix.sh: runs in a guest (chrooted
# into the host's read-only root by the guest init) or on the host itself.
# Everything it needs was built on the host; it only writes into OUT.
#
#   pass.sh OUT
# OUT/pass.env says what to run: BIN (vigil, test binaries, test2json), REPO
# (the source tree, for the tests' working directories), PASS (light or
# full) and GUEST (1 in a virtual machine). It writes OUT/kernel, OUT/cmdline, OUT/doctor.json, OUT/doctor.txt,
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

# The tests every pass runs: vigil run end to end (the CLI's own tests drive
# VIGIL_BIN), the eBPF binding's tests, and fexecve bound through the whole
# engine (the empty-string read that 6.1 and 6.12 once failed).
vigil_run_tests='TestDoctorSaysVigilCanRunHere|TestCatShadowFollowsThePolicy|TestExitStatusIsTheWatchees'
# The full pass runs the engine's suite but for loops that would take most of
# the budget under emulation (a test that needs a minute on the host needs
# half an hour in a guest on a loaded machine), or that need parallel CPUs
# to race at all (single-threaded TCG interleaves its vCPUs in time slices):
# the naive-supervisor controls, which prove the races have teeth, and the
# thread loops of thousands of racing calls. make test runs them on the host. Every other test, those
# added later (a conformance suite) included, runs on every kernel.
enforcer_skip='^(TestSharedDescriptorTablesNeverReceiveTheDeniedFile|TestSendDestinationFlipNeverReachesADeniedPeer|TestSignalStormAppliesEachEmulatedCallOnce|TestRacesBypassANaiveSupervisor|TestPointerRacesBypassANaiveSupervisor|TestRacesNeverReachTheDeniedFile|TestConcurrentThreadsGetCorrectDecisions|TestEmulatedPathCallsNeverTouchTheProtectedDirectory|TestTruncatingOpensThroughASwappedFIFODecoyNeverTruncate|TestReopeningASwappedDescriptorNeverTruncates)$'
# A guest's root is the host's, read-only: a test that must open a system
# binary for writing without vigil (to show the attack would reach it)
# cannot run there.
if [ "${GUEST:-0}" = 1 ]; then
  enforcer_skip="${enforcer_skip%)\$}|TestChrootDoesNotRenameProtectedObjectsUnderTheDefaultPolicy)\$"
fi

step doctor doctor
if [ "$PASS" = tests ]; then
  # Only the engine's tests TESTS names (a go test -run regex): to look
  # into what one kernel does.
  step enforcer gotest enforcer enforcer enforcer.test "$TESTS"
elif [ "$PASS" = light ]; then
  step vigil-run gotest vigil-run cmd/vigil vigil.test "^($vigil_run_tests)\$"
  step loader gotest loader loader loader.test .
  step enforcer gotest enforcer enforcer enforcer.test '^TestFexecveIsBoundAndRuns$'
else
  step vigil-run gotest vigil-run cmd/vigil vigil.test "^($vigil_run_tests|TestKilledSupervisorGrantsNothing)\$"
  step loader gotest loader loader loader.test .
  # seccomp notify paths, the binding through the engine, the pointer races
  # against vigil, emulation, and the differential tests that compare every
  # error with an unsupervised run on the same kernel.
  step enforcer gotest enforcer enforcer enforcer.test . -test.skip "$enforcer_skip"
  step doctor-tests gotest doctor-tests cmd/vigil/internal/doctor doctor.test .
  # A short bench: what each mechanism costs relative to this kernel's own
  # bare run (absolute times under emulation mean little). getpid is left
  # out: at ~100 ns a short run on a shared machine measures only noise.
  step bench "$BIN/vigil" bench --json "$out/bench.json" --reps 3 --run-time 100ms \
    --workloads open,write,exec,connect \
    --mechanisms bare,refsup,vigil-passthrough,vigil-allow-bound,vigil-deny
fi
echo done >"$out/pass-done"
