"""multiprocessing's ways of starting and feeding processes, for the
conformance suite: a fork pool, a forkserver pool and a spawn pool (each a
helper process that starts the workers), a queue, a lock and a semaphore
(POSIX semaphores in /dev/shm), and a shared memory block (shm_open)."""
import multiprocessing as mp
from multiprocessing import shared_memory


def square(x):
    return x * x


def main():
    with mp.get_context("fork").Pool(3) as p:
        print("fork", sum(p.map(square, range(1000))))
    for method in ("forkserver", "spawn"):
        with mp.get_context(method).Pool(2) as p:
            print(method, p.map(square, [7, 8]))
    shm = shared_memory.SharedMemory(create=True, size=64)
    shm.buf[:3] = b"abc"
    seen = shared_memory.SharedMemory(name=shm.name)
    print("shared", bytes(seen.buf[:3]))
    seen.close()
    shm.close()
    shm.unlink()
    q = mp.Queue()
    p = mp.Process(target=q.put, args=(42,))
    p.start()
    print("queue", q.get())
    p.join()
    print("exit", p.exitcode)
    lock, sem = mp.Lock(), mp.Semaphore(2)
    with lock:
        sem.acquire()
        sem.acquire()
        print("semaphore taken twice, a third would block:", not sem.acquire(False))


if __name__ == "__main__":
    main()
