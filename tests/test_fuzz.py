"""Property tests of the public path on random series (Hypothesis).

Valid series of any scale (1e-6 to 1e9), with constant stretches, gaps, uneven time stamps
and a covariate: `fit` (MAP), `forecast` and `decompose` return finite numbers and leave the
user's data as it was. Invalid series raise a bsts `ValueError` or `TypeError` that says
what is wrong, never a JAX error or NaN. The CI share is a few examples at two lengths (one
compilation bucket); `pytest -m slow` runs many more.
"""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bsts


@st.composite
def valid_series(draw):
    n = draw(st.sampled_from([25, 32]))
    seed = draw(st.integers(0, 2**32 - 1))
    scale = 10.0 ** draw(st.integers(-6, 9))
    offset = draw(st.sampled_from([0.0, 1.0, -50.0, 1e3])) * scale
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    y = offset + scale * (np.cumsum(rng.normal(size=n)) + np.sin(2 * np.pi * t / 4))
    if draw(st.booleans()):  # a constant stretch
        start = draw(st.integers(0, n - 8))
        y[start : start + 6] = y[start]
    missing = draw(st.sampled_from([0.0, 0.1, 0.3]))
    y[rng.random(n) < missing] = np.nan
    y[[0, n // 2, n - 1]] = offset + scale * np.array([0.0, 1.0, -1.0])  # >= 3 values, varying
    if draw(st.booleans()):
        steps = rng.choice([1, 1, 2, 3], size=n)
        index = pd.Timestamp("2020-01-01") + pd.to_timedelta(np.cumsum(steps), unit="D")
    else:
        index = pd.date_range("2020-01-01", periods=n, freq="D")
    frame = pd.DataFrame({"y": y}, index=index)
    covariate = draw(st.booleans())
    if covariate:
        frame["x"] = rng.normal(size=n) * 10.0 ** draw(st.integers(-3, 6))
    return frame, covariate


def _check_valid(frame, covariate):
    before = frame.copy(deep=True)
    parts = [bsts.LocalLinearTrend(), bsts.FourierSeasonal(7.0, harmonics=1)]
    if covariate:
        parts.append(bsts.Regression(["x"]))
    post = bsts.fit(bsts.Model(parts), frame, "y", method="map")
    if covariate:
        future = pd.DataFrame(
            {"x": [0.0, 1.0, -1.0]},
            index=frame.index[-1] + pd.to_timedelta([1, 2, 3], unit="D"),
        )
        prediction = bsts.forecast(post, future=future)
    else:
        prediction = bsts.forecast(post, horizon=3)
    table = prediction.to_pandas()
    assert np.isfinite(table.to_numpy()).all(), table
    parts = bsts.decompose(post, num_samples=20)
    for name, values in {**parts.draws, "fitted": parts.fitted}.items():
        assert np.isfinite(values).all(), name
    pd.testing.assert_frame_equal(frame, before)


@settings(max_examples=2, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_series())
def test_valid_series_give_finite_answers_and_keep_the_input(case):
    _check_valid(*case)


@pytest.mark.slow
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_series())
def test_valid_series_give_finite_answers_and_keep_the_input_long(case):
    _check_valid(*case)


@st.composite
def invalid_series(draw):
    n = draw(st.integers(5, 30))
    y = np.random.default_rng(draw(st.integers(0, 1000))).normal(size=n)
    index = pd.date_range("2020-01-01", periods=n, freq="D")
    fault = draw(
        st.sampled_from(["all_nan", "constant", "inf", "duplicate", "decreasing", "short", "text"])
    )
    if fault == "all_nan":
        y[:] = np.nan
    elif fault == "constant":
        y[:] = 3.0
    elif fault == "inf":
        y[draw(st.integers(0, n - 1))] = np.inf
    elif fault == "duplicate":
        index = index.insert(1, index[0])[:n]
    elif fault == "decreasing":
        index = index[::-1]
    elif fault == "short":
        y[2:] = np.nan
    frame = pd.DataFrame({"y": y}, index=index)
    if fault == "text":
        frame["y"] = frame["y"].astype(str)
    return frame


@settings(max_examples=40, deadline=None)
@given(invalid_series())
def test_invalid_series_raise_a_bsts_error(frame):
    with pytest.raises((ValueError, TypeError)) as caught:
        bsts.fit(bsts.LocalLevel(), frame, "y", method="map")
    assert type(caught.value).__module__ == "builtins"
    assert "jax" not in str(caught.value).lower()
