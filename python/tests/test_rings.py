"""ringport from Python, across processes: zero-copy frames and their lifetimes, any buffer sent,
the GIL released while waiting, a producer's death, MPMC and the Channel."""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import ringport


def child(code):
    """Runs `code` in another Python process (ringport imported)."""
    return subprocess.Popen([sys.executable, "-c", "import ringport, sys\n" + textwrap.dedent(code)])


def frame_bytes(i):
    return bytes((i * 31 + k * 7) % 256 for k in range(1 + i % 300))


def test_frames_stream_between_processes_in_place(name):
    consumer = ringport.Consumer.create(name, capacity=1 << 16)
    p = child(
        f"""
        producer = ringport.Producer.open({name!r})
        for i in range(5000):
            producer.send(bytes((i * 31 + k * 7) % 256 for k in range(1 + i % 300)))
        """
    )
    for i in range(5000):
        with consumer.recv(timeout=10) as frame:
            view = memoryview(frame)
            assert view.readonly and view.tobytes() == frame_bytes(i)
            array = np.frombuffer(frame, dtype=np.uint8)
            assert array[0] == frame_bytes(i)[0]
            del view, array
    assert p.wait(timeout=10) == 0
    with pytest.raises(ringport.PeerGone):
        consumer.recv(timeout=10)


def test_a_frame_cannot_be_read_after_release_nor_released_under_a_view(name):
    producer = ringport.Producer.create(name)
    consumer = ringport.Consumer.open(name)
    producer.send(b"hello")
    frame = consumer.recv()
    view = memoryview(frame)
    with pytest.raises(BufferError):
        frame.release()
    # The endpoint refuses to go on while the frame is held.
    with pytest.raises(BufferError):
        consumer.recv(timeout=0)
    assert bytes(view) == b"hello"
    view.release()
    frame.release()
    assert frame.released
    with pytest.raises(ValueError):
        bytes(frame)
    with pytest.raises(ValueError):
        memoryview(frame)
    assert consumer.recv(timeout=0) is None


def test_send_takes_any_buffer(name):
    producer = ringport.Producer.create(name)
    consumer = ringport.Consumer.open(name)
    array = np.arange(20, dtype=np.uint16)
    for data, want in [
        (b"bytes", b"bytes"),
        (bytearray(b"bytearray"), b"bytearray"),
        (memoryview(b"a view"), b"a view"),
        (array, array.tobytes()),
        (array[::2], array[::2].tobytes()),  # not contiguous: copied out in order
    ]:
        assert producer.send(data)
        assert consumer.recv_bytes(timeout=1) == want
    with pytest.raises(TypeError):
        producer.send("a str is not a buffer")


def test_waits_release_the_gil_and_time_out(name):
    producer = ringport.Producer.create(name)
    consumer = ringport.Consumer.open(name)
    assert consumer.recv(timeout=0) is None
    with pytest.raises(TimeoutError):
        consumer.recv(timeout=0.05)
    done = []
    waiter = threading.Thread(target=lambda: done.append(consumer.recv_bytes(timeout=3)))
    waiter.start()
    time.sleep(0.1)
    # With the GIL held by the waiting thread, this would not run until its wait ended.
    started = time.monotonic()
    total = sum(range(2_000_000))
    assert total > 0 and waiter.is_alive(), "the main thread ran only after the wait"
    assert time.monotonic() - started < 2.5
    producer.send(b"wake")
    waiter.join(timeout=5)
    assert done == [b"wake"]


def test_a_killed_producer_is_seen_gone_after_its_frames(name):
    consumer = ringport.Consumer.create(name)
    p = child(
        f"""
        import os, signal
        producer = ringport.Producer.open({name!r})
        for i in range(100):
            producer.send(i.to_bytes(8, "little"))
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    got = []
    while True:
        try:
            got.append(int.from_bytes(consumer.recv_bytes(timeout=10), "little"))
        except ringport.PeerGone:
            break
    assert p.wait(timeout=10) == -signal.SIGKILL
    assert got == list(range(100))


def test_mpmc_and_channel_across_processes(name):
    ring = ringport.MpmcRing.create(name, slots=64, slot_size=64)
    path = "@" + name
    listener = ringport.Listener(path)
    p = child(
        f"""
        ring = ringport.MpmcRing.open({name!r})
        producer = ring.producer()
        for i in range(1000):
            producer.send(i.to_bytes(8, "little"))
        channel = ringport.Channel.connect({path!r})
        while True:
            try:
                message = channel.recv()
            except ringport.PeerGone:
                break
            channel.send(message[::-1])
        """
    )
    consumer = ring.consumer()
    total = 0
    for _ in range(1000):
        with consumer.recv(timeout=10) as frame:
            total += int.from_bytes(bytes(frame), "little")
    assert total == sum(range(1000))
    channel = listener.accept(timeout=10)
    for size in [1, 100, 100_000, 3_000_000]:
        message = os.urandom(size)
        channel.send(message)
        assert channel.recv(timeout=10) == message[::-1]
    del channel
    assert p.wait(timeout=10) == 0


def test_the_numpy_example_runs():
    example = os.path.join(os.path.dirname(__file__), "..", "examples", "numpy_frames.py")
    out = subprocess.run([sys.executable, example], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "1000 frames of 4096 samples read in place" in out.stdout
