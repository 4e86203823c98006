package conformance_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/vigilsec/vigil/cmd/vigil/internal/agent"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// containerPrograms are the cases TestConformanceInAContainer runs: all
// of them. Those that need more than Docker's default capabilities
// (netns, chroot) fail the same way in both runs; userns makes a user
// namespace inside the container's mount namespace, which the emulator's
// worker must join in the right order (mount namespace first).
var containerPrograms = []string{"tar", "cp", "mv", "install", "chmodown", "ln", "sed", "bash", "git",
	"venv", "pythreads", "xattr", "identity", "make", "sqlite", "rsync", "busybox", "compress", "names",
	"dpkg", "textutils", "goroutines", "memfd", "helpers", "userns", "netns", "chroot"}

// dockerCapabilities are the capabilities Docker gives a container by
// default: what a container under `vigil agent` usually runs with.
var dockerCapabilities = []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
	"CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"}

// TestConformanceInAContainer runs the cases in runc and crun containers,
// once without seccomp and once supervised by `vigil agent` (the binary, in
// its default secure mode) through the profile `vigil agent
// seccomp-profile` merges into the bundle's config.json for that runtime,
// with the trap-all policy, and compares the runs as TestConformance does.
// In a container vigil resolves paths in the container's mount namespace,
// and its emulator works there through a worker; the host's programs are
// the container's, through read-only bind mounts.
func TestConformanceInAContainer(t *testing.T) {
	testenv.RequirePrivileged(t)
	f := newFixture(t)
	trapAll := policyCase{name: "trap-all", file: "trap-all.yaml"}
	for _, kind := range []struct {
		name, runtime         string
		userns, dockerDefault bool
	}{
		{"runc", "runc", false, false},
		{"crun", "crun", false, false},
		// A user namespace of the container's own, as with Docker's
		// userns-remap and rootless Podman: the namespace also owns the
		// container's mount namespace.
		{"runc-userns", "runc", true, false},
		// runc with Docker's default profile, bare, against the policy
		// merged into it (seccomp-profile --base): what a Docker user runs.
		{"docker", "runc", false, true},
	} {
		runtime := kind.name
		t.Run(kind.name, func(t *testing.T) {
			path, err := exec.LookPath(kind.runtime)
			if err != nil {
				t.Fatalf("%s runs the containers (scripts/deps.sh installs it): %v", kind.runtime, err)
			}
			rt := ociRuntime{name: kind.runtime, path: path, userns: kind.userns, dockerDefault: kind.dockerDefault}
			for _, p := range programs {
				if !slices.Contains(containerPrograms, p.name) {
					continue
				}
				t.Run(p.name, func(t *testing.T) {
					for _, n := range p.needs {
						if _, err := exec.LookPath(n); err != nil {
							t.Fatalf("%s needs %s (scripts/deps.sh installs it): %v", p.name, n, err)
						}
					}
					want := f.runWith(t, p, runtime+"-bare", f.inContainer(rt, nil))
					t.Logf("bare, in a container: exit %d, %v", want.code, want.took.Round(time.Millisecond))
					got := f.runWith(t, p, runtime+"-trap-all", f.inContainer(rt, &trapAll))
					if interruptedBeforeReceive(want, got) && !vigilAnsweredEINTR(t, got) {
						t.Logf("under vigil a call failed with EINTR where the bare run had none: %s; running it again", interruptedLine(got.stderr))
						got = f.runWith(t, p, runtime+"-trap-all-again", f.inContainer(rt, &trapAll))
					}
					compare(t, p, trapAll, want, got)
				})
			}
		})
	}
}

// ociRuntime is an OCI runtime that `vigil agent seccomp-profile` knows by
// name, and its binary.
type ociRuntime struct {
	name, path string
	// userns runs the container in a user namespace of its own, its root
	// mapped to containerRootID.
	userns bool
	// dockerDefault gives the container Docker's default seccomp profile
	// (dockerDefaultProfile), resolved for its capabilities as Docker
	// resolves it; vigil's policy is merged into it.
	dockerDefault bool
}

// dockerDefaultProfile is Docker's default seccomp profile, as the agent's
// tests keep it.
func dockerDefaultProfile() string {
	return filepath.Join(testenv.RepoRoot(), "cmd", "vigil", "internal", "agent", "testdata", "docker-default.json")
}

