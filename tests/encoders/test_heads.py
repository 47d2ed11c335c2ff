"""Projection heads against their formulas."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from crossmodal.encoders import LinearHead, MLPHead, build_head
from crossmodal.registry import UnknownNameError


def test_linear_head_is_an_affine_map() -> None:
    head = LinearHead(5, 3)
    x = torch.randn(4, 5)
    torch.testing.assert_close(head(x), x @ head.proj.weight.T + head.proj.bias)


def test_mlp_head_matches_its_formula() -> None:
    head = MLPHead(5, 3, hidden_dim=7).eval()
    first, norm, _, _, second = head.net
    x = torch.randn(4, 5)
    hidden = x @ first.weight.T + first.bias
    mean = hidden.mean(dim=1, keepdim=True)
    var = hidden.var(dim=1, unbiased=False, keepdim=True)
    normed = (hidden - mean) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias
    expected = F.gelu(normed) @ second.weight.T + second.bias
    torch.testing.assert_close(head(x), expected)
    assert MLPHead(5, 3).net[0].out_features == 5  # default hidden: max(in, out)


def test_build_head_by_name() -> None:
    assert isinstance(build_head("linear", 4, 2), LinearHead)
    assert isinstance(build_head("mlp", 4, 2), MLPHead)
    with pytest.raises(UnknownNameError, match=r"unknown head 'conv'.*Registered: linear, mlp"):
        build_head("conv", 4, 2)
