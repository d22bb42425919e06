"""A fuzzing harness in Python: this file is both the driver and, run by it, the target.

The target parses its cases and crashes on one of them; the driver sends cases, gets a verdict
for each (the crash blamed on its case, the target restarted for the next) and the coverage the
target counted.

    pip install ./python && python python/examples/fuzz_harness.py
"""

import os
import sys

import ringport


def parse(data: bytes, coverage) -> bytes:
    """The code under test: crashes on a case that starts with b"FUZ" and ends with b"!"."""
    if data[:1] == b"F":
        coverage.hit(1)
        if data[1:2] == b"U":
            coverage.hit(2)
            if data[2:3] == b"Z" and data.endswith(b"!"):
                os.abort()
    return str(len(data)).encode()


def target():
    ringport.fork_server()  # after the set-up, before any thread: each case runs in a fork
    me = ringport.Target.from_env()
    coverage = me.coverage
    me.run(lambda case: parse(bytes(case), coverage))


def driver():
    harness = ringport.Harness(
        [sys.executable, __file__, "--target"], coverage=64, fork_server=True
    )
    for case in [b"hello", b"F", b"FU", b"FUZZ", b"FUZ!", b"after the crash"]:
        verdict = harness.run(case)
        hits = sum(1 for b in harness.take_coverage() if b)
        print(f"{case!r:20} {verdict.kind:9} {verdict.result!r:8} {hits} edge(s)")
        if case == b"FUZ!":
            assert verdict.kind == "crashed" and verdict.signal == 6
        else:
            assert verdict.kind == "ok" and verdict.result == str(len(case)).encode()
    print(harness.stats)


if __name__ == "__main__":
    target() if "--target" in sys.argv else driver()
