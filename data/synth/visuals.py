"""Render a :class:`~crossmodal.data.synth.score.Score` to video frames.

One main object shows the music: it jumps to the height of each note's pitch at the
note's onset and swells with the note's velocity; its size, saturation and the scene's
brightness follow the loudness envelope; accents flash the scene and shake the camera;
breaks dim the scene and hide the object. Its shape follows the instrument's timbre
(round for soft tones, spiky for bright ones). Nuisance: a random two-colour gradient and
texture, drifting blobs that ignore the music, camera jitter and sensor noise.

Variants (off by default; their randomness comes from ``variant_rng``, never from the
clip's own generator, so the rest of the clip is unchanged): ``clutter`` blends a static
random texture into the background and adds distractor shapes on their own paths;
``shake`` translates every whole frame by a smooth random offset, blind to the music.
"""

from __future__ import annotations

import colorsys

import numpy as np

from crossmodal.data.synth.moods import Mood
from crossmodal.data.synth.score import Score

# Timbre → shape (the "bouba/kiki" correspondence: soft sounds look round, bright ones sharp).
SHAPES = {
    "sine": "circle",
    "triangle": "diamond",
    "square": "square",
    "saw": "triangle",
    "pluck": "star",
    "bell": "ring",
}


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, np.clip(s, 0, 1), np.clip(v, 0, 1)), np.float32)


def _decaying_sum(times: np.ndarray, events: np.ndarray, tau: float, weights=None) -> np.ndarray:
    """Σ_e w_e · exp(-(t - e)/tau) over events e ≤ t, for every t in ``times``."""
    if len(events) == 0:
        return np.zeros(len(times), dtype=np.float32)
    dt = times[:, None] - events[None, :]
    w = np.ones(len(events)) if weights is None else weights
    contrib = np.where(dt >= 0, np.exp(-np.maximum(dt, 0.0) / tau), 0.0) * w[None, :]
    return contrib.sum(axis=1).astype(np.float32)


