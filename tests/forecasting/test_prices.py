"""GCP price panel expansion and the price evaluation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from forecasting.errors import DataError
from forecasting.prices import (
    PRICE_CONFIG,
    anticipated_change,
    evaluate_price_series,
    price_series,
    weekly_price_panel,
)

HEADER = "machine_type,gpu_type,gpu_count,vcpus,ram_gb,region,valid_from,valid_to,n_snapshots,hour_usd,hour_spot_usd\n"


def write_files(tmp_path: Path) -> tuple[Path, Path]:
    hist = tmp_path / "hist.csv"
    hist.write_text(
        HEADER
        + "g2-standard-4,l4,1,4,16,us-east1,2024-01-03,2024-01-17,3,1.0,0.3\n"
        + "g2-standard-4,l4,1,4,16,us-east1,2024-01-31,2024-02-07,2,1.1,\n"
    )
    snaps = tmp_path / "snaps.csv"
    dates = ["2024-01-03", "2024-01-10", "2024-01-11", "2024-01-17", "2024-01-24", "2024-01-31", "2024-02-07"]
    snaps.write_text("snapshot_date,commit_time,commit\n" + "".join(f"{d},x,y\n" for d in dates))
    return hist, snaps


def test_weekly_panel_expands_runs_over_snapshots_and_leaves_gaps(tmp_path: Path) -> None:
    panel = weekly_price_panel(*write_files(tmp_path))
    weeks = [w.strftime("%Y-%m-%d") for w in panel["week"]]
    # 2024-01-24 is between runs: no row (a gap), weeks end on Sunday.
    assert weeks == ["2024-01-07", "2024-01-14", "2024-01-21", "2024-02-04", "2024-02-11"]
    np.testing.assert_allclose(panel["on_demand"], [1.0, 1.0, 1.0, 1.1, 1.1])
    assert panel["spot"].isna().tolist() == [False, False, False, True, True]
    series = price_series(panel, min_obs=3)
    assert [s.series_id for s in series] == ["gcp/g2-standard-4/us-east1/on_demand", "gcp/g2-standard-4/us-east1/spot"]
    assert series[0].values == [1.0, 1.0, 1.0, None, 1.1, 1.1]


def test_loader_names_missing_columns(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("a\n1\n")
    with pytest.raises(DataError, match="missing columns"):
        weekly_price_panel(bad, bad)


def test_anticipated_change_direction() -> None:
    assert anticipated_change(1.0, np.array([1.0, 1.0]), np.array([1.0, 1.0])) is None
    assert anticipated_change(1.0, np.array([0.9, 0.9]), np.array([1.0, 0.8])) is True
    assert anticipated_change(1.0, np.array([1.1, 1.1]), np.array([1.0, 0.8])) is False
    assert anticipated_change(1.0, np.array([1.0, 1.0]), np.array([1.0, 0.8])) is False


def test_real_price_series_served_never_loses_to_last_value(shared_data: Path) -> None:
    panel = weekly_price_panel(shared_data / "price_history" / "gcp_gpu_instance_price_history_2022_2026.csv",
                               shared_data / "price_history" / "gcp_cyclenerd_pricing_snapshots.csv")
    series = {s.series_id: s for s in price_series(panel)}
    assert len(series) > 1500
    s = series["gcp/a2-highgpu-1g/us-central1/spot"]
    cfg = PRICE_CONFIG.model_copy(update={"model_params": {"ets": {"calibration_origins": 0, "brute": False}}})
    ev = evaluate_price_series(s, config=cfg, step=8)
    assert ev is not None and ev.change_windows > 0
    assert set(ev.report.metrics) >= {"last_value", "seasonal_naive", "ets", "lag_ridge", "served"}
    assert ev.served_le_last_value
