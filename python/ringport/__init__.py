"""ringport: zero-copy IPC over shared-memory rings, from Python.

A producer copies any buffer into a ring (``Producer.send``) or writes in place
(``Producer.reserve`` gives a ``Reservation``, a writable buffer, committed at the end of a
``with`` block); a consumer borrows each frame in place (``Consumer.recv`` gives a ``Frame``:
``memoryview(frame)``, ``numpy.frombuffer(frame)``) until it releases it, best in a ``with``
block. Waiting calls release the GIL. ``Target`` and ``Harness`` are the two ends of a fuzzing
harness.
"""

from ringport._ringport import (  # noqa: F401
    Case,
    Channel,
    Consumer,
    Corrupted,
    Coverage,
    Frame,
    Harness,
    Listener,
    MpmcConsumer,
    MpmcProducer,
    MpmcRing,
    PeerGone,
    Producer,
    Reservation,
    RingportError,
    Target,
    Verdict,
    fork_server,
    remove_segment,
)

__all__ = [
    "Case",
    "Channel",
    "Consumer",
    "Corrupted",
    "Coverage",
    "Frame",
    "Harness",
    "Listener",
    "MpmcConsumer",
    "MpmcProducer",
    "MpmcRing",
    "PeerGone",
    "Producer",
    "Reservation",
    "RingportError",
    "Target",
    "Verdict",
    "fork_server",
    "remove_segment",
]
