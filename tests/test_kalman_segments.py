"""The closed form across gaps (`bsts.kalman.segments`) against the exact filter and the
dense Gaussian: values and the gradient of every field, with the series traced (as a
fitting program sees it) and the gaps found at run time.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from kalman_helpers import FIELD_NAMES, DenseOracle, llt_seasonal_system, random_system

from bsts.kalman import StateSpace, kalman_filter, marginal_log_likelihood
from bsts.kalman.marginal import gap_capacity, interior_gaps
from bsts.kalman.segments import RUN_PIECE, block_length, gap_pieces

T = 300


def _llt_seasonal(initial_var=100.0, slope_var=1e-4):
    m0 = np.zeros(13)
    m0[0] = 300.0
    return llt_seasonal_system(
        sigma2_obs=1.0,
        sigma2_level=0.1,
        sigma2_slope=slope_var,
        sigma2_seasonal=0.01,
        initial_mean=m0,
        initial_cov=initial_var * np.eye(13),
    )


def _series(rng, length=T):
    t = np.arange(length)
    return 300 + 0.01 * t + 3 * np.sin(2 * np.pi * t / 12) + np.cumsum(rng.normal(size=length))


@jax.jit
def _exact(ssm, y):
    return kalman_filter(ssm, y).log_likelihood.sum()


_exact_grad = jax.jit(jax.value_and_grad(_exact))


@jax.jit
def _traced_grad(ssm, y):
    # One capacity for every pattern below: the positions are data, so one program serves.
    return jax.value_and_grad(lambda s: marginal_log_likelihood(s, y, max_gaps=64))(ssm)


def _assert_same_gradient(expected, actual, rtol=1e-6, scale=None):
    """Per field, to `rtol` of that field's largest entry (or of `scale`)."""
    for name in FIELD_NAMES:
        e, a = np.asarray(getattr(expected, name)), np.asarray(getattr(actual, name))
        atol = rtol * (np.max(np.abs(e)) if scale is None else scale)
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol, err_msg=name)


PATTERNS = {
    "one": [150],
    "leading": [0, 1, 2],
    "scattered": [3, 77, 150, 151, 290, 298],
    "runs": list(range(20, 40)) + list(range(100, 125)),
    "long-run": list(range(100, 170)),  # five scan steps of up to RUN_PIECE gaps
    "every-tenth": list(range(5, 290, 10)),
    # 17 segments of B = 16 steps, near the bound of T // B = 18 that use the long tables.
    "every-seventeenth": list(range(16, T, 17)),
    "then-padding": [10, 50, *range(260, T)],  # a trailing run is no gap
}


@pytest.mark.parametrize("pattern", PATTERNS)
def test_traced_series_with_gaps_matches_the_exact_filter(rng, pattern):
    y = _series(rng)
    y[PATTERNS[pattern]] = np.nan
    ssm = StateSpace(*_llt_seasonal().arrays())
    value, expected = _exact_grad(ssm, y)
    fast_value, actual = _traced_grad(ssm, y)
    np.testing.assert_allclose(float(fast_value), float(value), rtol=1e-10)
    _assert_same_gradient(expected, actual)


def test_random_dense_systems_with_gaps_match_the_dense_gaussian(rng):
    for state_dim in (1, 3, 5):
        system = random_system(rng, state_dim=state_dim, num_steps=80, time_invariant=True)
        y = rng.normal(size=80) * 3
        y[[0, 7, 8, 30, 31, 32, 60, 79]] = np.nan
        expected = DenseOracle(system, 80).total_log_likelihood(y)
        ssm = StateSpace(*system.arrays())
        traced = jax.jit(lambda s, v: marginal_log_likelihood(s, v, max_gaps=8))
        np.testing.assert_allclose(float(traced(ssm, y)), expected, rtol=1e-9)
        # The series closed over, as concrete: its gaps known when the program is traced.
        concrete = jax.jit(lambda s, y=y: marginal_log_likelihood(s, y))
        np.testing.assert_allclose(float(concrete(ssm)), expected, rtol=1e-9)


