"""Helpers of the Lagrangian bound."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from optimizer.lagrange import _by_row_size_cost


@settings(max_examples=100, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from([0.0, 1.0, 2.0, 4.0, 8.0, 1.5]),
                          st.floats(-5, 5, allow_nan=False)), max_size=60))
def test_two_pass_order_equals_lexsort(items: list[tuple[int, float, float]]) -> None:
    row = np.array([i[0] for i in items], dtype=np.int64)
    u = np.array([i[1] for i in items], dtype=np.float64)
    cp = np.array([i[2] for i in items], dtype=np.float64)
    assert np.array_equal(_by_row_size_cost(row, u, cp), np.lexsort((cp, u, row)))
