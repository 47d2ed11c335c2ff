from __future__ import annotations

import functools
import operator
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from crossmodal.data import (
    AudioSpec,
    DecoderCrashError,
    MediaError,
    VideoSpec,
    check_manifest,
    read_manifest,
    run_isolated,
)

SPEC_V = VideoSpec(num_frames=4, height=32, width=32)
SPEC_A = AudioSpec(sample_rate=16000, seconds=2.0)


@pytest.mark.slow
def test_isolated_jobs_survive_crashes_and_hangs() -> None:
    # Jobs are callables run by operator.call in the child: builtins pickle by reference,
    # so the child needs no test module.
    jobs = {
        "ok": functools.partial(abs, -3),
        "segv": functools.partial(signal.raise_signal, signal.SIGSEGV),
        "after_crash": functools.partial(abs, -4),
        "raise": functools.partial(time.sleep, -1),
        "hang": functools.partial(time.sleep, 60),
        "last": functools.partial(abs, -5),
    }
    names = {id(job): name for name, job in jobs.items()}
    results = {
        names[id(job)]: outcome
        for job, outcome in run_isolated(
            operator.call, list(jobs.values()), path_of=lambda j: names[id(j)], timeout=3.0
        )
    }
    assert (results["ok"], results["after_crash"], results["last"]) == (3, 4, 5)
    assert isinstance(results["segv"], DecoderCrashError)
    assert str(results["segv"]) == "segv: decoder crashed (signal 11)"
    assert isinstance(results["hang"], DecoderCrashError)
    assert "no answer within 3 s" in str(results["hang"])
    assert isinstance(results["raise"], ValueError)  # the job's own error, passed back


def test_media_errors_cross_process_boundaries() -> None:
    import pickle

    err = pickle.loads(pickle.dumps(MediaError("a b.mp4", "refused")))
    assert (type(err), err.path, err.reason, str(err)) == (
        MediaError,
        "a b.mp4",
        "refused",
        "a b.mp4: refused",
    )


def _check_report(problems: list, expected: dict) -> None:
    by_clip = {p.clip_id: p for p in problems}
    assert sorted(by_clip) == sorted(expected)
    assert len(problems) == len(expected)  # one problem per bad clip, none for good ones
    for clip, (name, kind, reason) in expected.items():
        problem = by_clip[clip]
        assert Path(problem.path).name == name
        assert problem.kind == kind
        assert reason in problem.reason, (clip, problem.reason)


def test_check_lists_every_problem_in_process(mixed: Path, mixed_expected: dict) -> None:
    count, problems = check_manifest(mixed, SPEC_V, SPEC_A, isolate=False)
    assert count == 11
    _check_report(problems, mixed_expected)


@pytest.mark.slow
def test_check_isolated_gives_the_same_report(mixed: Path, mixed_expected: dict) -> None:
    records = [r for r in read_manifest(mixed) if r.id in ("good", "text", "silent", "missing")]
    count, problems = check_manifest(records, SPEC_V, SPEC_A)
    assert count == 4
    _check_report(
        problems, {k: v for k, v in mixed_expected.items() if k in ("text", "silent", "missing")}
    )


def test_truncated_file_with_index_up_front(tmp_path: Path, make_video, manifest_writer) -> None:
    # With the index (moov) at the start, a cut file opens and then runs out of data.
    path = make_video("fast.mp4", frames=36, container_format="mp4")
    import av

    with (
        av.open(str(path)) as src,
        av.open(str(tmp_path / "faststart.mp4"), "w", options={"movflags": "faststart"}) as dst,
    ):
        streams = {s.index: dst.add_stream_from_template(s) for s in src.streams}
        for packet in src.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                dst.mux(packet)
    data = (tmp_path / "faststart.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: int(len(data) * 0.6)])
    _, problems = check_manifest(
        manifest_writer(tmp_path, [{"id": "cut", "video": "cut.mp4"}]),
        SPEC_V,
        SPEC_A,
        isolate=False,
    )
    assert len(problems) == 1
    assert problems[0].kind == "CorruptMediaError"
    assert "truncated or corrupt file" in problems[0].reason


def test_check_accepts_the_odd_but_valid(
    tmp_path: Path, make_video, helpers, manifest_writer
) -> None:
    times = np.cumsum([0.0] + [0.05, 0.2] * 12)
    make_video("vfr.mp4", frames=len(times), frame_times=times)
    surround = np.tile(helpers.tone(3.0, 16000), (6, 1))
    make_video("surround.mp4", frames=36, audio=surround)
    make_video("low.mp4", frames=36, audio=helpers.tone(3.0, 8000), sample_rate=8000)
    make_video("high.mp4", frames=36, audio=helpers.tone(3.0, 96000), sample_rate=96000)
    make_video("tall.mp4", frames=36, size=(4000, 16), video_codec="mpeg4")
    make_video("odd.mp4", frames=36, size=(4000, 17), video_codec="mpeg4")
    names = ["vfr", "surround", "low", "high", "tall", "odd"]
    manifest = manifest_writer(tmp_path, [{"id": n, "video": f"{n}.mp4"} for n in names])
    count, problems = check_manifest(manifest, SPEC_V, SPEC_A, isolate=False)
    assert count == 6
    assert problems == []