def _bounce(start: float, speed: float, t: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Position moving at ``speed`` from ``start`` and bouncing between ``lo`` and ``hi``."""
    span = hi - lo
    u = np.mod(start - lo + speed * t, 2 * span)
    return (lo + np.where(u < span, u, 2 * span - u)).astype(np.float32)


def _shape_distance(shape: str, dx: np.ndarray, dy: np.ndarray, radius: float) -> np.ndarray:
    """Distance-like field in pixels: < 0 inside the shape of the given radius."""
    if shape == "circle":
        return np.sqrt(dx * dx + dy * dy) - radius
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) - 0.85 * radius
    if shape == "diamond":
        return (np.abs(dx) + np.abs(dy)) * np.float32(0.75) - 0.85 * radius
    if shape == "triangle":
        edge = np.maximum(np.abs(dx) * np.float32(0.866) - dy * np.float32(0.5), dy)
        return edge - 0.6 * radius
    r = np.sqrt(dx * dx + dy * dy)
    if shape == "star":
        # cos(5θ) from cos θ = dx / r (Chebyshev), cheaper than an arctan per pixel.
        c = dx / np.maximum(r, np.float32(1e-6))
        cos5 = c * (np.float32(16) * c**4 - np.float32(20) * c**2 + np.float32(5))
        return r - radius * (np.float32(0.75) + np.float32(0.35) * cos5)
    if shape == "ring":
        return np.abs(r - 0.75 * radius) - 0.3 * radius
    raise ValueError(f"unknown shape {shape!r}")


def _box(cx: float, cy: float, reach: float, height: int, width: int) -> tuple[slice, slice]:
    """Rows and columns of the frame within ``reach`` pixels of (cx, cy)."""
    y0, y1 = max(0, int(cy - reach)), min(height, int(np.ceil(cy + reach)) + 1)
    x0, x1 = max(0, int(cx - reach)), min(width, int(np.ceil(cx + reach)) + 1)
    return slice(y0, max(y0, y1)), slice(x0, max(x0, x1))


def _value_noise(rng: np.random.Generator, cells: int, height: int, width: int) -> np.ndarray:
    """(height, width, 3) float32 in [0, 1]: random colours on a ``cells``² grid,
    bilinearly interpolated."""
    grid = rng.random((cells + 1, cells + 1, 3), dtype=np.float32)
    gy = np.linspace(0, cells, height, dtype=np.float32)
    gx = np.linspace(0, cells, width, dtype=np.float32)
    iy = np.minimum(gy.astype(np.int64), cells - 1)
    ix = np.minimum(gx.astype(np.int64), cells - 1)
    fy = (gy - iy)[:, None, None]
    fx = (gx - ix)[None, :, None]
    top = grid[iy][:, ix] * (1 - fx) + grid[iy][:, ix + 1] * fx
    bottom = grid[iy + 1][:, ix] * (1 - fx) + grid[iy + 1][:, ix + 1] * fx
    return top * (1 - fy) + bottom * fy


def clutter_texture(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """The static clutter texture, (height, width, 3) float32 in [0, 1]: coarse
    patches of random colours with finer ones on top."""
    return 0.6 * _value_noise(rng, 4, height, width) + 0.4 * _value_noise(rng, 16, height, width)


def _draw_distractors(
    frames: np.ndarray,
    rng: np.random.Generator,
    count: int,
    times: np.ndarray,
    cam: np.ndarray,
) -> None:
    """Draw ``count`` mostly opaque shapes of random colour, size and shape, each bouncing on
    its own random straight path (in the scene, so the camera moves them too)."""
    _, height, width, _ = frames.shape
    size = float(min(height, width))
    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]
    shapes = sorted(set(SHAPES.values()))
    for _ in range(count):
        shape = shapes[int(rng.integers(len(shapes)))]
        radius = size * rng.uniform(0.04, 0.1)
        speed = size * rng.uniform(0.05, 0.5, 2) * rng.choice([-1.0, 1.0], 2)
        path_x = _bounce(rng.uniform(0, width), speed[0], times, 0, width)
        path_y = _bounce(rng.uniform(0, height), speed[1], times, 0, height)
        color = _hsv(rng.uniform(0, 1), rng.uniform(0.2, 1.0), rng.uniform(0.2, 1.0))
        opacity = np.float32(rng.uniform(0.6, 0.95))
        for f in range(len(frames)):
            px, py = path_x[f] - cam[f, 0], path_y[f] - cam[f, 1]
            rows, cols = _box(px, py, 1.3 * radius + 2, height, width)
            dist = _shape_distance(
                shape, xs[:, cols] - np.float32(px), ys[rows] - np.float32(py), radius
            )
            mask = opacity * np.clip(np.float32(0.5) - dist, 0.0, 1.0)
            region = frames[f, rows, cols]
            region += (color - region) * mask[..., None]


def shake_offsets(
    rng: np.random.Generator, n_frames: int, fps: float, amplitude: float
) -> np.ndarray:
    """(n_frames, 2) float (x, y) offsets in pixels, within ±``amplitude`` on each axis:
    per axis, three sinusoids of random frequency (about 1–4 Hz) and phase, plus 15 %
    white jitter, so the camera wobbles smoothly whatever the music does."""
    times = np.arange(n_frames, dtype=np.float64) / fps
    high = min(4.0, 0.45 * fps)  # below the frame rate's Nyquist limit
    freqs = rng.uniform(min(1.0, 0.5 * high), high, (3, 2))
    phases = rng.uniform(0, 2 * np.pi, (3, 2))
    weights = rng.uniform(0.5, 1.0, (3, 2))
    waves = np.sin(2 * np.pi * freqs[None] * times[:, None, None] + phases[None])
    smooth = (weights[None] * waves).sum(axis=1) / weights.sum(axis=0)
    jitter = rng.uniform(-1.0, 1.0, (n_frames, 2))
    return amplitude * (0.85 * smooth + 0.15 * jitter)


def _shake_frames(frames: np.ndarray, offsets: np.ndarray) -> None:
    """Translate frame f by the whole-pixel ``offsets[f]`` (x, y) in place, repeating the
    edge into the uncovered border."""
    _, height, width, _ = frames.shape
    rows, cols = np.arange(height), np.arange(width)
    for f, (dx, dy) in enumerate(offsets):
        src_rows = np.clip(rows - dy, 0, height - 1)
        src_cols = np.clip(cols - dx, 0, width - 1)
        frames[f] = frames[f][src_rows[:, None], src_cols[None, :]]


def render_frames(
    score: Score,
    mood: Mood,
    rng: np.random.Generator,
    *,
    fps: float,
    height: int,
    width: int,
    clutter: float = 0.0,
    shake: float = 0.0,
    variant_rng: np.random.Generator | None = None,
) -> np.ndarray:
    """uint8 frames (T, H, W, 3), T = round(duration × fps); frame f shows time f / fps.

    ``clutter`` in [0, 1]: a static random texture blended into the background at
    0.5 × clutter and round(8 × clutter) distractor shapes. ``shake`` ≥ 0: whole-frame
    translation of up to shake × frame size. Both draw from ``variant_rng`` (one stream
    each), required when either is on.
    """
    if (clutter or shake) and variant_rng is None:
        raise ValueError("clutter and shake need a variant_rng")
    clutter_rng, shake_rng = variant_rng.spawn(2) if variant_rng is not None else (None, None)
    n_frames = round(score.duration * fps)
    times = np.arange(n_frames, dtype=np.float64) / fps
    size = float(min(height, width))

    # Per-frame drivers, all functions of the score's time axis.
    envelope = score.envelope(times)
    visible = score.gate(times)
    pulse = np.minimum(_decaying_sum(times, score.note_onsets, 0.12, score.note_velocities), 1.5)
    flash = np.minimum(_decaying_sum(times, score.accent_times, 0.1), 1.5)
    beat = _decaying_sum(times, score.beat_times, 0.08)
    if len(score.note_onsets):
        last = np.searchsorted(score.note_onsets, times, side="right") - 1
        pitch = score.note_pitches[np.maximum(last, 0)]
    else:
        pitch = np.full(n_frames, float(score.root))
    level = score.height(pitch)

    # Camera: small random jitter plus a shake after each accent, in whole pixels; the
    # background is a larger canvas that each frame crops at the camera's offset.
    pad = int(0.08 * size) + 2
    cam = rng.normal(0.0, 0.5 * mood.motion, (n_frames, 2))
    for accent in score.accent_times:
        dt = times - accent
        decay = np.where(dt >= 0, np.exp(-np.maximum(dt, 0.0) / 0.08), 0.0)
        cam += 0.04 * size * decay[:, None] * rng.normal(0.0, 1.0, 2)[None, :]
    cam = np.clip(np.round(cam), -pad, pad).astype(np.int64)

    # Background: two-colour gradient of the mood's palette plus a texture of gratings.
    hue = rng.uniform(*mood.hue) + rng.uniform(-0.05, 0.05)
    sat = rng.uniform(*mood.saturation)
    val = rng.uniform(*mood.value)
    color0 = _hsv(hue, sat, val)
    color1 = _hsv(
        hue + rng.uniform(-0.08, 0.08), sat * rng.uniform(0.6, 1.1), val * rng.uniform(0.4, 0.8)
    )
    cy = np.arange(height + 2 * pad, dtype=np.float32)[:, None] - pad
    cx = np.arange(width + 2 * pad, dtype=np.float32)[None, :] - pad
    theta = rng.uniform(0, 2 * np.pi)
    gradient = np.clip(
        (cx * np.cos(theta) + cy * np.sin(theta)) / np.float32(size) + np.float32(0.5), 0.0, 1.0
    )
    canvas = color0 + (color1 - color0) * gradient[..., None]
    texture = np.zeros_like(gradient)
    for _ in range(3):
        freq = 2 * np.pi * rng.uniform(1.0, 4.0) / size
        ang = rng.uniform(0, 2 * np.pi)
        texture += np.sin(
            cx * np.float32(freq * np.cos(ang))
            + cy * np.float32(freq * np.sin(ang))
            + np.float32(rng.uniform(0, 2 * np.pi))
        )
    canvas += np.float32(rng.uniform(0.01, 0.04)) * texture[..., None]
    if clutter:
        clutter_bg = clutter_texture(clutter_rng, *canvas.shape[:2])
        canvas += np.float32(0.5 * clutter) * (clutter_bg - canvas)

    brightness = (0.55 + 0.45 * envelope) * (1 + 0.7 * flash + 0.1 * beat) * (0.5 + 0.5 * visible)
    frames = np.empty((n_frames, height, width, 3), dtype=np.float32)
    for f in range(n_frames):
        ox, oy = pad + cam[f, 0], pad + cam[f, 1]
        np.multiply(
            canvas[oy : oy + height, ox : ox + width], np.float32(brightness[f]), out=frames[f]
        )

    ys = np.arange(height, dtype=np.float32)[:, None]
    xs = np.arange(width, dtype=np.float32)[None, :]

    # Distractors: soft blobs drifting at the mood's speed, blind to the music.
    for _ in range(int(rng.integers(1, 3))):
        bx = _bounce(rng.uniform(0, width), mood.motion * rng.uniform(3, 12), times, 0, width)
        by = _bounce(rng.uniform(0, height), mood.motion * rng.uniform(3, 12), times, 0, height)
        sigma = size * rng.uniform(0.06, 0.12)
        strength = np.float32(rng.uniform(0.2, 0.4))
        blob = _hsv(rng.uniform(0, 1), rng.uniform(0.2, 0.8), rng.uniform(0.3, 0.9))
        for f in range(n_frames):
            px, py = bx[f] - cam[f, 0], by[f] - cam[f, 1]
            rows, cols = _box(px, py, 3 * sigma, height, width)
            d2 = (xs[:, cols] - np.float32(px)) ** 2 + (ys[rows] - np.float32(py)) ** 2
            alpha = strength * np.exp(-d2 / np.float32(2 * sigma * sigma))
            region = frames[f, rows, cols]
            region += (blob - region) * alpha[..., None]
    if clutter:
        _draw_distractors(frames, clutter_rng, round(8 * clutter), times, cam)

    # The object: height ← pitch, size ← envelope and note pulses, hidden in breaks.
    shape = SHAPES[score.instrument]
    margin = 0.2 * height
    obj_y = margin + (1.0 - level) * (height - 2 * margin)
    obj_x = _bounce(
        rng.uniform(0.3, 0.7) * width,
        mood.motion * rng.uniform(2, 8),
        times,
        0.25 * width,
        0.75 * width,
    )
    radius = size * rng.uniform(0.14, 0.19) * (0.6 + 0.4 * envelope) * (1 + 0.45 * pulse)
    obj_hue = hue + 0.5 + rng.uniform(-0.12, 0.12)
    for f in range(n_frames):
        if visible[f] <= 0:
            continue
        px, py = obj_x[f] - cam[f, 0], obj_y[f] - cam[f, 1]
        rows, cols = _box(px, py, 1.3 * radius[f] + 2, height, width)
        dist = _shape_distance(
            shape, xs[:, cols] - np.float32(px), ys[rows] - np.float32(py), float(radius[f])
        )
        mask = np.clip(np.float32(0.5) - dist, 0.0, 1.0)
        color = _hsv(obj_hue, 0.35 + 0.6 * envelope[f], 0.75 + 0.25 * envelope[f])
        region = frames[f, rows, cols]
        region += (color - region) * mask[..., None]

    if shake:
        offsets = shake_offsets(shake_rng, n_frames, fps, shake * size)
        _shake_frames(frames, np.round(offsets).astype(np.int64))

    # Sensor noise, added while converting to 8 bits.
    noise = rng.random((n_frames, height, width, 1), dtype=np.float32)
    noise *= np.float32(8.0)
    noise -= np.float32(3.5)  # uniform in [-4, 4] grey levels, +0.5 to round on truncation
    frames *= np.float32(255)
    frames += noise
    np.clip(frames, 0, 255, out=frames)
    return frames.astype(np.uint8)
