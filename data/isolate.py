"""Run decoding jobs in a child process, so a decoder that crashes or hangs on a bad
file costs that file, not the calling process.

decord and ffmpeg are C++/C: on some corrupt inputs they can segfault or loop forever,
which no ``try`` catches. :func:`run_isolated` feeds jobs one by one to a worker
process; when the worker dies or stays silent past ``timeout`` seconds, the job gets a
:class:`DecoderCrashError` and a fresh worker takes the remaining jobs.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from crossmodal.data.errors import DecoderCrashError

log = logging.getLogger(__name__)

T = TypeVar("T")
_NO_ANSWER = object()
_READY = "ready"
# A fresh worker imports torch, decord and PyAV before it can take a job.
STARTUP_TIMEOUT = 300.0
R = TypeVar("R")


def _serve(func: Callable[[Any], Any], conn: Connection) -> None:
    conn.send(_READY)  # imports are done: job timeouts start counting from here
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        try:
            result: Any = func(job)
        except Exception as err:  # handed to the parent, which yields it for this job
            result = err
        try:
            conn.send(result)
        except (TypeError, AttributeError, ValueError) as err:  # unpicklable result
            conn.send(RuntimeError(f"result of {job!r} cannot be sent back: {err}"))


class _Worker:
    def __init__(self, func: Callable[[Any], Any]) -> None:
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(func, child), daemon=True)
        self.process.start()
        child.close()
        try:
            ready = self.conn.poll(STARTUP_TIMEOUT) and self.conn.recv() == _READY
        except (EOFError, ConnectionResetError):
            ready = False
        if not ready:
            self.kill()
            raise RuntimeError(
                f"the isolated decoding process did not start (exit code {self.process.exitcode})"
            )

    def stop(self) -> None:
        self.conn.close()
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()


def run_isolated(
    func: Callable[[T], R],
    jobs: Iterable[T],
    *,
    path_of: Callable[[T], str] = str,
    timeout: float = 60.0,
) -> Iterator[tuple[T, R | BaseException]]:
    """Yield ``(job, func(job))`` for each job, computed in a child process.

    ``func`` must be picklable (a module-level function). An exception raised by
    ``func`` is yielded in place of the result; a crash (the worker exits) or a hang
    (no answer within ``timeout`` s, counted once the worker has started) yields a :class:`DecoderCrashError` for
    ``path_of(job)`` and restarts the worker. The worker is spawned (not forked), so it
    starts clean of the caller's threads.
    """
    worker: _Worker | None = None
    try:
        for job in jobs:
            if worker is None:
                worker = _Worker(func)
            try:
                worker.conn.send(job)
                answered = worker.conn.poll(timeout)
                outcome = worker.conn.recv() if answered else _NO_ANSWER
            except (EOFError, BrokenPipeError, ConnectionResetError):
                outcome, answered = _NO_ANSWER, True
            if outcome is _NO_ANSWER:
                if answered:
                    worker.process.join(timeout=5)
                    code = worker.process.exitcode
                    reason = (
                        f"decoder crashed (signal {-code})"
                        if code is not None and code < 0
                        else f"decoder process exited (code {code})"
                    )
                else:
                    reason = f"decoder hung (no answer within {timeout:g} s)"
                log.warning("%s: %s; restarting the decoding process", path_of(job), reason)
                worker.kill()
                worker = None
                yield job, DecoderCrashError(path_of(job), reason)
                continue
            yield job, outcome
    finally:
        if worker is not None:
            worker.stop()