// containerRootID is the host id of root in a container with a user
// namespace; 65536 ids from it are mapped.
const containerRootID = 100000

// command is how the runtime is started. crun refuses a host whose cgroup
// hierarchy is hybrid (v1 controllers, and a cgroup2 hierarchy with one of
// its own, as on some machines of this kind) before it starts anything;
// there it runs in a mount namespace of its own with cgroup2 on
// /sys/fs/cgroup and without a cgroup manager, which the containers of
// these tests do not need.
func (rt ociRuntime) command(t *testing.T) []string {
	t.Helper()
	if rt.name != "crun" {
		return []string{rt.path}
	}
	var st unix.Statfs_t
	if err := unix.Statfs("/sys/fs/cgroup", &st); err != nil {
		t.Fatal(err)
	}
	if st.Type == unix.CGROUP2_SUPER_MAGIC {
		return []string{rt.path}
	}
	return []string{"unshare", "--mount", "--propagation", "private", "--",
		"sh", "-c", `mount -t cgroup2 none /sys/fs/cgroup && exec "$0" "$@"`, rt.path, "--cgroup-manager=disabled"}
}

// inContainer returns a launcher that runs a case in a container of rt: the
// host's /usr and /etc mounted read-only, and every directory the run
// names (the run directory, the fixture, the scratch directory, this
// package's testdata, the goroutines program) mounted at its own path, so
// the run sees the paths a run on the host sees. With pol, a `vigil agent`
// of the run's own supervises the container with pol.
func (f *fixture) inContainer(rt ociRuntime, pol *policyCase) launcher {
	return func(t *testing.T, s runSetup) ([]string, func() []string) {
		t.Helper()
		bundle := filepath.Join(f.base, s.id+".bundle")
		rootfs := filepath.Join(bundle, "rootfs")
		state := filepath.Join(bundle, "state")
		for _, d := range []string{rootfs, state} {
			if err := os.MkdirAll(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if out, err := exec.Command(rt.path, "spec", "--bundle", bundle).CombinedOutput(); err != nil {
			t.Fatalf("%s spec: %v\n%s", rt.name, err, out)
		}
		cfg := filepath.Join(bundle, "config.json")
		editSpec(t, cfg, func(spec *specs.Spec) {
			spec.Process.Terminal = false
			spec.Process.Args = s.argv
			spec.Process.Env = s.env
			spec.Process.Cwd = s.dir
			spec.Process.Capabilities = &specs.LinuxCapabilities{
				Bounding: dockerCapabilities, Effective: dockerCapabilities, Permitted: dockerCapabilities,
			}
			spec.Mounts = append(spec.Mounts, hostMounts(t, rootfs)...)
			for _, d := range []string{f.base, f.scratch, dataDir, filepath.Dir(goProg)} {
				spec.Mounts = append(spec.Mounts, specs.Mount{Destination: d, Type: "bind", Source: d, Options: []string{"rbind"}})
			}
			if rt.userns {
				spec.Linux.Namespaces = append(spec.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
				ids := []specs.LinuxIDMapping{{ContainerID: 0, HostID: containerRootID, Size: 65536}}
				spec.Linux.UIDMappings, spec.Linux.GIDMappings = ids, ids
			}
		})
		if rt.userns {
			givetoContainerRoot(t, bundle, f.base, f.scratch, rootfs, s.dir, s.scratch)
		}
		id := fmt.Sprintf("vigil-conformance-%d-%s", os.Getpid(), s.id)
		argv := append(rt.command(t), "--root", state, "run", "--bundle", bundle, id)
		deleteContainer := func() {
			// A container whose run ended normally is gone already.
			exec.Command(rt.path, "--root", state, "delete", "--force", id).Run()
		}
		if pol == nil {
			if rt.dockerDefault {
				withDockerDefault(t, cfg)
			}
			return argv, func() []string { deleteContainer(); return nil }
		}
		// A short name: sun_path holds 108 bytes, and the bundle's path is
		// long already.
		socket := filepath.Join(bundle, "a.sock")
		stopAgent := startAgent(t, socket, filepath.Join(f.base, "policies"), s.auditLog)
		args := []string{"agent", "seccomp-profile", "--policy", f.policies[pol.name],
			"--socket", socket, "--runtime", rt.name, "--config", cfg}
		if rt.dockerDefault {
			args = append(args, "--base", dockerDefaultProfile())
		}
		merged, err := exec.Command(vigilBin, args...).Output()
		if err != nil {
			stopAgent()
			t.Fatalf("vigil agent seccomp-profile: %v\n%s", err, stderrOf(err))
		}
		if err := os.WriteFile(cfg, merged, 0o644); err != nil {
			t.Fatal(err)
		}
		return argv, func() []string { deleteContainer(); return stopAgent() }
	}
}

// withDockerDefault puts Docker's default profile into the bundle's
// config.json, resolved for its capabilities as Docker does.
func withDockerDefault(t *testing.T, cfg string) {
	t.Helper()
	data, err := os.ReadFile(dockerDefaultProfile())
	if err != nil {
		t.Fatal(err)
	}
	editSpec(t, cfg, func(spec *specs.Spec) {
		resolved, err := agent.ResolveProfile(data, spec)
		if err != nil {
			t.Fatal(err)
		}
		if spec.Linux.Seccomp, err = agent.ToOCI(resolved); err != nil {
			t.Fatal(err)
		}
	})
}

// givetoContainerRoot lets root of a container with a user namespace reach
// the fixture and the bundle (the temporary directories above them are
// private to the host's root) and own the rootfs, as a remapped image's
// root owns it, and the run's directories, as root owns them in the other
// runs.
func givetoContainerRoot(t *testing.T, bundle, base, scratch, rootfs, dir, caseScratch string) {
	t.Helper()
	for _, d := range []string{filepath.Dir(base), base, filepath.Dir(dir), bundle, scratch} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, top := range []string{rootfs, dir, caseScratch} {
		err := filepath.WalkDir(top, func(p string, _ os.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, containerRootID, containerRootID)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// hostMounts mounts the host's /usr and /etc read-only in rootfs, and
// makes /bin, /lib, /lib64 and /sbin what they are on the host: symlinks
// into /usr on a merged-/usr system, else read-only mounts too.
func hostMounts(t *testing.T, rootfs string) []specs.Mount {
	t.Helper()
	ro := func(d string) specs.Mount {
		return specs.Mount{Destination: d, Type: "bind", Source: d, Options: []string{"rbind", "ro"}}
	}
	mounts := []specs.Mount{ro("/usr"), ro("/etc")}
	for _, d := range []string{"/bin", "/lib", "/lib32", "/lib64", "/libx32", "/sbin"} {
		fi, err := os.Lstat(d)
		switch {
		case err != nil:
			continue
		case fi.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(d)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, filepath.Join(rootfs, d)); err != nil {
				t.Fatal(err)
			}
		default:
			mounts = append(mounts, ro(d))
		}
	}
	return mounts
}

// editSpec rewrites the OCI config.json at path with edit.
func editSpec(t *testing.T, path string, edit func(*specs.Spec)) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var spec specs.Spec
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	edit(&spec)
	out, err := json.MarshalIndent(&spec, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// startAgent starts `vigil agent` on socket with the policies in policyDir,
// writing its audit records to auditLog, and waits for its READY=1 on
// $NOTIFY_SOCKET, as systemd does. The function it returns ends the agent
// as a service manager does (SIGTERM: it drains and exits) and returns its
// log lines.
func startAgent(t *testing.T, socket, policyDir, auditLog string) (stop func() []string) {
	t.Helper()
	notify := socket + ".notify"
	ready, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ready.Close()
	cmd := exec.Command(vigilBin, "agent", "--socket", socket, "--policy-dir", policyDir,
		"--log", auditLog, "--log-level", "debug")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+notify)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop = func() []string {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("vigil agent did not exit cleanly on SIGTERM: %v\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			<-exited
			t.Errorf("vigil agent did not exit within 30 s of SIGTERM")
		}
		_, lines := splitVigilLines(stderr.String())
		return lines
	}
	buf := make([]byte, 256)
	for {
		ready.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := ready.Read(buf)
		if err != nil {
			stop()
			t.Fatalf("vigil agent sent no READY=1 within 30 s: %v\n%s", err, stderr.String())
		}
		if strings.Contains(string(buf[:n]), "READY=1") {
			return stop
		}
	}
}

// stderrOf returns the stderr an *exec.ExitError kept.
func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return strings.TrimSpace(string(ee.Stderr))
	}
	return ""
}
