from __future__ import annotations

import numpy as np
import pytest

from crossmodal.retrieval import InvalidVectorsError
from crossmodal.retrieval.vectors import as_ids, as_unit_rows


def test_rows_are_normalised_contiguous_float32_and_input_untouched() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 8)) * 3.0  # float64
    before = x.copy()
    rows = as_unit_rows(x[:, ::1], 8)
    assert rows.dtype == np.float32
    assert rows.flags.c_contiguous
    np.testing.assert_allclose(rows, x / np.linalg.norm(x, axis=1, keepdims=True), rtol=1e-6)
    np.testing.assert_array_equal(x, before)
    # Non-contiguous float32 views and huge finite values are handled too.
    view = np.asfortranarray(x.astype(np.float32) * np.float32(1e30))
    np.testing.assert_allclose(as_unit_rows(view, 8), rows, rtol=1e-5)


def test_one_vector_is_one_row() -> None:
    assert as_unit_rows(np.ones(4), 4).shape == (1, 4)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_rows_name_the_row(bad: float) -> None:
    x = np.ones((4, 3))
    x[2, 1] = bad
    with pytest.raises(InvalidVectorsError, match=r"my item: row 2 contains NaN or inf"):
        as_unit_rows(x, 3, what="my item")


def test_zero_rows_and_wrong_shapes_are_refused() -> None:
    with pytest.raises(InvalidVectorsError, match="row 1 has zero length"):
        as_unit_rows(np.array([[1.0, 0.0], [0.0, 0.0]]), 2)
    with pytest.raises(InvalidVectorsError, match=r"expected shape \(N, 3\)"):
        as_unit_rows(np.ones((2, 4)), 3)
    with pytest.raises(InvalidVectorsError, match="dtype"):
        as_unit_rows(np.array([["a", "b"]]), 2)


def test_ids_are_int64_and_non_negative() -> None:
    ids = as_ids([3, 1, 2])
    assert ids.dtype == np.int64
    assert ids.tolist() == [3, 1, 2]
    with pytest.raises(ValueError, match=">= 0"):
        as_ids([1, -1])
    with pytest.raises(ValueError, match="integers"):
        as_ids([1.5])


def test_chunked_path_and_overflowing_squares() -> None:
    from crossmodal.retrieval import vectors

    rng = np.random.default_rng(1)
    x = rng.standard_normal((70_000, 4))
    x[69_999] = [1e200, -3e200, 0.0, 2e200]  # finite, but its squares overflow float64
    rows = vectors.as_unit_rows(x, 4)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(rows[69_999], np.array([1, -3, 0, 2]) / np.sqrt(14), rtol=1e-6)
    x[66_000, 2] = np.nan
    with pytest.raises(InvalidVectorsError, match="row 66000 contains NaN"):
        vectors.as_unit_rows(x, 4)


def test_float32_rows_near_the_float32_limit() -> None:
    x = np.array([[3e38, 4e38 / 2, 0.0], [1e-10, 0.0, 0.0]], dtype=np.float32)
    rows = as_unit_rows(x, 3)
    expected = x.astype(np.float64) / np.linalg.norm(x.astype(np.float64), axis=1, keepdims=True)
    np.testing.assert_allclose(rows, expected, rtol=1e-6)
