"""The pairwise losses' forward and backward read no tensor value on the host inside
their block loops. The documented reads, each at most once per call: input validation
(one NaN/inf check per input), the positive-slot width, and (distance losses) whether any
pair can be coincident. On a GPU every other read would stall the stream.

CUDA's sync debug mode is not available on CPU, so the test patches the Python-level
conversions (``item``, ``bool``, ``int``, ``float``, ``index``, ``tolist``) to raise.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch

from crossmodal.losses import create_loss, list_losses
from crossmodal.sampling.miners import MultiSimilarityMiner

CONVERSIONS = ("item", "tolist", "__bool__", "__int__", "__float__", "__index__")
#: Function → reads allowed per loss call (see the module docstring).
ALLOWED = {"_check_embeddings": 2, "positive_slots": 1, "find_coincident": 1}


class HostSync(AssertionError):
    pass


@contextmanager
def host_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter]:
    """Count host reads by calling function; raise on any outside :data:`ALLOWED`."""
    reads: Counter = Counter()
    for name in CONVERSIONS:
        original = getattr(torch.Tensor, name)

        def guarded(self, *args, _original=original, _name=name, **kwargs):
            caller = sys._getframe(1).f_code
            if caller.co_name not in ALLOWED:
                raise HostSync(
                    f"Tensor.{_name} in {caller.co_name} ({caller.co_filename}:"
                    f"{sys._getframe(1).f_lineno}) reads a value on the host"
                )
            reads[caller.co_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, guarded)
    yield reads
    monkeypatch.undo()


def test_the_guard_catches_a_read(monkeypatch: pytest.MonkeyPatch) -> None:
    x = torch.ones(3)
    with host_reads(monkeypatch):
        with pytest.raises(HostSync, match=r"Tensor\.__bool__"):
            bool(x.any())
        with pytest.raises(HostSync, match=r"Tensor\.item"):
            x.sum().item()
        with pytest.raises(HostSync, match=r"Tensor\.__int__"):
            int(x.sum())


@pytest.mark.parametrize("mode", ["unimodal", "crossmodal", "mined", "symmetric"])
@pytest.mark.parametrize("name", list_losses("pairwise"))
def test_forward_and_backward_read_nothing_on_the_host(
    name: str, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(40, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    r = torch.randn(36, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    lq, lr = torch.randint(0, 5, (40,), generator=gen), torch.randint(0, 5, (36,), generator=gen)
    loss = create_loss(name, symmetric=mode == "symmetric").double()
    for module in loss.modules():
        if hasattr(module, "chunk_elements"):
            module.chunk_elements = 100  # several blocks: the loops are what is checked
    args, kwargs = (q, lq, r, lr), {}
    if mode == "unimodal":
        args = (q, lq)
    elif mode == "mined":
        kwargs = {"miner_masks": MultiSimilarityMiner(epsilon=0.3)(q, lq, r, lr)}
    calls = 2 if mode == "symmetric" else 1
    with host_reads(monkeypatch) as reads:
        value = loss(*args, **kwargs)
        value.backward()
    assert q.grad is not None
    for function, count in reads.items():
        assert count <= ALLOWED[function] * calls, (function, count)
