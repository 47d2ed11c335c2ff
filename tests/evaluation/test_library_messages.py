"""Library messages stay off the user's terminal: faiss's k-means line (printed from
C++ straight to stderr) and Python warnings of the libraries underneath."""

from __future__ import annotations

import logging
import warnings

import torch

from crossmodal.evaluation.metrics import kmeans_nmi
from crossmodal.logging_utils import setup_logging


def test_kmeans_nmi_on_few_points_per_centroid_prints_nothing(capfd) -> None:
    gen = torch.Generator().manual_seed(0)
    embeddings = torch.nn.functional.normalize(torch.randn(160, 16, generator=gen), dim=1)
    labels = torch.arange(160) % 8
    nmi = kmeans_nmi(embeddings, labels)
    assert 0.0 <= nmi <= 1.0
    out, err = capfd.readouterr()
    assert "please provide" not in out + err
    assert err == ""


def test_library_warnings_show_only_at_debug_verbosity(capsys) -> None:
    try:
        setup_logging(0)
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("n_fft=2048 is too large for input signal", UserWarning, stacklevel=1)
        assert "n_fft" not in capsys.readouterr().err
        setup_logging(1)
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.warn("n_fft=2048 is too large for input signal", UserWarning, stacklevel=1)
        assert "n_fft=2048 is too large" in capsys.readouterr().err
    finally:
        logging.captureWarnings(False)
        setup_logging(0)