def test_diffuse_start_and_dense_gaps(rng):
    # A diffuse prior (P0 = 10^6 I) over the first, short segments, and 1 step in 5 missing.
    y = _series(rng)
    y[rng.random(T) < 0.2] = np.nan
    y[-1] = 1.0
    ssm = StateSpace(*_llt_seasonal(initial_var=1e6).arrays())
    value, expected = _exact_grad(ssm, y)
    count = interior_gaps(y)
    capacity = gap_capacity(count, T)
    assert capacity is not None and capacity >= count
    fast = jax.jit(
        jax.value_and_grad(lambda s, v: marginal_log_likelihood(s, v, max_gaps=capacity))
    )
    fast_value, actual = fast(ssm, y)
    # Both carry round-off of order eps * 10^6 here (the dense Gaussian is singular to
    # working precision at this prior, so it cannot referee).
    np.testing.assert_allclose(float(fast_value), float(value), rtol=1e-8)
    # The offset's gradient is nearly 0 under this prior (the level absorbs it): its
    # round-off is measured against the largest gradient entry.
    scale = max(np.max(np.abs(np.asarray(getattr(expected, n)))) for n in FIELD_NAMES)
    _assert_same_gradient(expected, actual, rtol=1e-6, scale=scale)


def test_more_gaps_than_room_falls_back_to_the_exact_filter(rng):
    y = _series(rng)
    y[list(range(3, 290, 3))] = np.nan  # 96 gaps, room for 64
    ssm = StateSpace(*_llt_seasonal().arrays())
    value, expected = _exact_grad(ssm, y)
    fast_value, actual = _traced_grad(ssm, y)
    np.testing.assert_allclose(float(fast_value), float(value), rtol=1e-10)
    _assert_same_gradient(expected, actual, rtol=1e-9)


def test_no_stabilising_solution_falls_back_with_a_finite_gradient(rng):
    # A deterministic seasonal and slope leave no stabilising fixed point.
    y = _series(rng)
    y[[40, 41, 200]] = np.nan
    system = llt_seasonal_system(
        sigma2_obs=1.0,
        sigma2_level=0.1,
        sigma2_slope=0.0,
        sigma2_seasonal=0.0,
        initial_mean=np.zeros(13),
        initial_cov=100.0 * np.eye(13),
    )
    ssm = StateSpace(*system.arrays())
    value, expected = _exact_grad(ssm, y)
    fast_value, actual = _traced_grad(ssm, y)
    np.testing.assert_allclose(float(fast_value), float(value), rtol=1e-9)
    _assert_same_gradient(expected, actual)


def test_vmap_over_series_with_different_gap_patterns(rng):
    ssm = StateSpace(*_llt_seasonal().arrays())
    ys = np.stack([_series(rng) for _ in range(3)])
    ys[0, [5, 6, 7]] = np.nan
    ys[1, ::7] = np.nan
    ys[2, 250:] = np.nan
    batched = jax.vmap(lambda v: marginal_log_likelihood(ssm, v, max_gaps=64))(ys)
    np.testing.assert_allclose(batched, [float(_exact(ssm, y)) for y in ys], rtol=1e-10)


def test_vmap_in_float32_gives_each_series_its_own_value(rng):
    """Batched, the float32 factor's branches both run (a select); the values must not mix."""
    ssm = StateSpace(*_llt_seasonal().arrays(np.float32))
    ys = np.stack([_series(rng) for _ in range(3)])
    ys[0, [5, 6, 7]] = np.nan
    ys[1, ::7] = np.nan
    ys[2, 250:] = np.nan
    ys = jnp.asarray(ys, jnp.float32)
    one = jax.jit(lambda v: marginal_log_likelihood(ssm, v, max_gaps=64))
    batched = jax.jit(jax.vmap(one))(ys)
    assert batched.dtype == jnp.float32
    np.testing.assert_allclose(batched, [float(one(y)) for y in ys], rtol=1e-5)


