"""Calls that must not block on a FIFO: run in a thread with a deadline, and released if they did block."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path


def within(seconds: float, unblock: list[Path], action: Callable[[], object]) -> object:
    """`action()` in a thread that must end within `seconds`; its result or the exception it raised.

    A thread blocked opening one of the FIFOs in `unblock` is released afterwards (a writer appears and
    closes at once), so a regression fails this assertion instead of hanging the suite."""
    result: list[object] = []

    def run() -> None:
        try:
            result.append(action())
        except Exception as exc:  # noqa: BLE001 -- returned to the test to assert on
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    hung = thread.is_alive()
    for fifo in unblock:
        for _ in range(50):
            if not thread.is_alive():
                break
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
            thread.join(0.1)
    assert not hung, f"blocked for over {seconds} s"
    return result[0]
