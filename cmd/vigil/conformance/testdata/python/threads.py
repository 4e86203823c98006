"""Threads doing file-system work at once; prints a summary that does not
depend on the order the threads ran in."""
import hashlib
import os
import sys
import threading

root = sys.argv[1]
os.makedirs(root, exist_ok=True)
results = {}
lock = threading.Lock()


def work(n):
    d = os.path.join(root, f"t{n:02d}")
    os.mkdir(d, 0o750)
    h = hashlib.sha256()
    for i in range(40):
        tmp = os.path.join(d, f".tmp{i}")
        final = os.path.join(d, f"f{i:02d}")
        with open(tmp, "x") as f:
            f.write(f"{n}:{i}\n" * (i + 1))
        os.chmod(tmp, 0o640)
        os.replace(tmp, final)
        if i % 5 == 0:
            os.link(final, final + ".hard")
        if i % 7 == 0:
            os.symlink(f"f{i:02d}", final + ".sym")
        if i % 3 == 0:
            os.unlink(final)
        else:
            with open(final, "rb") as f:
                h.update(f.read())
    sub = os.path.join(d, "sub", "deeper")
    os.makedirs(sub)
    os.rmdir(sub)
    with lock:
        results[n] = h.hexdigest()[:16]


threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
for t in threads:
    t.start()
for t in threads:
    t.join()
for n in sorted(results):
    print(n, results[n])
print("files", sum(len(fs) for _, _, fs in os.walk(root)))
