"""Decode whole files into batches of model-ready windows, in this process or in worker
processes, so that embedding can start while decoding streams on.

A :class:`WindowJob` names a file and how to cut it; :func:`window_batches` streams one
job's :class:`~crossmodal.data.windows.WindowBatch` es; :func:`ingest` runs many jobs,
with ``workers`` decoding processes (0: in this process). Memory stays bounded whatever
the files' lengths: each worker holds one batch in hand, and at most two per worker wait
to be consumed.
"""

from __future__ import annotations

import logging
import multiprocessing
import queue
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from crossmodal.data.errors import DecoderCrashError, MediaError
from crossmodal.data.specs import AudioSpec, VideoSpec
from crossmodal.data.windows import WindowBatch

log = logging.getLogger(__name__)

# How long the parent waits for a worker's next message before checking it is alive.
POLL_SECONDS = 1.0


@dataclass(frozen=True)
class WindowJob:
    """Cut ``path``'s ``modality`` ("music": its audio or soundtrack; "video": its
    frames) into ``audio_spec.seconds`` windows ``hop`` apart, ``batch_size`` at a time;
    pad a file shorter than one window when it lasts at least ``min_seconds`` (None:
    never)."""

    path: Path
    modality: str
    video_spec: VideoSpec
    audio_spec: AudioSpec
    hop: float
    batch_size: int = 32
    min_seconds: float | None = None


def window_batches(job: WindowJob) -> Iterator[WindowBatch]:
    """The batches of one job, decoded as they are consumed. The last one carries the
    decoded end (``end``)."""
    from crossmodal.data.audio import audio_window_batches
    from crossmodal.data.video import video_window_batches

    window = float(job.audio_spec.seconds)
    if job.modality == "video":
        yield from video_window_batches(
            job.path, job.video_spec, window, job.hop, job.batch_size, min_seconds=job.min_seconds
        )
    elif job.modality == "music":
        yield from audio_window_batches(
            job.path, job.audio_spec, job.hop, job.batch_size, min_seconds=job.min_seconds
        )
    else:
        raise ValueError(f"modality must be 'music' or 'video', got {job.modality!r}")


# What :func:`ingest` yields after a job's last batch (or in place of it, an error).
DONE = "done"
IngestEvent = tuple[int, "WindowBatch | MediaError | str"]


def ingest(jobs: Sequence[WindowJob], workers: int = 0) -> Iterator[IngestEvent]:
    """``(job index, event)`` for every job: its batches in order, then :data:`DONE`,
    or a :class:`MediaError` once it fails. With ``workers`` > 0, jobs are decoded in
    that many processes and the events of different jobs interleave (each job's own stay
    in order); a worker that crashes costs its current job a :class:`DecoderCrashError`."""
    if workers <= 0:
        for index, job in enumerate(jobs):
            try:
                for batch in window_batches(job):
                    yield index, batch
            except MediaError as err:
                yield index, err
                continue
            yield index, DONE
        return
    yield from _ingest_parallel(jobs, workers)


def _work(tasks: Any, results: Any) -> None:
    torch.set_num_threads(1)  # one core per decoding process
    while True:
        item = tasks.get()
        if item is None:
            return
        index, job = item
        results.put(("start", index, None))
        try:
            for batch in window_batches(job):
                # numpy, not torch: torch tensors would travel through shared-memory files.
                payload = (batch.starts, batch.inputs.numpy(), batch.padded, batch.end)
                results.put(("batch", index, payload))
        except MediaError as err:
            results.put(("error", index, err))
            continue
        except Exception as err:  # an unexpected failure still ends the job, with its reason
            results.put(("error", index, MediaError(job.path, f"decoding failed: {err!r}")))
            continue
        results.put(("done", index, None))


def _ingest_parallel(jobs: Sequence[WindowJob], workers: int) -> Iterator[IngestEvent]:
    ctx = multiprocessing.get_context("spawn")
    tasks = ctx.Queue()
    results = ctx.Queue(maxsize=2 * workers)
    for item in enumerate(jobs):
        tasks.put(item)
    count = min(workers, len(jobs))
    for _ in range(count):
        tasks.put(None)
    procs = [ctx.Process(target=_work, args=(tasks, results), daemon=True) for _ in range(count)]
    for proc in procs:
        proc.start()
    open_jobs: set[int] = set()
    finished = 0
    try:
        while finished < len(jobs):
            try:
                kind, index, payload = results.get(timeout=POLL_SECONDS)
            except queue.Empty:
                if all(not p.is_alive() for p in procs):
                    # Every worker is gone: the jobs they held died with them.
                    for index in sorted(open_jobs):
                        yield index, DecoderCrashError(jobs[index].path, "decoder process died")
                        finished += 1
                    open_jobs.clear()
                    if finished < len(jobs):
                        raise RuntimeError(
                            "the decoding processes exited before the work was done"
                        ) from None
                continue
            if kind == "start":
                open_jobs.add(index)
            elif kind == "batch":
                starts, inputs, padded, end = payload
                yield index, WindowBatch(starts, torch.from_numpy(inputs), padded, end)
            else:
                open_jobs.discard(index)
                finished += 1
                yield index, (payload if kind == "error" else DONE)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.kill()
            proc.join()
