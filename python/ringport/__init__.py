"""ringport: zero-copy IPC over shared-memory rings, from Python.

A producer copies any buffer into a ring (``Producer.send``); a consumer borrows each frame in
place (``Consumer.recv`` gives a ``Frame``: ``memoryview(frame)``, ``numpy.frombuffer(frame)``)
until it releases it, best in a ``with`` block. Waiting calls release the GIL.
"""

from ringport._ringport import (  # noqa: F401
    Channel,
    Consumer,
    Corrupted,
    Frame,
    Listener,
    MpmcConsumer,
    MpmcProducer,
    MpmcRing,
    PeerGone,
    Producer,
    RingportError,
    remove_segment,
)

__all__ = [
    "Channel",
    "Consumer",
    "Corrupted",
    "Frame",
    "Listener",
    "MpmcConsumer",
    "MpmcProducer",
    "MpmcRing",
    "PeerGone",
    "Producer",
    "RingportError",
    "remove_segment",
]
