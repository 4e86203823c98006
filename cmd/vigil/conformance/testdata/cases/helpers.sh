# Programs that start helper processes and talk to them: gpg and its agent
# (a socket in GNUPGHOME), a tmux server (a socket, a pty, a detached
# session), script (a pty), python3's multiprocessing (fork, forkserver and
# spawn pools, a queue, POSIX semaphores and shared memory in /dev/shm) and
# ssh-keygen. Keys and signatures differ per run: the tree compares their
# names and modes, not their bytes (conformance_test.go).
. "$CONFORMANCE_DATA/cases/lib.sh"
umask 022
export HOME=$PWD GNUPGHOME=$PWD/gnupg
mkdir -m 0700 gnupg
x gpg --batch --quiet --pinentry-mode loopback --passphrase '' --quick-gen-key 'T <t@example.org>' ed25519 sign 0 2>/dev/null
echo data >msg
x gpg --batch --quiet --pinentry-mode loopback --passphrase '' -u t@example.org --detach-sign msg
gpg --batch --verify msg.sig msg 2>&1 | grep -c "Good signature"
x gpgconf --kill gpg-agent
# The key's files are named after its fingerprint, new in every run.
echo "keys: $(ls gnupg/private-keys-v1.d | wc -l), revocations: $(ls gnupg/openpgp-revocs.d | wc -l)"
rm -r gnupg/private-keys-v1.d gnupg/openpgp-revocs.d
x tmux -S tmux.sock new-session -d -s work -x 80 -y 24 'sleep 30'
tmux -S tmux.sock list-sessions -F '#{session_name} #{window_width}x#{window_height}'
x tmux -S tmux.sock kill-server
x script -q -c 'tty >/dev/null && echo "a terminal"; stty size </dev/tty' /dev/null </dev/null
x /usr/bin/python3 "$CONFORMANCE_DATA/python/multiproc.py"
x ssh-keygen -q -t ed25519 -N '' -C conformance -f key
finish
