"""Random and adversarial manifests: every outcome is records or one ManifestError line."""

from __future__ import annotations

import json
import math
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from crossmodal.data import read_manifest
from crossmodal.data.errors import ManifestError
from crossmodal.data.manifest import KNOWN_KEYS, MAX_SECONDS

# Values a careless user or an attacker puts in a manifest.
nasty_text = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(codec="utf-8")),
    st.sampled_from(
        [
            "",
            "\x00",
            "a\x00b",
            "\ud800",
            "\udcff.mp4",
            "../../etc/passwd",
            "/dev/zero",
            "\x1b[2J",
            "<script>alert(1)</script>",
            "💥" * 100,
            "a" * 5000,
        ]
    ),
)
nasty_number = st.one_of(
    st.integers(),
    st.integers(min_value=10**300, max_value=10**1000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0, -0.0, 1e-320, 2**63, -(2**63), 1e308, 4.0]),
)
scalar = st.one_of(st.none(), st.booleans(), nasty_number, nasty_text)
json_value = st.recursive(
    scalar,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=8,
)
record = st.dictionaries(
    st.one_of(st.sampled_from(KNOWN_KEYS), st.text(max_size=8)), json_value, max_size=10
)
line = st.one_of(
    record.map(lambda r: json.dumps(r, ensure_ascii=False, allow_nan=True)),
    record.map(lambda r: json.dumps(r, ensure_ascii=True, allow_nan=True)),
    st.text(max_size=200),
)


def _check(path: Path) -> None:
    try:
        records = read_manifest(path)
    except ManifestError as err:
        message = str(err)
        assert message.startswith(str(path)), message
        assert "\n" not in message
        return
    for r in records:
        assert r.id
        assert "\x00" not in str(r.video)
        assert math.isfinite(r.start)
        assert 0 <= r.start <= MAX_SECONDS
        assert r.end is None or (math.isfinite(r.end) and r.end > r.start)


@given(lines=st.lists(line, min_size=0, max_size=6))
def test_text_manifests(tmp_path_factory, lines: list[str]) -> None:
    path = tmp_path_factory.mktemp("m") / "manifest.jsonl"
    path.write_bytes("\n".join(lines).encode("utf-8", "surrogatepass"))
    _check(path)


@given(
    data=st.binary(max_size=400), encoding=st.sampled_from(["raw", "utf-16", "utf-32", "latin-1"])
)
def test_binary_and_foreign_encodings(tmp_path_factory, data: bytes, encoding: str) -> None:
    path = tmp_path_factory.mktemp("m") / "manifest.jsonl"
    if encoding != "raw":
        data = '{"id": "a", "video": "é.mp4"}\n'.encode(encoding) + data
    path.write_bytes(data)
    _check(path)
