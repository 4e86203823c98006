#!/usr/bin/env bash
# vigil's kernel matrix: runs vigil's doctor, its privileged tests and a short
# benchmark on the kernels users have, each booted in qemu under software
# emulation (TCG: these machines have no usable KVM), and on the host's own
# kernel, then prints one table of what each kernel offers, what vigil uses
# there, which tests passed and what each mechanism costs relative to that
# kernel's bare run (`vigil doctor compare`).
#
#   scripts/kernel-matrix.sh            # or: make kernel-matrix
#   KERNELS="6.1" PASS=light scripts/kernel-matrix.sh   # what .ci/run does
#
# KERNELS  labels to run, in order, each with an optional :light or :full that
#          overrides PASS (default: host 6.1 6.1-nobpflsm:light 6.12):
#   host          the running kernel, no virtual machine
#   6.1           Debian's newest 6.1 LTS generic kernel (linux-image-6.1.0-N-amd64-unsigned)
#   6.1-nobpflsm  the same, booted with an LSM list without bpf (as many distributions
#                 ship); the light pass by default: only the doctor's view differs
#   6.12          Debian's 6.12 from bookworm-backports (linux-image-6.12.*-amd64-unsigned)
# PASS     light (doctor, vigil run, the eBPF binding's tests, fexecve; < 2 min
#          per kernel) or full (the default: the engine's whole test suite and a
#          short vigil bench; < 12 min per kernel under TCG), or tests: the
#          doctor and only the engine's tests the regex TESTS names, e.g.
#          KERNELS=6.1 PASS=tests TESTS='^TestEmulatedCallsCheck' make kernel-matrix
#
# Kernels come from Debian's archive through apt (`apt-get download`, 6.12
# through a private apt configuration that adds bookworm-backports and leaves
# the system's sources alone), unpacked with dpkg-deb -x, never installed.
# Everything is cached under .cache/kernel-matrix/ (ignored by git); results
# are in .cache/kernel-matrix/out/LABEL/ and the table in
# .cache/kernel-matrix/out/matrix.txt. Exit status 1 if a kernel's pass
# failed (a test failed, a step failed, the guest did not finish).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export PATH=$PATH:/usr/local/go/bin
GO=${GO:-go}
KERNELS=${KERNELS:-host 6.1 6.1-nobpflsm:light 6.12}
PASS=${PASS:-full}
TESTS=${TESTS:-}
case $PASS in light | full) ;; tests) [ -n "$TESTS" ] || { echo "kernel-matrix: PASS=tests needs TESTS (a go test -run regex)" >&2; exit 2; } ;;
  *) echo "kernel-matrix: PASS must be light, full or tests" >&2; exit 2 ;; esac
cache=$repo/.cache/kernel-matrix
bin=$cache/bin
outs=$cache/out
say() { echo "kernel-matrix: $*" >&2; }

if [ "$(id -u)" -ne 0 ]; then
  say "run as root (the tests need it, and qemu's 9p share passes host ownership through)"
  exit 2
fi

# --- dependencies -----------------------------------------------------------
scripts/deps.sh
if ! command -v qemu-system-x86_64 >/dev/null; then
  say "installing qemu-system-x86"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null ||
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-x86 >/dev/null; }
fi

# --- binaries, built once on the host ----------------------------------------
# The guests run them from the host's root over 9p: no toolchain runs under
# emulation.
say "building vigil and the test binaries"
mkdir -p "$bin"
$GO build -o "$bin/vigil" ./cmd/vigil
$GO build -o "$bin/test2json" cmd/test2json
$GO test -c -o "$bin/vigil.test" ./cmd/vigil
$GO test -c -o "$bin/loader.test" ./loader
$GO test -c -o "$bin/enforcer.test" ./enforcer
$GO test -c -o "$bin/doctor.test" ./cmd/vigil/internal/doctor
gcc -O2 -Wall -Wextra -o "$bin/refsup" scripts/refsup.c # vigil bench finds it beside vigil

