"""Day profile: base level times the median shape of the same kind of day (workday, weekend, holiday)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.errors import ModelFitError
from forecasting.models.base import FitContext
from forecasting.models.profile import DayProfile, holiday_dates
from forecasting.models.registry import make_model
from forecasting.models.state import ARRIVALS, END_STATE

WORK = np.where((np.arange(24) >= 9) & (np.arange(24) < 18), 2.0, 1.0)  # doubles during office hours
OFF = np.where(np.arange(24) < 23, 0.5, 1.0)  # halves on days off (back by midnight: each day starts at 100)


def _shaped(days: int, start: str = "2024-01-01", level: float = 100.0, off: set[str] | None = None) -> pd.Series:
    """Hourly series: ``level`` at midnight times the day's shape (weekend and ``off`` dates halve)."""
    index = pd.date_range(start, periods=24 * days, freq="h")
    skip = off or set()
    shape = np.concatenate([OFF if d.weekday() >= 5 or d.strftime("%Y-%m-%d") in skip else WORK
                            for d in pd.date_range(start, periods=days, freq="D")])
    return pd.Series(level * shape, index=index)


def _fit(s: pd.Series, **params: object) -> DayProfile:
    """Fit on exact shapes: no pooling of neighbouring hours unless asked (OFF has a one-hour feature)."""
    model = DayProfile(offset=1e-6, **{"pool": 0, **params})  # type: ignore[arg-type]
    model.fit(s.to_numpy(), FitContext(season_length=24, index=pd.DatetimeIndex(s.index)))
    return model


def test_a_workday_follows_the_workday_shape_from_the_current_level() -> None:
    s = _shaped(28)  # 2024-01-01 is a Monday; 28 days end on a Sunday
    s.iloc[-1] = 300.0  # a new level at the origin: the shape is borrowed, the level is not
    fc = _fit(s).predict(24)
    # every past workday (whatever the day before it) is matched: most were preceded by a
    # workday ending at 100, so the median ratio of each hour to the origin's level is WORK
    np.testing.assert_allclose(fc.point, 300.0 * WORK, rtol=1e-6)


def test_the_day_before_a_weekend_takes_the_weekend_shape() -> None:
    s = _shaped(26)  # ends on Friday 23:00
    fc = _fit(s).predict(48)
    np.testing.assert_allclose(fc.point[:24], 100.0 * OFF, rtol=1e-6)
    np.testing.assert_allclose(fc.point[24:], 100.0 * OFF, rtol=1e-6)


def test_a_public_holiday_is_a_day_off() -> None:
    holiday = "2024-01-25"  # a Thursday, made a day off in the data and the calendar
    s = _shaped(24, off={holiday})  # ends on Wednesday 2024-01-24 23:00
    plain = _fit(s).predict(24).point
    off = _fit(s, extra_holidays=(holiday,)).predict(24).point
    np.testing.assert_allclose(plain, 100.0 * WORK, rtol=1e-6)
    np.testing.assert_allclose(off, 100.0 * OFF, rtol=1e-6)
    assert date_in(holiday_dates("US", range(2024, 2025)), "2024-11-28")  # Thanksgiving
    assert date_in(holiday_dates("US-WA", range(2017, 2018)), "2017-11-24")  # the day after, in Washington
    assert not date_in(holiday_dates("US", range(2017, 2018)), "2017-11-24")


def date_in(days: set[object], iso: str) -> bool:
    return pd.Timestamp(iso).date() in days


def test_the_time_zone_decides_which_hours_are_on_a_weekend() -> None:
    s = _shaped(26)  # ends Friday 23:00 UTC
    utc = _fit(s).predict(24).point
    tokyo = _fit(s, timezone="Asia/Tokyo").predict(24).point
    assert not np.allclose(utc, tokyo)


def test_too_few_days_of_the_kind_keep_the_base_level() -> None:
    s = _shaped(6)  # Monday to Saturday: one Saturday origin only, fewer than min_days
    fc = _fit(s, min_days=3).predict(24)
    np.testing.assert_allclose(fc.point, s.iloc[-1], rtol=1e-6)


