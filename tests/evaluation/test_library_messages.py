"""Library messages stay off the user's terminal: faiss's k-means line (printed from
C++ straight to stderr) and Python warnings of the libraries underneath."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from crossmodal.evaluation.metrics import kmeans_nmi


def test_kmeans_nmi_on_few_points_per_centroid_prints_nothing(capfd) -> None:
    gen = torch.Generator().manual_seed(0)
    embeddings = torch.nn.functional.normalize(torch.randn(160, 16, generator=gen), dim=1)
    labels = torch.arange(160) % 8
    nmi = kmeans_nmi(embeddings, labels)
    assert 0.0 <= nmi <= 1.0
    out, err = capfd.readouterr()
    assert "please provide" not in out + err
    assert err == ""


@pytest.mark.parametrize(("verbosity", "shown"), [(0, False), (-1, False), (1, True)])
def test_library_warnings_show_only_at_debug_verbosity(verbosity: int, shown: bool) -> None:
    # A fresh interpreter: pytest installs its own warning capture in this one.
    code = (
        "import warnings\n"
        "from crossmodal.logging_utils import setup_logging\n"
        f"setup_logging({verbosity})\n"
        "warnings.warn('n_fft=2048 is too large for input signal', UserWarning)\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "always", "-c", code], capture_output=True, text=True, check=True
    )
    assert ("n_fft=2048 is too large" in done.stderr) == shown, done.stderr
