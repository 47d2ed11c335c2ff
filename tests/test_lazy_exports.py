"""The lazily re-exporting packages: cheap to import, every advertised name resolves."""

from __future__ import annotations

import subprocess
import sys

import pytest

import crossmodal
import crossmodal.data
import crossmodal.data.synth
import crossmodal.sampling

PACKAGES = [crossmodal, crossmodal.data, crossmodal.data.synth, crossmodal.sampling]


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_every_export_resolves_to_its_defining_module(package) -> None:
    for name, module in package._EXPORTS.items():
        value = getattr(package, name)
        assert value is getattr(sys.modules[module], name)
        assert name in dir(package)
    assert set(package.__all__) - {"__version__"} == set(package._EXPORTS)


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: p.__name__)
def test_unknown_name_is_an_attribute_error(package) -> None:
    with pytest.raises(AttributeError, match=f"{package.__name__}.*no_such_name"):
        package.no_such_name  # noqa: B018


def test_importing_the_data_package_loads_no_media_library() -> None:
    code = (
        "import sys, crossmodal.data, crossmodal.data.synth; "
        "print(sorted(m for m in ('decord', 'av', 'torchaudio', 'soundfile') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_importing_crossmodal_loads_no_heavy_library() -> None:
    """The top-level API is lazy: ``import crossmodal`` costs no torch, decoder or faiss."""
    heavy = ("torch", "decord", "av", "torchaudio", "faiss", "numpy")
    code = f"import sys, crossmodal; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
