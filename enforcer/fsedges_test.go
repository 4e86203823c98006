package enforcer_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigilsec/vigil/enforcer/policy"
	"github.com/vigilsec/vigil/enforcer/testenv"
)

// protectedSymlinks is the sysctl that refuses to follow a symlink in a
// sticky world-writable directory unless the follower or the directory's
// owner owns it — root included (on by default in most distributions).
const protectedSymlinks = "/proc/sys/fs/protected_symlinks"

// TestProtectedSymlinksJudgeTheWatchee: vigil names objects as root, and
// root is refused a symlink another user owns in a sticky directory; the
// watchee's own call must be judged with the watchee's credentials. nobody
// follows its own links (reads, appends, creates through a dangling one,
// a directory link) as alone, and root is refused them as alone — under
// the default policy (bound reads, emulated writes) and with every path
// call trapped. Before the resolver left vigil's EACCES to the walk, nobody
// got "Permission denied" for its own link.
func TestProtectedSymlinksJudgeTheWatchee(t *testing.T) {
	testenv.RequirePrivileged(t)
	was, err := os.ReadFile(protectedSymlinks)
	if err != nil {
		t.Skipf("no %s: %v", protectedSymlinks, err)
	}
	if err := os.WriteFile(protectedSymlinks, []byte("1"), 0); err != nil {
		t.Fatalf("turning %s on: %v", protectedSymlinks, err)
	}
	t.Cleanup(func() { _ = os.WriteFile(protectedSymlinks, []byte(strings.TrimSpace(string(was))), 0) })

	dir := t.TempDir()
	sticky := filepath.Join(dir, "sticky")
	nobody := "setpriv --reuid=65534 --regid=65534 --clear-groups"
	script := strings.NewReplacer("@D@", sticky, "@N@", nobody).Replace(`
rm -rf @D@; mkdir -m 1777 @D@; chmod 755 $(dirname @D@) $(dirname $(dirname @D@))
@N@ sh -c 'echo mine > @D@/mine; mkdir @D@/mydir; echo in > @D@/mydir/f; ln -s mine @D@/mylink; ln -s mydir @D@/mydirlink; ln -s nothere @D@/dangling'
echo "root:"
cat @D@/mylink 2>/dev/null; echo "read $?"
(echo x > @D@/mylink) 2>/dev/null; echo "write $?"
(echo y > @D@/dangling) 2>/dev/null; echo "create $?"
cat @D@/mydirlink/f; echo "through a directory link $?"
echo "nobody:"
@N@ sh -c 'cat @D@/mylink; echo "read $?"; echo z >> @D@/mylink; echo "append $?"; echo w > @D@/dangling; echo "create $?"; cat @D@/nothere; cat @D@/mydirlink/f; ls @D@/mydirlink/; echo "directory link $?"'
ls -l @D@ | awk 'NR > 1 {print $1, $3, $NF}'
`)
	argv := []string{"sh", "-c", script}
	want, wantCode := bare(t, argv...)
	if !strings.Contains(want, "nobody:\nmine\nread 0") || !strings.Contains(want, "root:\nread 1") {
		t.Fatalf("protected_symlinks did not judge the bare run as expected:\n%s", want)
	}
	pathCalls := "[open, openat, openat2, creat, mkdir, mkdirat, symlink, symlinkat, unlink, unlinkat, rmdir, rename, renameat, renameat2, execve]"
	trapAll := mustPolicy(t, "version: 1\nrules:\n  - syscalls: "+pathCalls+"\n    match: { path: [\""+filepath.Join(dir, "denied")+"/**\"] }\n    action: deny\n")
	for name, pol := range map[string]*policy.Policy{"default": policy.Default(), "path calls trapped": trapAll} {
		r := supervise(t, pol, argv)
		if r.stdout != want || r.code != wantCode {
			t.Errorf("%s policy: under vigil (exit %d):\n%s\nalone (exit %d):\n%s", name, r.code, r.stdout, wantCode, want)
		}
	}
}

// TestPathsLongerThanPathMaxWorkAsAlone: the kernel prints no path longer
// than PATH_MAX (readlink of /proc/self/fd answers ENAMETOOLONG), yet a
// watchee may cd that deep and work there with relative names, as bash and
// python do here: create, read, link, rename, remove files and directories,
// read a directory through /proc/self/fd. vigil names such objects by
// climbing to a directory the kernel still prints; before, every call there
// was refused EACCES ("the object has no name vigil can establish").
func TestPathsLongerThanPathMaxWorkAsAlone(t *testing.T) {
	testenv.RequirePrivileged(t)
	dir := t.TempDir()
	script := `cd "$1"
for i in $(seq 1 215); do mkdir dddddddddddddddddddd && cd dddddddddddddddddddd || exit 1; done
echo x > f && cat f && ln -s f l && cat l && ln f h && mv l l2 && rm f l2 h && mkdir sub && rmdir sub && echo files ok
exec 3<. && ls /proc/self/fd/3/ | wc -l && chmod 0750 /proc/self/fd/3 && stat -c %a . && exec 3<&-
/usr/bin/python3 -c '
import os
os.makedirs("e/" * 50)
with open("e/" * 50 + "f", "w") as f: f.write("deep")
print(open("e/" * 50 + "f").read(), len(os.path.realpath(".")) > 4096)
for root, dirs, files in os.walk("e", topdown=False):
    for n in files: os.unlink(os.path.join(root, n))
    for n in dirs: os.rmdir(os.path.join(root, n))
os.rmdir("e")
'
cd "$1" && rm -r dddddddddddddddddddd && ls | wc -l`
	pathCalls := "[open, openat, openat2, creat, mkdir, mkdirat, symlink, symlinkat, link, linkat, unlink, unlinkat, rmdir, rename, renameat, renameat2, chmod, fchmodat, execve]"
	trapAll := mustPolicy(t, "version: 1\nrules:\n  - syscalls: "+pathCalls+"\n    match: { path: [\""+filepath.Join(dir, "denied")+"/**\"] }\n    action: deny\n")
	for name, pol := range map[string]*policy.Policy{"default": policy.Default(), "path calls trapped": trapAll} {
		work := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.Mkdir(work, 0o755); err != nil {
			t.Fatal(err)
		}
		argv := []string{"bash", "-c", script, "bash", work}
		want, wantCode := bare(t, argv...)
		if !strings.Contains(want, "files ok\n") || !strings.Contains(want, "deep True\n") {
			t.Fatalf("the bare run did not work that deep (exit %d):\n%s", wantCode, want)
		}
		r := supervise(t, pol, argv)
		if r.stdout != want || r.code != wantCode {
			t.Errorf("%s policy: under vigil (exit %d):\n%s\nalone (exit %d):\n%s", name, r.code, r.stdout, wantCode, want)
		}
	}
}