# --- kernels -------------------------------------------------------------------
# apt options for the private configuration that adds bookworm-backports.
backports_apt=()
backports_setup() {
  [ ${#backports_apt[@]} -eq 0 ] || return 0
  local d=$cache/apt codename uri
  # shellcheck source=/dev/null
  codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
  # The system's own mirror for its release (so no host name lives here).
  uri=$(apt-cache policy | awk -v s="$codename/main" '$3 == s && $4 == "amd64" {print $2; exit}')
  if [ -z "$codename" ] || [ -z "$uri" ]; then
    say "cannot find the system's Debian mirror for '$codename' in apt-cache policy"
    return 1
  fi
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $codename-backports main" >"$d/sources.list"
  backports_apt=(-o "Dir::Etc::SourceList=$d/sources.list" -o Dir::Etc::SourceParts=/nonexistent
    -o "Dir::State::Lists=$d/lists" -o "Dir::Cache=$d/cache" -o APT::Sandbox::User=root)
  apt-get "${backports_apt[@]}" update -qq
}

# newest_package REGEX [APT OPTIONS...]: the highest-versioned package name.
newest_package() {
  local re=$1
  shift
  apt-cache "$@" search --names-only "$re" | awk '{print $1}' | sort -V | tail -n 1
}

# kernel_for LABEL: prepares the kernel of a label and prints its directory
# (vmlinuz, initramfs.cpio.gz, release).
kernel_for() {
  local label=$1 re pkg deb dir stamp
  local opts=()
  case $label in
    6.1 | 6.1-*) re='^linux-image-6\.1\.0-[0-9]+-amd64-unsigned$' ;;
    6.12 | 6.12-*)
      re='^linux-image-6\.12\.[0-9]+[^ -]*-amd64-unsigned$' # the generic flavour: [^ -] keeps -rt- and -cloud- out
      backports_setup
      opts=("${backports_apt[@]}")
      ;;
    *) say "unknown kernel label $label"; return 1 ;;
  esac
  pkg=$(newest_package "$re" "${opts[@]}")
  if [ -z "$pkg" ] && [ ${#opts[@]} -eq 0 ]; then
    apt-get update -qq # a machine whose package lists were never fetched
    pkg=$(newest_package "$re")
  fi
  [ -n "$pkg" ] || { say "no package matches $re"; return 1; }
  mkdir -p "$cache/debs"
  deb=$(ls "$cache/debs/${pkg}"_*.deb 2>/dev/null | tail -n 1 || true)
  if [ -z "$deb" ]; then
    say "downloading $pkg"
    (cd "$cache/debs" && apt-get "${opts[@]}" -o APT::Sandbox::User=root download -qq "$pkg")
    deb=$(ls "$cache/debs/${pkg}"_*.deb | tail -n 1)
  fi
  dir=$cache/kernels/$(basename "$deb" .deb)
  # Rebuild when the initramfs's recipe changed.
  stamp=$(cat scripts/kernel-matrix/init scripts/kernel-matrix/initramfs.sh | sha256sum | cut -c1-16)
  if [ "$(cat "$dir/stamp" 2>/dev/null)" != "$stamp" ]; then
    local tmp
    tmp=$(mktemp -d "$cache/unpack.XXXXXX")
    dpkg-deb -x "$deb" "$tmp"
    scripts/kernel-matrix/initramfs.sh "$tmp" "$dir"
    rm -rf "$tmp"
    echo "$stamp" >"$dir/stamp"
  fi
  echo "$dir"
}

# append_for LABEL: extra kernel command line of a label.
append_for() {
  case $1 in
    # Debian's default list (CONFIG_LSM) ends in bpf; this is it without.
    *-nobpflsm) echo "lsm=landlock,lockdown,yama,apparmor,tomoyo" ;;
  esac
}

# --- running -------------------------------------------------------------------
# boot LABEL OUT PASS: runs pass.sh in a guest of LABEL's kernel.
boot() {
  local label=$1 out=$2 pass=$3 kdir timeout
  kdir=$(kernel_for "$label")
  # Bounds for a hung guest, not targets: a light pass takes under 2 min on
  # an idle machine and a full one under 12, but the machine is shared.
  timeout=900
  [ "$pass" = full ] && timeout=3600
  say "$label: booting $(cat "$kdir/release") (qemu TCG, $pass pass)"
  # thread=single: multi-threaded TCG crashed the 6.12 guest while tests
  # attached raw tracepoints. The host's root is shared read-only
  # (multidevs=remap: it spans several devices), the results writable.
  timeout --foreground -k 10 "$timeout" qemu-system-x86_64 \
    -accel tcg,thread=single -cpu max -smp 2 -m 2048 \
    -nographic -no-reboot -nic none -serial "file:$out/console.log" -monitor none \
    -kernel "$kdir/vmlinuz" -initrd "$kdir/initramfs.cpio.gz" \
    -append "console=ttyS0 quiet panic=-1 $(append_for "$label") KM_OUT=$out KM_RUN=$repo/scripts/kernel-matrix/pass.sh" \
    -fsdev local,id=root,path=/,security_model=passthrough,readonly=on,multidevs=remap \
    -device virtio-9p-pci,fsdev=root,mount_tag=root \
    -fsdev "local,id=out,path=$out,security_model=passthrough,multidevs=remap" \
    -device virtio-9p-pci,fsdev=out,mount_tag=out </dev/null >/dev/null ||
    say "$label: qemu exited with status $? (timeout ${timeout}s?)"
}

failed=()
dirs=()
for spec in $KERNELS; do
  label=${spec%%:*} pass=$PASS
  [ "$label" = "$spec" ] || pass=${spec#*:}
  case $pass in light | full | tests) ;; *) say "$spec: the pass must be light, full or tests"; exit 2 ;; esac
  out=$outs/$label
  rm -rf "$out"
  mkdir -p "$out"
  guest=1
  [ "$label" != host ] || guest=0
  printf 'BIN=%q\nREPO=%q\nPASS=%q\nGUEST=%d\nTESTS=%q\n' "$bin" "$repo" "$pass" "$guest" "$TESTS" >"$out/pass.env"
  start=$(date +%s)
  if [ "$label" = host ]; then
    say "host: $(uname -r) ($pass pass, no virtual machine)"
    bash scripts/kernel-matrix/pass.sh "$out" 2>"$out/console.log" || true
  else
    boot "$label" "$out" "$pass" || true
  fi
  say "$label: $(($(date +%s) - start)) s; steps (name, seconds, exit status):"
  sed 's/^/    /' "$out/steps" >&2 2>/dev/null || true
  if [ ! -f "$out/pass-done" ] || awk '$3 != 0 {bad=1} END {exit !bad}' "$out/steps"; then
    failed+=("$label")
    say "$label: FAILED; the console is in $out/console.log"
    tail -n 20 "$out/console.log" >&2 || true
  fi
  dirs+=("$out")
done

"$bin/vigil" doctor compare "${dirs[@]}" | tee "$outs/matrix.txt"
if [ ${#failed[@]} -gt 0 ]; then
  say "failed: ${failed[*]}"
  exit 1
fi
