package bench

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"text/template"

	"github.com/vigilsec/vigil/cmd/vigil/internal/doctor"
	"github.com/vigilsec/vigil/enforcer/filter"
)

//go:embed testdata/workload.c testdata/policies/*.yaml
var sources embed.FS

// env is everything the runs share: the work directory with the built
// workload, the files it opens, the policies, the loopback listener and
// what this machine has.
type env struct {
	cfg      Config
	dir      string
	bin      string // the workload binary
	allowed  string // file every policy allows
	denied   string // file the policies deny by path
	truePath string // /bin/true with symlinks resolved, as vigil matches it
	port     int
	ln       net.Listener
	lnDone   sync.WaitGroup
	policies map[string]string // template name -> rendered file
	// filterProg is vigil's filter with nothing notified (filter-only).
	filterProg []byte
	refsup     string
	// notes say why a kind of mechanism cannot run here.
	noVigil, noRefsup, noStrace, noStraceSeccomp string
	// vigilUnverified says vigil run has --unverified: the seccomp-only
	// mechanisms pass it so an eBPF binding, when vigil has one, is not
	// part of their figures.
	vigilUnverified bool
}

func newEnv(cfg Config, rep *doctor.Report) (*env, error) {
	dir, err := os.MkdirTemp("", "vigil-bench-")
	if err != nil {
		return nil, fmt.Errorf("creating work directory: %w", err)
	}
	e := &env{cfg: cfg, dir: dir, policies: map[string]string{}}
	if err := e.setup(rep); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *env) setup(rep *doctor.Report) error {
	src, err := sources.ReadFile("testdata/workload.c")
	if err != nil {
		return fmt.Errorf("reading embedded workload source: %w", err)
	}
	csrc := filepath.Join(e.dir, "workload.c")
	if err := os.WriteFile(csrc, src, 0o644); err != nil {
		return fmt.Errorf("writing workload source: %w", err)
	}
	e.bin = filepath.Join(e.dir, "workload")
	if err := compileC(csrc, e.bin); err != nil {
		return err
	}
	e.allowed = filepath.Join(e.dir, "allowed")
	e.denied = filepath.Join(e.dir, "denied")
	for _, f := range []string{e.allowed, e.denied} {
		if err := os.WriteFile(f, []byte("vigil bench\n"), 0o644); err != nil {
			return fmt.Errorf("creating %s: %w", f, err)
		}
	}
	if e.truePath, err = resolvedTrue(); err != nil {
		return err
	}
	if err := e.listen(); err != nil {
		return err
	}
	if e.filterProg, err = filter.Compile(filter.Spec{}); err != nil {
		return fmt.Errorf("compiling the filter-only program: %w", err)
	}
	if err := e.renderPolicies(); err != nil {
		return err
	}
	e.findVigil(rep)
	e.findRefsup()
	e.findStrace()
	return nil
}

func (e *env) close() {
	if e.ln != nil {
		e.ln.Close()
		e.lnDone.Wait()
	}
	os.RemoveAll(e.dir)
}

// workload returns the argv of the workload binary.
func (e *env) workload(sub string, n int, args ...string) []string {
	return append([]string{e.bin, sub, strconv.Itoa(n)}, args...)
}

func compileC(src, out string) error {
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "gcc"
	}
	b, err := exec.Command(cc, "-O2", "-Wall", "-pthread", "-o", out, src).CombinedOutput()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return fmt.Errorf("building %s: %w (vigil bench needs a C compiler: apt-get install gcc)", filepath.Base(src), err)
		}
		return fmt.Errorf("building %s: %w\n%s", filepath.Base(src), err, b)
	}
	return nil
}

func resolvedTrue() (string, error) {
	p, err := exec.LookPath("true")
	if err != nil {
		p = "/bin/true"
	}
	r, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", fmt.Errorf("resolving %s: %w", p, err)
	}
	return r, nil
}

// listen starts the loopback listener of the connect workload. It accepts
// and closes at once; the workload's sockets linger 0 s, so neither side
// keeps TIME_WAIT state.
func (e *env) listen() error {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("starting loopback listener: %w", err)
	}
	e.ln = ln
	e.port = ln.Addr().(*net.TCPAddr).Port
	e.lnDone.Add(1)
	go func() {
		defer e.lnDone.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			c.Close()
		}
	}()
	return nil
}

