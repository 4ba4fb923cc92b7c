"""Performance model: sourced data, sane ordering, unseen GPUs from specs, held-out accuracy."""

from __future__ import annotations

from pathlib import Path

import pytest

from forecasting.errors import ForecastingError
from forecasting.performance import (
    fit_performance_model,
    load_benchmarks,
    load_specs,
    performance_table,
    validate,
)

CANONICAL = ["H100 SXM", "A100 80GB SXM", "RTX 4090", "L4", "T4", "V100"]


def test_every_number_has_a_source() -> None:
    specs, obs = load_specs(), load_benchmarks()
    assert specs["source"].str.startswith("http").all()
    assert obs["source"].str.contains("@").all()
    assert set(obs["gpu_model"]) <= set(specs.index)


def test_tables_cover_canonical_gpus_relative_to_a100() -> None:
    model = fit_performance_model()
    for wt in ("training", "inference"):
        table = model.tables[wt]
        assert set(CANONICAL) <= set(table)
        assert table["A100 80GB SXM"] == pytest.approx(1.0)
        assert table["H100 SXM"] > table["A100 80GB SXM"] > table["V100"] > table["T4"]
        assert all(v > 0 for v in table.values())
    # L4 and T4 have no training benchmark: they are predicted from their specifications.
    assert "L4" not in set(load_benchmarks().query("workload_type == 'training'")["gpu_model"])
    assert 0.1 < model.tables["training"]["L4"] < 0.5


def test_held_out_gpus_are_predicted_within_a_reasonable_error() -> None:
    assert validate("training").median_abs_pct_error < 20
    assert validate("inference").median_abs_pct_error < 20


def test_unknown_workload_type_and_bad_file_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ForecastingError, match="unknown workload type"):
        performance_table("rendering")
    bad = tmp_path / "specs.csv"
    bad.write_text("gpu_model\nX\n")
    with pytest.raises(ForecastingError, match="missing columns"):
        load_specs(bad)
