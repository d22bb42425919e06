"""Writing in place (reservations) and the fuzzing harness from Python: a target and its driver
in two processes, with crashes, hangs and the coverage map."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import ringport


def test_a_reservation_is_written_in_place_and_committed(name):
    producer = ringport.Producer.create(name, capacity=1 << 16)
    consumer = ringport.Consumer.open(name)
    room = producer.reserve(64)
    assert len(room) == 64 and not room.done
    view = memoryview(room)
    assert not view.readonly
    view[:5] = b"hello"
    # Refused while a view is alive: a write after the commit would change a published frame.
    with pytest.raises(BufferError):
        room.commit(5)
    # The producer refuses other calls while the room is held.
    with pytest.raises(BufferError):
        producer.send(b"x", timeout=0)
    view.release()
    # More than was reserved: refused, and the reservation stays.
    with pytest.raises(ValueError):
        room.commit(65)
    assert not room.done
    room.commit(5)
    assert room.done
    with pytest.raises(ValueError):
        memoryview(room)
    with pytest.raises(ValueError):
        room.commit()
    with consumer.recv(timeout=0) as frame:
        assert bytes(frame) == b"hello"

    # numpy writes in place; the context manager commits all that was reserved.
    with producer.reserve(8 * 4) as room:
        array = np.frombuffer(room, dtype=np.uint64)
        array[:] = [1, 2, 3, 4]
        del array
    with consumer.recv(timeout=0) as frame:
        assert np.frombuffer(frame, dtype=np.uint64).tolist() == [1, 2, 3, 4]

    # Aborted explicitly, by a raising block, or by being dropped: never seen.
    producer.reserve(16).abort()
    with pytest.raises(RuntimeError):
        with producer.reserve(16) as room:
            memoryview(room)[:4] = b"lost"
            raise RuntimeError("the block failed")
    assert room.done
    room = producer.reserve(16)
    del room
    producer.send(b"after")
    with consumer.recv(timeout=0) as frame:
        assert bytes(frame) == b"after"
    assert consumer.recv(timeout=0) is None


def test_reserve_waits_for_room_and_tries(name):
    producer = ringport.Producer.create(name, capacity=4096)
    consumer = ringport.Consumer.open(name)
    held = []
    while (room := producer.reserve(1000, timeout=0)) is not None:
        room.commit()
        held.append(1)
    assert 1 <= len(held) < 5
    with pytest.raises(TimeoutError):
        producer.reserve(1000, timeout=0.01)
    # Drained (the consumer hands the space back once it has caught up), there is room again.
    for _ in held:
        with consumer.recv(timeout=0):
            pass
    assert consumer.recv(timeout=0) is None
    producer.reserve(1000, timeout=1).commit()
    with pytest.raises(ValueError):
        producer.reserve(1 << 20)


def test_mpmc_reservations(name):
    ring = ringport.MpmcRing.create(name, slots=4, slot_size=64)
    producer, consumer = ring.producer(), ring.consumer()
    for i in range(100):
        with producer.reserve(8) as room:
            np.frombuffer(room, dtype=np.uint64)[0] = i
        with consumer.recv(timeout=0) as frame:
            assert np.frombuffer(frame, dtype=np.uint64)[0] == i
    with pytest.raises(ValueError):
        producer.reserve(65)


TARGET = textwrap.dedent(
    """
    import os, sys, time
    import ringport

    def test(case):
        data = bytes(case)
        if data == b"crash":
            os.abort()
        if data == b"hang":
            time.sleep(60)
        if target.coverage is not None:
            target.coverage.hit(len(data))
        return data[::-1]

    if len(sys.argv) > 1 and sys.argv[1] == "fork":
        ringport.fork_server()
    target = ringport.Target.from_env()
    if len(sys.argv) > 1 and sys.argv[1] == "loop":
        while True:
            try:
                case = target.next_case()
            except ringport.PeerGone:
                break
            with case:
                view = memoryview(case)
                result = test(view)
                view.release()
                case.finish(result)
    else:
        target.run(test)
    """
)


@pytest.fixture
def target_script(tmp_path):
    path = tmp_path / "target.py"
    path.write_text(TARGET)
    return str(path)


@pytest.mark.parametrize("mode", ["run", "loop", "fork"])
def test_a_python_target_under_a_python_driver(target_script, mode):
    harness = ringport.Harness(
        [sys.executable, target_script, mode],
        case_timeout=2.0,
        coverage=256,
        fork_server=(mode == "fork"),
    )
    first = harness.target_pid
    for i in range(50):
        case = bytes([i % 256]) * (1 + i % 7)
        verdict = harness.run(case)
        assert verdict.kind == "ok" and verdict.id == i and verdict.result == case[::-1]
    coverage = harness.take_coverage()
    assert coverage is not None and len(coverage) == 256
    assert sum(1 for b in coverage if b) == 7  # case lengths 1..7
    crashed = harness.run(b"crash")
    assert crashed.kind == "crashed" and crashed.id == 50
    assert crashed.signal == 6 or crashed.exit_code is not None
    # A new target takes the next case.
    assert harness.run(b"abc").result == b"cba"
    hung = harness.run(b"hang")
    assert hung.kind == "timed_out" and hung.id == 52
    assert harness.run(b"xy").result == b"yx"
    stats = harness.stats
    assert stats["cases"] == 54 and stats["crashes"] == 1 and stats["timeouts"] == 1
    assert stats["restarts"] == 2
    assert harness.target_pid != first


def test_cases_in_flight(target_script):
    harness = ringport.Harness([sys.executable, target_script], in_flight=8)
    ids = [harness.submit(bytes([i])) for i in range(8)]
    verdicts = [harness.next_verdict() for _ in ids]
    assert [v.id for v in verdicts] == ids
    assert [v.result for v in verdicts] == [bytes([i]) for i in range(8)]


def test_a_target_outside_a_harness_is_told_so():
    os.environ.pop("RINGPORT_HARNESS", None)
    with pytest.raises(ValueError, match="RINGPORT_HARNESS"):
        ringport.Target.from_env()
    with pytest.raises(ValueError):
        ringport.Harness([])


def test_the_harness_example_runs():
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "fuzz_harness.py")
    out = subprocess.run([sys.executable, example], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "crashed" in out.stdout and "'crashes': 1" in out.stdout