def test_paths_use_no_data_after_their_origin() -> None:
    rng = np.random.default_rng(3)
    s = _shaped(30) * rng.uniform(0.7, 1.3, 24 * 30)
    y, index = s.to_numpy(), pd.DatetimeIndex(s.index)
    full = DayProfile().fit(y, FitContext(season_length=24, index=index))
    for origin in (24 * 9, 24 * 17 + 5, 24 * 29):
        cut = DayProfile().fit(y[:origin], FitContext(season_length=24, index=index[:origin]))
        np.testing.assert_allclose(full._paths_from(np.array([origin]), 36)[0], cut.predict(36).point)
    fc = full.predict(24)
    assert fc.error_paths.shape[1] == 24 and fc.error_paths.shape[0] >= 20
    lo, hi = fc.interval(0.8)
    assert (lo <= fc.point + 1e-9).all() and (hi >= fc.point - 1e-9).all()


def test_the_base_is_state_and_arrivals_when_the_covariates_are_there() -> None:
    s = _shaped(21)
    index = pd.DatetimeIndex(s.index)
    state = s.to_numpy() * 0.8
    arrivals = np.full(s.shape[0], 10.0)
    ctx = FitContext(season_length=24, index=index, covariates={END_STATE: state, ARRIVALS: arrivals})
    auto = DayProfile(arrival_window=4).fit(s.to_numpy(), ctx)
    assert auto.base_used == "state_arrivals"
    np.testing.assert_allclose(auto._levels[-1], state[-1] + 10.0)  # type: ignore[index]
    only_state = DayProfile().fit(s.to_numpy(), FitContext(season_length=24, index=index,
                                                            covariates={END_STATE: state}))
    assert only_state.base_used == "last_state"
    bursty = np.zeros(s.shape[0])
    bursty[-1] = 100.0  # one burst in the window: the median ignores it, the mean does not
    ctx = FitContext(season_length=24, index=index, covariates={END_STATE: state, ARRIVALS: bursty})
    median = DayProfile(arrival_window=4).fit(s.to_numpy(), ctx)
    mean = DayProfile(arrival_window=4, arrival_stat="mean").fit(s.to_numpy(), ctx)
    assert median._levels[-1] == pytest.approx(state[-1])  # type: ignore[index]
    assert mean._levels[-1] == pytest.approx(state[-1] + 25.0)  # type: ignore[index]
    assert DayProfile().fit(s.to_numpy(), FitContext(season_length=24, index=index)).base_used == "last_value"
    with pytest.raises(ModelFitError, match="covariates"):
        DayProfile(base="state_arrivals").fit(s.to_numpy(), FitContext(season_length=24, index=index))


def test_bad_input_is_refused_with_the_reason() -> None:
    s = _shaped(10)
    with pytest.raises(ModelFitError, match="time index"):
        DayProfile().fit(s.to_numpy(), FitContext(season_length=24))
    with pytest.raises(ModelFitError, match="seasonal period"):
        DayProfile().fit(s.to_numpy(), FitContext(season_length=1, index=pd.DatetimeIndex(s.index)))
    with pytest.raises(ModelFitError, match="non-negative"):
        DayProfile().fit(-s.to_numpy(), FitContext(season_length=24, index=pd.DatetimeIndex(s.index)))
    with pytest.raises(ValueError, match="holiday calendar"):
        make_model("day_profile", holidays="XX")
    with pytest.raises(ValueError):
        make_model("day_profile", extra_holidays=["not-a-date"])
    with pytest.raises(Exception, match="Mars"):
        make_model("day_profile", timezone="Mars/Olympus")
    with pytest.raises(ValueError, match="base"):
        make_model("day_profile", base="median")
    assert make_model("day_profile", holidays="US-WA").params()["holidays"] == "US-WA"