func (e *env) renderPolicies() error {
	data := struct {
		Allowed, Denied, True string
		Port                  int
	}{e.allowed, e.denied, e.truePath, e.port}
	for _, m := range Mechanisms() {
		if m.policy == "" || e.policies[m.policy] != "" {
			continue
		}
		src, err := sources.ReadFile("testdata/policies/" + m.policy + ".yaml")
		if err != nil {
			return fmt.Errorf("reading policy %s: %w", m.policy, err)
		}
		t, err := template.New(m.policy).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return fmt.Errorf("parsing policy template %s: %w", m.policy, err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return fmt.Errorf("rendering policy %s: %w", m.policy, err)
		}
		out := filepath.Join(e.dir, m.policy+".yaml")
		if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("writing policy %s: %w", m.policy, err)
		}
		e.policies[m.policy] = out
	}
	return nil
}

func (e *env) findVigil(rep *doctor.Report) {
	switch {
	case e.cfg.Vigil == "":
		e.noVigil = "no vigil binary given"
	case !rep.CanRun:
		e.noVigil = "vigil cannot run on this machine (see vigil doctor)"
	default:
		out, err := exec.Command(e.cfg.Vigil, "run", "--help").CombinedOutput()
		if err != nil {
			e.noVigil = fmt.Sprintf("%s run --help: %v", e.cfg.Vigil, err)
			return
		}
		e.vigilUnverified = strings.Contains(string(out), "--unverified")
	}
}

// findRefsup locates or builds the C reference supervisor.
func (e *env) findRefsup() {
	candidates := []string{e.cfg.Refsup}
	if e.cfg.Refsup == "" {
		candidates = nil
		if e.cfg.Vigil != "" {
			candidates = append(candidates, filepath.Join(filepath.Dir(e.cfg.Vigil), "refsup"))
		}
		if root := sourceRoot(); root != "" {
			candidates = append(candidates, filepath.Join(root, "scripts", "refsup.c"))
		}
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err != nil {
			continue
		}
		if !strings.HasSuffix(c, ".c") {
			e.refsup = c
			return
		}
		out := filepath.Join(e.dir, "refsup")
		if err := compileC(c, out); err != nil {
			e.noRefsup = err.Error()
			return
		}
		e.refsup = out
		return
	}
	e.noRefsup = "refsup not found: pass --refsup (a binary, or scripts/refsup.c)"
}

// sourceRoot returns the repository this package was compiled from, when
// it is still there.
func sourceRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return ""
	}
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", "..", ".."))
	if _, err := os.Stat(filepath.Join(root, "scripts", "refsup.c")); err != nil {
		return ""
	}
	return root
}

// findStrace checks that strace exists and that it accepts --seccomp-bpf
// by running it once on /bin/true.
func (e *env) findStrace() {
	p, err := exec.LookPath("strace")
	if err != nil {
		e.noStrace = "strace is not installed"
		e.noStraceSeccomp = e.noStrace
		return
	}
	args := append(slices.Clone(straceSeccompArgs), "--", e.truePath)
	if out, err := exec.Command(p, args...).CombinedOutput(); err != nil {
		e.noStraceSeccomp = fmt.Sprintf("strace refuses --seccomp-bpf: %v %s", err, bytes.TrimSpace(out))
	}
}

// unavailable says why m cannot be measured here, or "".
func (e *env) unavailable(m Mechanism) string {
	if m.Unavailable != "" {
		return m.Unavailable
	}
	switch m.kind {
	case kindVigil, kindBeside, kindSettled:
		if m.kind == kindBeside && m.refsupArgs != nil && e.noRefsup != "" {
			return e.noRefsup
		}
		return e.noVigil
	case kindRefsup:
		return e.noRefsup
	case kindStrace:
		if slices.Contains(m.straceArgs, "--seccomp-bpf") {
			return e.noStraceSeccomp
		}
		return e.noStrace
	}
	return ""
}
