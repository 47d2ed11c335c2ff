"""How well can *anything* sort the synthetic corpus by mood? The generator's own ceiling.

The synthetic moods (``crossmodal.data.synth.moods``) are distributions that overlap on
purpose: two moods can share a tempo range, a key, an instrument. So even a listener who
hears every note exactly cannot always name a clip's mood, and the mood metrics of
issue 15 (mood MAP@R, "music for a new video") have a ceiling below 1 that no model can
pass. This bench estimates it.

Method: draw many clips' scores with the generator's own :func:`sample_score` (no
rendering), describe each by what its audio reveals exactly — tempo, key mode, root,
instrument, drum level, note count, pitch spread, onset grid — and train a gradient-boosted
classifier on them (an estimate of the Bayes posterior P(mood | music)). The video side is
given its mood exactly (a perfect picture reader: the upper bound). Then rank test-sized
galleries (``--per-mood`` clips per mood) by the Bayes-optimal score
``P(same mood) = Σ_k p_video(k) · p_music(k)`` and compute the issue's metrics with the
project's own metric code, averaged over ``--galleries`` draws.

    python bench/mood_ceiling.py [--train 60000] [--galleries 20] [--per-mood 40]
        [--duration 4] [--out bench/results/mood_ceiling.md]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from crossmodal.data.synth.moods import MOODS
from crossmodal.data.synth.score import Score, sample_score
from crossmodal.evaluation.metrics import category_metrics, new_video_mood_share

INSTRUMENTS = sorted({name for mood in MOODS for name in mood.instruments})


def describe(score: Score) -> list[float]:
    """What a perfect listener hears in one clip (all of it recoverable from the audio)."""
    onsets = score.note_onsets
    pitches = score.note_pitches
    gaps = np.diff(onsets) / score.beat_period if len(onsets) > 1 else np.array([1.0])
    return [
        score.bpm,
        float(score.major),
        float(score.root),
        score.drums,
        float(len(onsets)),
        float(pitches.mean()) if len(pitches) else float(score.root),
        float(pitches.std()) if len(pitches) else 0.0,
        float(gaps.min()),
        float(np.median(gaps)),
        *[float(score.instrument == name) for name in INSTRUMENTS],
    ]


def draw(n: int, seed: int, duration: float) -> tuple[np.ndarray, np.ndarray]:
    """``n`` clips with uniform moods: features (n, d) and mood indices (n,)."""
    rng = np.random.default_rng(seed)
    moods = rng.integers(0, len(MOODS), n)
    feats = [describe(sample_score(MOODS[m], rng, duration)) for m in moods]
    return np.asarray(feats, dtype=np.float64), moods


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train", type=int, default=60000, help="clips to fit the posterior")
    parser.add_argument("--galleries", type=int, default=20, help="test galleries averaged")
    parser.add_argument("--per-mood", type=int, default=40, help="clips per mood per gallery")
    parser.add_argument("--duration", type=float, default=4.0, help="clip length, seconds")
    parser.add_argument("--out", type=Path, default=Path("bench/results/mood_ceiling.md"))
    args = parser.parse_args()

    from sklearn.ensemble import HistGradientBoostingClassifier

    t0 = time.perf_counter()
    x, y = draw(args.train, seed=1, duration=args.duration)
    clf = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.1, random_state=0)
    clf.fit(x, y)
    n_test = args.galleries * args.per_mood * len(MOODS)
    xt, yt = draw(n_test, seed=2, duration=args.duration)
    post = clf.predict_proba(xt)
    accuracy = float((post.argmax(1) == yt).mean())
    # Held-out log-loss: how calibrated the posterior estimate is (lower is better).
    log_loss = float(-np.log(np.clip(post[np.arange(len(yt)), yt], 1e-12, 1)).mean())

    rows = {"MAP@R v→m": [], "MAP@R m→v": [], "new-video top-10": []}
    rng = np.random.default_rng(3)
    for _ in range(args.galleries):
        pick = np.concatenate(
            [
                rng.choice(np.flatnonzero(yt == m), args.per_mood, replace=False)
                for m in range(len(MOODS))
            ]
        )
        labels = torch.as_tensor(yt[pick])
        music = torch.as_tensor(post[pick])
        video = torch.nn.functional.one_hot(labels, len(MOODS)).double()
        rows["MAP@R v→m"].append(category_metrics(video, music, labels, labels)["MAP@R"])
        rows["MAP@R m→v"].append(category_metrics(music, video, labels, labels)["MAP@R"])
        tracks = torch.arange(len(pick))
        rows["new-video top-10"].append(new_video_mood_share(video, music, tracks, labels))

    lines = [
        "# The synthetic generator's mood ceiling (`bench/mood_ceiling.py`)",
        "",
        f"Posterior P(mood | music) fitted on {args.train} drawn scores of "
        f"{args.duration:g} s; evaluated on {args.galleries} galleries of "
        f"{args.per_mood} clips per mood ({args.per_mood * len(MOODS)} clips, as the "
        "1200-clip corpus's test split). The video's mood is given exactly.",
        "",
        f"- music mood accuracy of the posterior: {accuracy:.3f} "
        f"(held-out log-loss {log_loss:.3f}; chance {1 / len(MOODS):.3f})",
        "",
        "| metric | ceiling (mean ± sd over galleries) |",
        "|---|---|",
    ]
    for name, values in rows.items():
        lines.append(f"| {name} | {np.mean(values):.3f} ± {np.std(values):.3f} |")
    confusion = np.zeros((len(MOODS), len(MOODS)), dtype=np.int64)
    np.add.at(confusion, (yt, post.argmax(1)), 1)
    lines += [
        "",
        "Confusion of the music posterior (rows: true mood, columns: predicted; share of row):",
        "",
        "| | " + " | ".join(m.name for m in MOODS) + " |",
        "|---|" + "---|" * len(MOODS),
    ]
    for i, mood in enumerate(MOODS):
        share = confusion[i] / max(1, confusion[i].sum())
        lines.append(f"| {mood.name} | " + " | ".join(f"{s:.2f}" for s in share) + " |")
    lines += ["", f"Run time {time.perf_counter() - t0:.0f} s."]
    text = "\n".join(lines) + "\n"
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)


if __name__ == "__main__":
    main()