def test_weighted_median_and_recency() -> None:
    from forecasting.models.profile import weighted_median

    values = np.array([[1.0, 5.0], [2.0, 6.0], [3.0, 7.0]])
    np.testing.assert_allclose(weighted_median(values, np.ones_like(values)), [2.0, 6.0])
    np.testing.assert_allclose(weighted_median(values, np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 5.0]])), [3.0, 7.0])
    # the workday shape changed two weeks ago: weighting by recency follows the new shape sooner
    s = _shaped(56)
    recent = s.index >= s.index[-1] - pd.Timedelta(days=14)
    workday = (s.index.day_of_week < 5) & (s.index.hour >= 9) & (s.index.hour < 18)
    s[recent & workday] *= 1.5
    new = 100.0 * WORK * np.where(WORK > 1, 1.5, 1.0)
    plain = _fit(s, half_life=None).predict(24).point  # ends on Sunday: Monday ahead
    weighted = _fit(s, half_life=7.0).predict(24).point
    assert np.abs(weighted - new).sum() < np.abs(plain - new).sum()
    np.testing.assert_allclose(weighted, new, rtol=1e-6)


def test_pooling_neighbouring_hours_resists_noise_and_keeps_the_edges_of_a_shape() -> None:
    rng = np.random.default_rng(11)
    hours = np.arange(24 * 28)
    smooth = np.exp(0.5 * np.sin(2 * np.pi * (hours % 24) / 24))  # a daily cycle that moves a little each hour
    index = pd.date_range("2024-01-01", periods=hours.shape[0], freq="h")
    noisy = pd.Series(100.0 * smooth * np.exp(rng.normal(0.0, 0.25, hours.shape[0])), index=index)
    noisy.iloc[-1] = 100.0 * smooth[-1]  # the true level at the origin, for both fits
    truth = 100.0 * np.exp(0.5 * np.sin(2 * np.pi * np.arange(24) / 24))
    single = _fit(noisy, half_life=None, holidays=None).predict(24).point
    pooled = _fit(noisy, half_life=None, pool=3).predict(24).point
    assert np.abs(pooled - truth).mean() < 0.8 * np.abs(single - truth).mean()
    # a weighted median over a symmetric kernel keeps a clean step edge where it is (a mean would blur it)
    np.testing.assert_allclose(_fit(_shaped(28), pool=3).predict(24).point, 100.0 * WORK, rtol=1e-6)
    # what it costs: a feature shorter than the kernel's half is smoothed away
    assert _fit(_shaped(26), pool=3).predict(24).point[23] == pytest.approx(50.0)
    with pytest.raises(ValueError, match="pool"):
        DayProfile(pool=-1)
    # the default radius is a quarter of the season: 6 steps for hourly data
    ctx = FitContext(season_length=24, index=pd.DatetimeIndex(noisy.index))
    default = DayProfile().fit(noisy.to_numpy(), ctx).predict(24).point
    np.testing.assert_allclose(default, DayProfile(pool=6).fit(noisy.to_numpy(), ctx).predict(24).point)
    assert DayProfile().params()["pool"] is None


def test_intervals_scale_with_the_square_root_of_the_level() -> None:
    rng = np.random.default_rng(5)
    s = _shaped(30, level=400.0) * rng.uniform(0.9, 1.1, 24 * 30)
    s.iloc[-1] = 25.0  # demand has just dropped: errors seen at 400 GPUs overstate those at 25
    y, ctx = s.to_numpy(), FitContext(season_length=24, index=pd.DatetimeIndex(s.index))
    scaled = DayProfile(pool=0).fit(y, ctx).predict(24)
    plain = DayProfile(pool=0, error_scale="none").fit(y, ctx).predict(24)
    np.testing.assert_allclose(scaled.point, plain.point)
    base_then = np.median(s.to_numpy()[-24 * 28 - 1 :: 24])  # the level at past origins of this hour
    ratio = np.sqrt((25.0 + 200.0) / (base_then + 200.0))
    np.testing.assert_allclose(np.abs(scaled.error_paths).mean() / np.abs(plain.error_paths).mean(), ratio, rtol=0.05)
    with pytest.raises(ValueError, match="error_scale"):
        DayProfile(error_scale="log")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="error_scale"):
        DayProfile(error_scale_offset=0.0)
