"""Reference outputs of the ORIGINAL musicnn TensorFlow models, for the parity tests.

Dev-only, run once in a throwaway environment where TensorFlow runs (never imported by
the library or the tests)::

    python3 -m venv /tmp/tfenv
    /tmp/tfenv/bin/pip install "tensorflow-cpu==2.15.*" librosa soundfile
    pip download --no-deps musicnn==0.1.0 -d /tmp/musicnn
    /tmp/tfenv/bin/python tools/musicnn_reference.py /tmp/musicnn/musicnn-0.1.0-py3-none-any.whl \
        tests/encoders/fixtures/musicnn_reference.npz

It unpacks the wheel, builds each model with the wheel's own graph code
(``musicnn.models.define_model`` through ``tf.compat.v1``), restores its checkpoint, turns
the clips of :mod:`tools.musicnn_clips` into spectrogram windows with the wheel's own
``musicnn.extractor.batch_data`` and stores, per window, the float16 log-mel input, the
tag probabilities and the penultimate layer (``pool5`` for the vgg models). The input is
stored as the float16 mel power the wheel rounds to before ``log10(10000 x + 1)``.

The one patch: librosa >= 0.10 pads the STFT with zeros by default, librosa 0.7 (the
version the wheel was written for and trained with) reflected the signal; the script
restores the reflection so the reference is the original front end.
"""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

MODELS = ("MSD_musicnn", "MTT_musicnn", "MSD_vgg", "MTT_vgg")
N_FRAMES = 187


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args()

    unpacked = Path(tempfile.mkdtemp(prefix="musicnn-wheel-"))
    zipfile.ZipFile(args.wheel).extractall(unpacked)
    sys.path.insert(0, str(unpacked))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

    import librosa
    import soundfile
    import tensorflow as tf
    from musicnn import extractor, models

    from tools.musicnn_clips import CLIPS, SAMPLE_RATE, make_clip

    librosa.feature.melspectrogram = functools.partial(
        librosa.feature.melspectrogram, pad_mode="reflect"
    )

    windows, mel_windows, window_clip = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for index, name in enumerate(CLIPS):
            path = Path(tmp) / f"{name}.wav"
            soundfile.write(path, make_clip(name), SAMPLE_RATE, subtype="FLOAT")
            batch, _ = extractor.batch_data(str(path), N_FRAMES, N_FRAMES)
            windows.append(batch)
            window_clip += [index] * len(batch)
            # The float16 mel power the wheel rounds to before its log: stored instead of
            # the float32 log-mel (half the bytes, lossless); the check below proves that
            # the log of it is the exact model input.
            audio, _ = librosa.load(str(path), sr=SAMPLE_RATE)
            mel = librosa.feature.melspectrogram(
                y=audio, sr=SAMPLE_RATE, hop_length=256, n_fft=512, n_mels=96
            ).T.astype(np.float16)
            mel_windows += [
                mel[i : i + N_FRAMES] for i in range(0, len(batch) * N_FRAMES, N_FRAMES)
            ]
    spectrograms = np.concatenate(windows)
    mel_power = np.stack(mel_windows)
    assert np.array_equal(np.log10(10000 * mel_power.astype(np.float32) + 1), spectrograms)
    out: dict[str, np.ndarray] = {
        "clip_names": np.array(list(CLIPS)),
        "window_clip": np.array(window_clip),
        "mel_power_float16": mel_power,
        "versions": np.array([f"tensorflow {tf.__version__}", f"librosa {librosa.__version__}"]),
    }
    for model in MODELS:
        tf.compat.v1.reset_default_graph()
        x = tf.compat.v1.placeholder(tf.float32, [None, N_FRAMES, 96])
        is_training = tf.compat.v1.placeholder(tf.bool)
        outputs = models.define_model(x, is_training, model, 50)
        logits, features = outputs[0], outputs[-1]  # penultimate, or pool5 for vgg
        probabilities = tf.nn.sigmoid(logits)
        with tf.compat.v1.Session() as sess:
            tf.compat.v1.train.Saver().restore(sess, str(unpacked / "musicnn" / model) + "/")
            probs, feats = sess.run(
                [probabilities, features],
                feed_dict={x: spectrograms, is_training: False},
            )
        out[f"{model}/probabilities"] = probs.astype(np.float32)
        out[f"{model}/features"] = feats.reshape(len(feats), -1).astype(np.float32)
        print(model, "finite per window:", np.isfinite(probs).all(axis=1).tolist())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **out)
    print("wrote", args.out, args.out.stat().st_size, "bytes")


if __name__ == "__main__":
    main()
