"""Frames of float32 samples from one process to another, read in place as numpy arrays.

    pip install ./python numpy && python python/examples/numpy_frames.py
"""

import multiprocessing as mp
import os

import numpy as np

import ringport

FRAMES = 1000
SAMPLES = 4096  # 16 KiB a frame


def produce(name):
    producer = ringport.Producer.open(name)
    for i in range(FRAMES):
        producer.send(np.full(SAMPLES, i, dtype=np.float32))  # any buffer; copied once


def main():
    name = f"ringport-example-numpy-{os.getpid()}"
    consumer = ringport.Consumer.create(name, capacity=1 << 20)
    child = mp.get_context("spawn").Process(target=produce, args=(name,))
    child.start()
    total = 0.0
    for i in range(FRAMES):
        with consumer.recv(timeout=10) as frame:
            samples = np.frombuffer(frame, dtype=np.float32)  # a view of the ring: no copy
            assert samples.shape == (SAMPLES,) and samples[0] == i
            total += float(samples.sum())
            del samples  # the frame cannot be released while a view of it lives
    child.join()
    print(f"{FRAMES} frames of {SAMPLES} samples read in place; sum {total:.0f}")
    assert total == SAMPLES * FRAMES * (FRAMES - 1) / 2


if __name__ == "__main__":
    main()