def test_float32_with_gaps_is_as_exact_as_the_filter(rng):
    """JAX's default precision: value and gradient against float64, as the filter's own."""
    y = _series(rng)
    y[rng.random(T) < 0.05] = np.nan
    y[-1] = 300.0
    system = _llt_seasonal()
    value, expected = _exact_grad(StateSpace(*system.arrays()), y)
    ssm32 = StateSpace(*system.arrays(np.float32))
    y32 = jnp.asarray(y, jnp.float32)
    capacity = gap_capacity(interior_gaps(y), T)
    fast = jax.value_and_grad(lambda s, v: marginal_log_likelihood(s, v, max_gaps=capacity))
    fast_value, actual = jax.jit(fast)(ssm32, y32)
    filter_value, filter_grad = jax.jit(jax.value_and_grad(_exact))(ssm32, y32)
    assert fast_value.dtype == jnp.float32
    # Within the exact filter's own float32 error, or 1e-5 relative.
    tolerance = max(1e-5 * abs(float(value)), 2 * abs(float(filter_value) - float(value)))
    assert abs(float(fast_value) - float(value)) <= tolerance
    for name in ("transition_cov", "observation_var", "initial_cov"):
        e = np.asarray(getattr(expected, name))
        a = np.asarray(getattr(actual, name), np.float64)
        f = np.asarray(getattr(filter_grad, name), np.float64)
        error, filter_error = np.max(np.abs(a - e)), np.max(np.abs(f - e))
        # 2e-3: in float32 the segments' $M^{-1} = I - \Sigma J$ is a difference, whose
        # round-off reaches the gradient in P0 (1.2e-3 relative to its largest entry here).
        assert error <= max(2e-3 * np.max(np.abs(e)), 2 * filter_error), name


def test_float32_with_early_gaps_on_a_smooth_series():
    """CO2 (five gaps, two near the start; noise far below the series' spread) in float32.

    After a gap near the start the excess covariance is ill-conditioned while the next
    segment is very informative; forming its conditioned covariance as $(I + EJ)^{-1} E$
    in float32 had moved the log-likelihood by about 28 nats here, and NUTS stalled.
    """
    import bsts
    from bsts.data import prepare_series
    from bsts.inference import nest_parameters

    values = bsts.datasets.load("co2").iloc[:, 0].astype(float).asfreq("MS").iloc[:-24]
    model = bsts.LocalLinearTrend(name="trend") + bsts.FourierSeasonal(12, 6, name="seasonal")
    series = prepare_series(values.to_frame("y"), "y", model.covariate_columns)
    inputs = model.inputs(series)
    assert np.isnan(series.y[:10]).sum() == 2
    spread = float(np.nanstd(values))
    # Near the posterior mean of a float64 NUTS fit (original units over the spread).
    scales = {"observation.scale": 0.159, "seasonal.scale": 0.006}
    scales |= {"trend.level_scale": 0.18, "trend.slope_scale": 0.002}

    def log_likelihood(dtype):
        flat = {k: jnp.asarray(v / spread, dtype) for k, v in scales.items()}
        ssm = model.state_space(nest_parameters(model, flat), inputs)
        ssm = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), ssm)
        y = jnp.asarray(series.y, dtype)
        capacity = gap_capacity(interior_gaps(series.y), len(series.y))
        fast = jax.jit(lambda s, v: marginal_log_likelihood(s, v, max_gaps=capacity))
        return ssm, y, fast(ssm, y)

    ssm, y, _ = log_likelihood(jnp.float64)
    expected = float(_exact(ssm, y))
    ssm32, y32, fast32 = log_likelihood(jnp.float32)
    assert fast32.dtype == jnp.float32
    filter32 = float(jax.jit(_exact)(ssm32, y32))
    assert abs(float(fast32) - expected) <= max(0.3, 3 * abs(filter32 - expected))


def test_runs_of_gaps_take_one_scan_step_per_piece():
    missing = np.zeros(200, bool)
    missing[[3, 50, 51, 52]] = True  # two runs: 1 and 3 gaps
    missing[100:140] = True  # 40 gaps: three pieces of up to 16
    assert RUN_PIECE == 16
    assert gap_pieces(missing) == 5
    assert gap_pieces(np.zeros(5, bool)) == 0
    y = np.where(missing, np.nan, 1.0)
    assert interior_gaps(np.concatenate([y, [np.nan, 2.0, np.nan]])) == 6  # and one more


def test_block_length_is_a_power_of_two_near_the_square_root():
    assert block_length(1) == 1
    assert block_length(10) == 10
    assert block_length(300) == 16
    assert block_length(10_000) == 128
    assert block_length(100_000) == 256
