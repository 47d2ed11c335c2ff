"""torchvision video networks: MViT-v2-S rebuilt from its block table (the registry
tests run it at a small input size)."""

from __future__ import annotations

import pytest

from crossmodal.encoders.pretrained import load_into
from crossmodal.encoders.video.torchvision_3d import mvit_v2_s_for


@pytest.mark.slow
def test_mvit_block_table_is_torchvisions_mvit_v2_s() -> None:
    from torchvision.models.video import mvit_v2_s

    ours = mvit_v2_s_for(16, 224)
    reference = mvit_v2_s(weights=None)
    # same layers with the same hyper-parameters (kernels, strides, heads, widths) ...
    assert repr(ours) == repr(reference)
    # ... and torchvision's weights (a KINETICS400_V1 file has this layout) load strictly
    load_into(ours, reference.state_dict(), "torchvision mvit_v2_s")
