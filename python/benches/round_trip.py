"""Python round trips: ringport against multiprocessing.Pipe and against
multiprocessing.shared_memory with a Queue for the turns, 64 B and 1 MiB, two processes.

    python python/benches/round_trip.py [ROUNDS]

Each round runs every contender once at each size (a sample of about 0.3 s, after a warm-up)
in a fresh child process (spawned), the order turning from round to round; ratios are taken
within each round and their medians printed. The echo copies each message once (out of the
ring, the pipe or the segment into the reply), as a server that answers with what it read.
"""

import multiprocessing as mp
import os
import statistics
import sys
import time
from multiprocessing import shared_memory

import ringport

SAMPLE_S = 0.3


def ringport_child(ping, pong, rounds, spin):
    consumer = ringport.Consumer.open(ping, spin=spin)
    producer = ringport.Producer.open(pong, spin=spin)
    for _ in range(rounds):
        with consumer.recv() as frame:
            producer.send(frame)


def ringport_parent(size, n, spin=None):
    base = f"ringport-pybench-{os.getpid()}-{time.monotonic_ns()}"
    ping, pong = base + "-ping", base + "-pong"
    capacity = 1 << max(16, (4 * (size + 64)).bit_length())
    producer = ringport.Producer.create(ping, capacity=capacity, max_frame=size, spin=spin)
    consumer = ringport.Consumer.create(pong, capacity=capacity, max_frame=size, spin=spin)
    child = mp.get_context("spawn").Process(target=ringport_child, args=(ping, pong, n + 10, spin))
    child.start()
    message = os.urandom(size)
    for _ in range(10):
        producer.send(message)
        consumer.recv_bytes()
    started = time.perf_counter()
    for _ in range(n):
        producer.send(message)
        with consumer.recv() as frame:
            assert len(frame) == size
    elapsed = time.perf_counter() - started
    child.join()
    return elapsed / n


def pipe_child(conn, rounds):
    for _ in range(rounds):
        conn.send_bytes(conn.recv_bytes())


def pipe_parent(size, n):
    ours, theirs = mp.get_context("spawn").Pipe()
    child = mp.get_context("spawn").Process(target=pipe_child, args=(theirs, n + 10))
    child.start()
    message = os.urandom(size)
    for _ in range(10):
        ours.send_bytes(message)
        ours.recv_bytes()
    started = time.perf_counter()
    for _ in range(n):
        ours.send_bytes(message)
        assert len(ours.recv_bytes()) == size
    elapsed = time.perf_counter() - started
    child.join()
    return elapsed / n


def shm_child(name, size, requests, replies, rounds):
    shm = shared_memory.SharedMemory(name=name)
    try:
        for _ in range(rounds):
            requests.get()
            shm.buf[size : 2 * size] = shm.buf[:size]  # the reply: one copy, as the others
            replies.put(1)
    finally:
        shm.close()


def shm_parent(size, n):
    ctx = mp.get_context("spawn")
    shm = shared_memory.SharedMemory(create=True, size=2 * size)
    requests, replies = ctx.Queue(), ctx.Queue()
    child = ctx.Process(target=shm_child, args=(shm.name, size, requests, replies, n + 10))
    child.start()
    message = os.urandom(size)
    try:
        for _ in range(10):
            shm.buf[:size] = message
            requests.put(1)
            replies.get()
        started = time.perf_counter()
        for _ in range(n):
            shm.buf[:size] = message
            requests.put(1)
            replies.get()
            assert len(shm.buf[size : 2 * size]) == size  # read in place, as ringport's
        elapsed = time.perf_counter() - started
        child.join()
    finally:
        shm.close()
        shm.unlink()
    return elapsed / n


CONTENDERS = {
    "ringport": ringport_parent,
    # The same with blocking calls that spin 1 ms before they sleep (the default is 20 us).
    "ringport, spin 1 ms": lambda size, n: ringport_parent(size, n, spin=1e-3),
    "Pipe": pipe_parent,
    "shared_memory + Queue": shm_parent,
}


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    sizes = [64, 1 << 20]
    # Round trips a sample: about SAMPLE_S of each, from a first guess of its speed.
    guess = {("ringport", 64): 10e-6, ("Pipe", 64): 40e-6, ("shared_memory + Queue", 64): 150e-6}
    times = {(c, s): [] for c in CONTENDERS for s in sizes}
    ratios = {(c, s): [] for c in CONTENDERS if c != "ringport" for s in sizes}
    # The spinning form is compared with the same rivals: its ratios are theirs over it.
    spin_ratios = {(c, s): [] for c in ("Pipe", "shared_memory + Queue") for s in sizes}
    names = list(CONTENDERS)
    for r in range(rounds):
        order = names[r % len(names) :] + names[: r % len(names)]
        for size in sizes:
            this_round = {}
            for contender in order:
                per = guess.get((contender, size), 2e-3)
                n = max(20, int(SAMPLE_S / per))
                t = CONTENDERS[contender](size, n)
                guess[(contender, size)] = t
                this_round[contender] = t
                times[(contender, size)].append(t)
            for contender in ratios_keys(size, ratios):
                ratios[(contender, size)].append(this_round[contender] / this_round["ringport"])
            for contender in ratios_keys(size, spin_ratios):
                spin_ratios[(contender, size)].append(
                    this_round[contender] / this_round["ringport, spin 1 ms"]
                )
        print(f"round {r + 1}/{rounds} done", file=sys.stderr)
    for size in sizes:
        label = "64 B" if size == 64 else "1 MiB"
        line = [f"{label}: ringport {statistics.median(times[('ringport', size)]) * 1e6:.1f} us"]
        for contender in ratios_keys(size, ratios):
            med = statistics.median(times[(contender, size)]) * 1e6
            x = statistics.median(ratios[(contender, size)])
            line.append(f"{contender} {med:.1f} us ({x:.2f}x ringport's)")
        print("; ".join(line))
        spun = [
            f"{c} {statistics.median(spin_ratios[(c, size)]):.2f}x"
            for c in ratios_keys(size, spin_ratios)
        ]
        print(f"{label}, over ringport spinning 1 ms: " + ", ".join(spun))


def ratios_keys(size, ratios):
    return [c for (c, s) in ratios if s == size]


if __name__ == "__main__":
    main()
