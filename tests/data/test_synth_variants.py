"""The corpus variants of ``crossmodal synth``: --timbres alt, --clutter F, --shake F.

Each is off by default (then the clip is the default one, bit for bit) and changes only
its own modality; shake and clutter ignore the music."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from crossmodal.apps.cli import main
from crossmodal.data import read_manifest
from crossmodal.data.synth import MOODS, SynthConfig, generate_corpus, render_clip, render_music
from crossmodal.data.synth.corpus import clip_rng
from crossmodal.data.synth.music import ALT_INSTRUMENTS, ALT_OF, INSTRUMENTS, render_note
from crossmodal.data.synth.score import sample_score
from crossmodal.errors import CrossmodalError

BASE = SynthConfig(clips=1, seed=5, duration=2.0, size=48)


def _render(mood_index: int = 0, index: int = 3, **options: object):
    """Clip 3 of seed 5 has 3-5 notes and breaks under 0.8 s in every mood."""
    return render_clip(dataclasses.replace(BASE, **options), index, mood_index)


def _partial_db(wave: np.ndarray, f0: float, sr: int, count: int = 8) -> np.ndarray:
    """Energy (dB re. the total) of each harmonic slot [(k - ½) f0, (k + ½) f0), k = 1..count:
    inharmonic partials land in their nearest slot."""
    power = np.abs(np.fft.rfft(wave * np.hanning(len(wave)))) ** 2
    freqs = np.fft.rfftfreq(len(wave), 1 / sr)
    slots = [((k - 0.5) * f0 <= freqs) & (freqs < (k + 0.5) * f0) for k in range(1, count + 1)]
    energy = np.array([power[slot].sum() for slot in slots])
    return 10 * np.log10(np.maximum(energy / energy.sum(), 1e-6))


def test_variants_off_render_the_default_clip() -> None:
    # With every variant off, render_clip is the pre-variant pipeline: the clip's own
    # generator drawn by score, music and frames in that order, nothing else drawn.
    from crossmodal.data.synth.visuals import render_frames

    assert BASE.variants() == {}
    frames, audio, _ = _render()
    rng = clip_rng(BASE.seed, 3)
    score = sample_score(MOODS[0], rng, BASE.duration)
    want_audio = render_music(score, BASE.sample_rate, rng)
    want_frames = render_frames(
        score, MOODS[0], rng, fps=BASE.fps, height=BASE.size, width=BASE.size
    )
    np.testing.assert_array_equal(audio, want_audio)
    np.testing.assert_array_equal(frames, want_frames)


def test_alt_timbres_change_the_audio_only() -> None:
    heard = set()
    for mood_index in range(len(MOODS)):
        frames, audio, score = _render(mood_index)
        frames_alt, audio_alt, score_alt = _render(mood_index, timbres="alt")
        heard.add(score.instrument)
        assert score_alt.instrument == score.instrument
        np.testing.assert_array_equal(score_alt.note_onsets, score.note_onsets)
        np.testing.assert_array_equal(frames, frames_alt)
        assert audio_alt.shape == audio.shape
        assert np.abs(audio_alt).max() <= 1.0
        assert np.abs(audio_alt - audio).max() > 0.05
    assert len(heard) >= 3


def test_alt_instruments_replace_each_default_one_and_sound_different() -> None:
    assert sorted(ALT_OF) == sorted(INSTRUMENTS)
    assert sorted(ALT_OF.values()) == sorted(ALT_INSTRUMENTS)  # one to one
    sr, pitch = 16000, 69.0  # A4: 440 Hz
    for name in INSTRUMENTS:
        default = render_note(name, pitch, 0.5, sr)
        alt = render_note(name, pitch, 0.5, sr, "alt")
        assert alt.shape == default.shape
        # Same note: the fundamental is the loudest line near 440 Hz ...
        spectrum = np.abs(np.fft.rfft(alt * np.hanning(len(alt))))
        freqs = np.fft.rfftfreq(len(alt), 1 / sr)
        band = (freqs > 350) & (freqs < 550)
        assert abs(freqs[band][spectrum[band].argmax()] - 440.0) < 10
        # ... with another timbre: some partial is at least 6 dB louder or softer.
        diff = np.abs(_partial_db(alt, 440.0, sr) - _partial_db(default, 440.0, sr))
        assert diff.max() > 6.0, (name, ALT_OF[name], diff.round(1))


def test_render_music_refuses_an_unknown_timbre_set() -> None:
    score = sample_score(MOODS[0], clip_rng(0, 0), 1.0)
    with pytest.raises(ValueError, match="timbres"):
        render_music(score, 16000, clip_rng(0, 0), timbres="organ")


def test_clutter_changes_the_frames_only_and_zero_is_none() -> None:
    frames, audio, _ = _render()
    frames_zero, audio_zero, _ = _render(clutter=0.0)
    np.testing.assert_array_equal(frames, frames_zero)
    np.testing.assert_array_equal(audio, audio_zero)
    changed = []
    for amount in (0.25, 1.0):
        frames_c, audio_c, _ = _render(clutter=amount)
        np.testing.assert_array_equal(audio, audio_c)
        np.testing.assert_array_equal(frames_c, _render(clutter=amount)[0])  # deterministic
        changed.append(np.mean(np.abs(frames_c.astype(int) - frames.astype(int)) > 12))
    assert 0.05 < changed[0] < changed[1]  # more clutter, more of the picture changed


def _shift(moved: np.ndarray, still: np.ndarray, reach: int) -> tuple[int, int]:
    """The whole-pixel (dx, dy) that best maps ``still`` onto ``moved`` (least mean
    absolute difference over the part of the frame no shift within ``reach`` uncovers)."""
    h, w = still.shape[:2]
    inner = (slice(reach, h - reach), slice(reach, w - reach))
    best = None
    for dy in range(-reach, reach + 1):
        for dx in range(-reach, reach + 1):
            shifted = np.roll(still, (dy, dx), axis=(0, 1))
            cost = np.abs(moved[inner].astype(int) - shifted[inner].astype(int)).mean()
            if best is None or cost < best[0]:
                best = (cost, dx, dy)
    return best[1], best[2]


def test_shake_moves_every_frame_within_its_amplitude_and_ignores_the_music() -> None:
    amount = 0.08  # 0.08 × 48 px: up to 3.84 px
    frames, audio, score = _render()
    frames_s, audio_s, _ = _render(shake=amount)
    np.testing.assert_array_equal(audio, audio_s)
    # Shaken against still frames of the same clip (all else is unchanged), outside the
    # breaks: a dimmed scene without its object is too flat to register.
    lit = score.gate(np.arange(len(frames)) / BASE.fps) == 1
    pairs = zip(frames_s[lit], frames[lit], strict=True)
    shifts = np.array([_shift(moved, still, reach=7) for moved, still in pairs])
    assert np.abs(shifts).max() <= amount * BASE.size + 0.5
    assert np.mean(np.any(shifts != 0, axis=1)) > 0.7
    assert len({tuple(s) for s in shifts}) > 4  # it moves, not a fixed offset
    # Another mood (another score, other accents) for the same clip: the same shake.
    frames_other, _, score_other = _render(mood_index=2)
    frames_other_s, _, _ = _render(mood_index=2, shake=amount)
    assert not np.array_equal(score_other.note_onsets, score.note_onsets)
    both = lit & (score_other.gate(np.arange(len(frames)) / BASE.fps) == 1)
    pairs = zip(frames_other_s[both], frames_other[both], strict=True)
    other = np.array([_shift(moved, still, reach=7) for moved, still in pairs])
    np.testing.assert_array_equal(other, shifts[both[lit]])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"timbres": "organ"}, "--timbres must be one of default, alt, got 'organ'"),
        ({"clutter": 2.0}, r"--clutter must be in \[0, 1\], got 2"),
        ({"clutter": -0.1}, r"--clutter must be in \[0, 1\], got -0.1"),
        ({"clutter": float("nan")}, r"--clutter must be in \[0, 1\], got nan"),
        ({"shake": -1.0}, "--shake must be a finite number >= 0, got -1"),
        ({"shake": float("inf")}, "--shake must be a finite number >= 0, got inf"),
    ],
)
def test_invalid_variant_values_raise(options: dict[str, object], message: str) -> None:
    with pytest.raises(CrossmodalError, match=message):
        dataclasses.replace(BASE, **options)


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["--clutter", "2"], "--clutter"),
        (["--shake", "-0.1"], "--shake"),
        (["--timbres", "organ"], "--timbres"),
    ],
)
def test_cli_refuses_bad_variant_values(
    argv: list[str], option: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["synth", str(tmp_path / "x"), *argv])
    assert exc.value.code == 2
    assert option in capsys.readouterr().err.splitlines()[-1]
    assert not (tmp_path / "x").exists()


def test_variants_are_recorded_in_the_manifest_and_synth_json(tmp_path: Path) -> None:
    out = tmp_path / "corpus"
    argv = ["-q", "synth", str(out), "--clips", "2", "--size", "32", "--duration", "1"]
    assert main([*argv, "--timbres", "alt", "--clutter", "0.25", "--shake", "0.02"]) == 0
    config = json.loads((out / "synth.json").read_text())["config"]
    assert (config["timbres"], config["clutter"], config["shake"]) == ("alt", 0.25, 0.02)
    for record in read_manifest(out / "manifest.jsonl"):
        meta = record.extra["synth"]
        assert (meta["timbres"], meta["clutter"], meta["shake"]) == ("alt", 0.25, 0.02)
        assert meta["timbre"] == ALT_OF[meta["instrument"]]
    # With one variant on, only that one is recorded per clip.
    shaken = generate_corpus(
        tmp_path / "shaken", SynthConfig(clips=1, duration=1.0, size=32, shake=0.1), progress=False
    )
    meta = read_manifest(shaken)[0].extra["synth"]
    assert meta["shake"] == 0.1
    assert not {"timbres", "timbre", "clutter"} & meta.keys()
