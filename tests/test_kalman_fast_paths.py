"""The fitting hot paths against the exact filter: values and gradients of every field.

`marginal_log_likelihood` (closed-form steady state + initial correction), the per-step
`log_likelihood` (exact blocks with a hand-written adjoint, then steady blocks), the Riccati
fixed point with its implicit gradient, and the sparse transition products.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
from kalman_helpers import FIELD_NAMES, co2_monthly, co2_system, llt_seasonal_system, random_system

from bsts.kalman import (
    StateSpace,
    kalman_filter,
    log_likelihood,
    marginal_log_likelihood,
)
from bsts.kalman.marginal import gap_capacity, interior_gaps, shared_gap_capacity
from bsts.kalman.riccati import riccati_fixed_point, riccati_step, steady_state_holds
from bsts.kalman.transition import Transition


def _ssm(system) -> StateSpace:
    return StateSpace(*system.arrays())


def _llt_seasonal(seasonal_var=0.01, slope_var=1e-4, level=300.0):
    m0 = np.zeros(13)
    m0[0] = level
    return llt_seasonal_system(
        sigma2_obs=1.0,
        sigma2_level=0.1,
        sigma2_slope=slope_var,
        sigma2_seasonal=seasonal_var,
        initial_mean=m0,
        initial_cov=100.0 * np.eye(13),
    )


def _series(rng, T, level=300.0):
    t = np.arange(T)
    return level + 0.01 * t + 3 * np.sin(2 * np.pi * t / 12) + np.cumsum(rng.normal(size=T))


@jax.jit
def _exact_total(ssm, y):
    return kalman_filter(ssm, y).log_likelihood.sum()


_marginal = jax.jit(marginal_log_likelihood)
_pointwise = jax.jit(log_likelihood)
_exact_grad = jax.jit(jax.value_and_grad(_exact_total))
_marginal_grad = jax.jit(jax.value_and_grad(marginal_log_likelihood))
_pointwise_grad = jax.jit(jax.value_and_grad(lambda ssm, y: log_likelihood(ssm, y).sum()))


def _assert_same_gradient(expected, actual, rtol):
    for name in FIELD_NAMES:
        e = np.asarray(getattr(expected, name))
        a = np.asarray(getattr(actual, name))
        scale = np.max(np.abs(e)) + 1e-12
        np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * scale, err_msg=name)


@pytest.mark.parametrize("T", [7, 300])
@pytest.mark.parametrize("missing", [False, True])
def test_marginal_equals_exact_filter(rng, T, missing):
    y = _series(rng, T)
    if missing:
        y[rng.random(T) < 0.1] = np.nan
    ssm = _ssm(_llt_seasonal())
    expected = float(_exact_total(ssm, y))
    np.testing.assert_allclose(float(_marginal(ssm, y)), expected, rtol=1e-10)
    np.testing.assert_allclose(float(_pointwise(ssm, y).sum()), expected, rtol=1e-10)


def test_fft_round_off_on_a_long_raw_scale_series(rng):
    # FFT error scales with the whole series' norm, not each term's: a long series far from
    # zero is where the convolution would lose digits first.
    level = 1e4
    y = _series(rng, 5000, level=level)
    ssm = _ssm(_llt_seasonal(level=level))
    np.testing.assert_allclose(float(_marginal(ssm, y)), float(_exact_total(ssm, y)), rtol=1e-10)


def _cond_output_shapes(jaxpr) -> list[tuple[int, ...]]:
    """Shapes of every `cond` output in a jaxpr and its sub-jaxprs."""
    shapes = []
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "cond":
            shapes += [tuple(v.aval.shape) for v in eqn.outvars]
        for param in eqn.params.values():
            for sub in param if isinstance(param, (tuple, list)) else [param]:
                inner = getattr(sub, "jaxpr", sub)
                if hasattr(inner, "eqns"):
                    shapes += _cond_output_shapes(inner)
    return shapes


def test_gradient_stores_no_fallback_covariances(rng):
    # Reverse mode returns both branches' residuals from a cond; the rarely taken fallback
    # filter must not hand out its (T, d, d) covariances on every gradient (it doubled the
    # cost of the hot path).
    y = _series(rng, 300)
    y[[5, 40]] = np.nan
    ssm = _ssm(_llt_seasonal())
    jaxpr = jax.make_jaxpr(jax.value_and_grad(lambda s: marginal_log_likelihood(s, y)))(ssm)
    shapes = _cond_output_shapes(jaxpr.jaxpr)
    assert shapes, "expected the closed form's fallback conditional"
    # (The scan across gaps has a cond per gap; its outputs are single d x d matrices.)
    assert all(len(shape) < 3 or y.size not in shape for shape in shapes), shapes


@pytest.mark.parametrize("seasonal_var", [0.0, 1e-6, 0.1])
def test_marginal_without_stabilising_noise(rng, seasonal_var):
    """A deterministic (zero-variance) or nearly deterministic seasonal is still exact."""
    y = _series(rng, 300)
    ssm = _ssm(_llt_seasonal(seasonal_var=seasonal_var, slope_var=0.0))
    np.testing.assert_allclose(float(_marginal(ssm, y)), float(_exact_total(ssm, y)), rtol=1e-9)


def test_fallback_with_gaps_and_no_stabilising_noise(rng):
    """Known gaps and a deterministic seasonal: the exact fallback, value and gradient."""
    y = _series(rng, 300)
    y[[5, 140]] = np.nan
    ssm = _ssm(_llt_seasonal(seasonal_var=0.0, slope_var=0.0))
    value, expected = _exact_grad(ssm, y)
    fast_value, actual = jax.jit(jax.value_and_grad(lambda s: marginal_log_likelihood(s, y)))(ssm)
    np.testing.assert_allclose(float(fast_value), float(value), rtol=1e-9)
    _assert_same_gradient(expected, actual, rtol=1e-6)


@pytest.mark.parametrize("missing", [False, True])
def test_gradients_of_every_field_match_autodiff(rng, missing):
    """Traced F (passed as an argument): dense products and the full hand-written adjoint."""
    y = _series(rng, 300)
    if missing:
        y[[3, 150, 151, 290]] = np.nan
    ssm = _ssm(_llt_seasonal())
    value, expected = _exact_grad(ssm, y)
    for fast in (_marginal_grad, _pointwise_grad):
        fast_value, actual = fast(ssm, y)
        np.testing.assert_allclose(float(fast_value), float(value), rtol=1e-10)
        _assert_same_gradient(expected, actual, rtol=1e-6)


@pytest.mark.parametrize(
    "gaps",
    [
        pytest.param([150], marks=pytest.mark.slow),  # the scattered case holds single gaps
        [0, 1, 2],
        [3, 150, 151, 290, 299],
        pytest.param(list(range(100, 160)), marks=pytest.mark.slow),
    ],
    ids=["one", "leading", "scattered", "long-run"],
)
def test_closed_form_with_gaps_known_at_trace_time(rng, gaps):
    """Concrete y with NaNs (as inside a NumPyro model): the gap-corrected closed form."""
    y = _series(rng, 300)
    y[gaps] = np.nan
    ssm = _ssm(_llt_seasonal())
    value, expected = _exact_grad(ssm, y)
    fast_value, actual = jax.jit(jax.value_and_grad(lambda s: marginal_log_likelihood(s, y)))(ssm)
    np.testing.assert_allclose(float(fast_value), float(value), rtol=1e-10)
    _assert_same_gradient(expected, actual, rtol=1e-6)


def test_closed_form_with_gaps_in_a_random_dense_system(rng):
    system = random_system(rng, state_dim=3, num_steps=200, time_invariant=True)
    y = rng.normal(size=200) * 3
    y[[0, 50, 120, 199]] = np.nan
    ssm = _ssm(system)
    expected = float(_exact_total(ssm, y))
    np.testing.assert_allclose(float(marginal_log_likelihood(ssm, y)), expected, rtol=1e-10)


def test_gap_capacity_counts_gaps_before_the_last_observation():
    y = np.zeros(50)
    y[[4, 7]] = np.nan
    y[45:] = np.nan  # trailing: padding or a forecast's future, not gaps
    assert interior_gaps(y) == 2
    assert gap_capacity(2, 50) == 4  # at least 4
    assert gap_capacity(0, 50) == 0
    assert gap_capacity(20, 1000) == 20  # eighths of powers of two: programs are shared
    assert gap_capacity(21, 1000) == 24
    assert gap_capacity(518, 10_000) == 640
    assert gap_capacity(400, 1000) is None  # over a third: the exact filter
    assert shared_gap_capacity([0, 4, 32]) == 32
    assert shared_gap_capacity([4, None]) is None
    seen = []
    jax.jit(lambda v: seen.append(interior_gaps(v)) or v)(jnp.asarray(y))
    assert seen == [None]  # traced: the gaps are unknown until run time


def test_gradients_with_random_dense_systems(rng):
    """Random dense F, Q, H (no structure) through the per-step path with missing values."""
    system = random_system(rng, state_dim=3, num_steps=300, time_invariant=True)
    y = rng.normal(size=300) * 3
    y[[0, 50, 120]] = np.nan
    ssm = _ssm(system)
    value, expected = _exact_grad(ssm, y)
    for fast in (_marginal_grad, _pointwise_grad):
        fast_value, actual = fast(ssm, y)
        np.testing.assert_allclose(float(fast_value), float(value), rtol=1e-10)
        _assert_same_gradient(expected, actual, rtol=1e-6)


def test_gradient_with_concrete_sparse_transition(rng):
    """F captured as a constant: the sparse product path, gradients in the variances."""
    y = _series(rng, 300)
    y[250] = np.nan
    base = _llt_seasonal()

    def build(log_variances):
        variances = jnp.exp(log_variances)
        Q = jnp.zeros((13, 13)).at[(0, 1, 2), (0, 1, 2)].set(variances[1:])
        return StateSpace(
            base.transition_matrix,
            Q,
            base.observation_matrix,
            0.0,
            variances[0],
            base.initial_mean,
            base.initial_cov,
        )

    params = jnp.log(jnp.array([1.0, 0.1, 1e-4, 0.01]))
    assert Transition(jnp.asarray(base.transition_matrix)).is_static
    expected = jax.jit(jax.grad(lambda p: _exact_total(build(p), y)))(params)
    for fn in (
        lambda p: marginal_log_likelihood(build(p), y),
        lambda p: log_likelihood(build(p), y).sum(),
    ):
        # Under jit F stays a constant of the trace (the static path) and the data too.
        np.testing.assert_allclose(jax.jit(jax.grad(fn))(params), expected, rtol=1e-7)


def test_riccati_fixed_point_and_its_gradient():
    system = _llt_seasonal()
    F, Q, H, r = (
        jnp.asarray(system.transition_matrix),
        jnp.asarray(system.transition_cov),
        jnp.asarray(system.observation_matrix),
        jnp.asarray(system.observation_var),
    )
    P_bar = riccati_fixed_point(F, Q, H, r)
    np.testing.assert_allclose(riccati_step(P_bar, F, Q, H, r), P_bar, atol=1e-12)

    def trace_of_fixed_point(log_r):
        return jnp.trace(riccati_fixed_point(F, Q, H, jnp.exp(log_r)))

    x = jnp.log(r)
    step = 1e-5
    numeric = (trace_of_fixed_point(x + step) - trace_of_fixed_point(x - step)) / (2 * step)
    np.testing.assert_allclose(jax.grad(trace_of_fixed_point)(x), numeric, rtol=1e-6)


def test_sparse_transition_products_match_dense(rng):
    F = _llt_seasonal().transition_matrix
    F = F * rng.uniform(0.5, 1.5, size=F.shape)  # non-unit coefficients too
    transition = Transition(jnp.asarray(F))
    assert transition.is_static
    X = rng.normal(size=(13, 13))
    v = rng.normal(size=13)
    np.testing.assert_allclose(transition.apply(F, X), F @ X, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(transition.apply(F, v), F @ v, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(transition.apply_transposed(F, X), F.T @ X, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(transition.sandwich(F, X), F @ X @ F.T, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(
        transition.sandwich_transposed(F, X), F.T @ X @ F, rtol=1e-12, atol=1e-13
    )
    assert not Transition(jnp.asarray(rng.normal(size=(4, 4)))).is_static


def test_fast_paths_in_float32_on_co2():
    y = co2_monthly()
    y = y[~np.isnan(y)]  # the closed form needs every step observed
    system = co2_system(y[0])
    ssm32 = StateSpace(*system.arrays(np.float32))
    reference = float(_exact_total(_ssm(system), y))
    for value in (
        marginal_log_likelihood(ssm32, y.astype(np.float32)),
        log_likelihood(ssm32, y.astype(np.float32)).sum(),
    ):
        assert value.dtype == jnp.float32
        np.testing.assert_allclose(float(value), reference, rtol=1e-3)


def test_vmap_over_series_with_different_gaps(rng):
    ssm = _ssm(_llt_seasonal())
    ys = np.stack([_series(rng, 300) for _ in range(3)])
    ys[1, 17] = np.nan
    batched = jax.vmap(lambda y: marginal_log_likelihood(ssm, y))(ys)
    looped = [float(_exact_total(ssm, y)) for y in ys]
    np.testing.assert_allclose(batched, looped, rtol=1e-10)


# Lengths 1 and 200 in the default run; 2 and 300 (a series not padded at all) under slow.
@pytest.mark.parametrize(
    "length",
    [1, pytest.param(2, marks=pytest.mark.slow), 200, pytest.param(300, marks=pytest.mark.slow)],
)
def test_traced_series_padded_at_the_end_keeps_the_closed_form(rng, length):
    """Trailing NaNs (padding in a batch) with y traced: closed form over the prefix.

    Value and gradient equal the exact filter on the unpadded series, and so does the
    closed form itself, evaluated on the prefix mask the traced path builds.
    """
    from bsts.kalman.marginal import _closed_form

    y = _series(rng, length)
    padded = np.concatenate([y, np.full(300 - length, np.nan)])
    ssm = _ssm(_llt_seasonal())  # constant offset: the same model for any length
    value, expected = _exact_grad(ssm, y)
    fast_value, actual = jax.jit(jax.value_and_grad(marginal_log_likelihood))(ssm, padded)
    np.testing.assert_allclose(float(fast_value), float(value), rtol=1e-10)
    for name in FIELD_NAMES:
        e, a = np.asarray(getattr(expected, name)), np.asarray(getattr(actual, name))
        # One observation leaves F and Q without gradient: round-off is all there is.
        atol = 1e-6 * np.max(np.abs(e)) + 1e-12
        np.testing.assert_allclose(a, e, rtol=1e-6, atol=atol, err_msg=name)

    F, Q, H, r = (
        ssm.transition_matrix,
        ssm.transition_cov,
        ssm.observation_matrix,
        ssm.observation_var,
    )
    P_bar = riccati_fixed_point(F, Q, H, r)
    observed = jnp.asarray(~np.isnan(padded))
    closed = _closed_form(ssm, jnp.asarray(np.nan_to_num(padded)), observed, P_bar, 0)
    np.testing.assert_allclose(float(closed), float(value), rtol=1e-10)


def test_traced_series_with_an_interior_gap_takes_the_per_step_path(rng):
    y = _series(rng, 300)
    y[100] = np.nan
    y[250:] = np.nan
    ssm = _ssm(_llt_seasonal())
    np.testing.assert_allclose(
        float(jax.jit(marginal_log_likelihood)(ssm, y)), float(_exact_total(ssm, y)), rtol=1e-10
    )


def test_traced_series_without_stabilising_noise_has_a_finite_gradient(rng):
    # No stabilising solution (a deterministic seasonal and slope): the traced path falls
    # back to the exact filter, whose gradient stays finite (the per-step steady
    # path's did not, which froze NUTS on a semi-local trend).
    y = np.concatenate([_series(rng, 200), np.full(40, np.nan)])
    ssm = _ssm(_llt_seasonal(seasonal_var=0.0, slope_var=0.0))
    value, expected = _exact_grad(ssm, y)
    fast_value, actual = jax.jit(jax.value_and_grad(marginal_log_likelihood))(ssm, y)
    np.testing.assert_allclose(float(fast_value), float(value), rtol=1e-9)
    _assert_same_gradient(expected, actual, rtol=1e-6)


@pytest.mark.parametrize("slope_var", [1e-6, pytest.param(1e-10, marks=pytest.mark.slow)])
def test_float32_closed_form_with_a_slowly_contracting_steady_state(rng, slope_var):
    # A slope variance near zero makes the steady filter contract slowly; the float32
    # doubling then stops with (L^T)^(2^k) near 1e-3, a stabilising solution that was
    # once rejected, sending one gradient in ten of NUTS on M1 to the sequential filter.
    y = _series(rng, 120)
    system = _llt_seasonal(seasonal_var=1e-5, slope_var=slope_var)
    ssm32 = StateSpace(*system.arrays(np.float32))
    P_bar = riccati_fixed_point(
        ssm32.transition_matrix,
        ssm32.transition_cov,
        ssm32.observation_matrix,
        ssm32.observation_var,
    )
    assert np.all(np.isfinite(P_bar)), "the stabilising solution was rejected"

    def by_log_variances(log_q, arrays, y):
        q = jnp.exp(log_q)
        cov = arrays[1].at[0, 0].set(q[0]).at[1, 1].set(q[1])
        return marginal_log_likelihood(StateSpace(arrays[0], cov, *arrays[2:]), y)

    log_q = np.log([0.1, slope_var])
    arrays64 = tuple(jnp.asarray(a) for a in system.arrays())
    arrays32 = tuple(jnp.asarray(a) for a in system.arrays(np.float32))
    reference, expected = jax.value_and_grad(by_log_variances)(log_q, arrays64, y)
    value, gradient = jax.jit(jax.value_and_grad(by_log_variances))(
        log_q.astype(np.float32), arrays32, y.astype(np.float32)
    )
    np.testing.assert_allclose(float(value), float(reference), rtol=1e-5)
    np.testing.assert_allclose(gradient, expected, atol=1e-3)


@pytest.mark.parametrize("seasonal_var, closed_in_float32", [(1e-12, True), (1e-16, False)])
def test_nearly_deterministic_seasonal(rng, seasonal_var, closed_in_float32):
    # A seasonal scale of 1e-6 or 1e-8 of the noise's (where a long series pins it, and
    # where NUTS spends part of its time) has a stabilising steady state that takes about
    # 1e6 steps to reach. In float32 the doubling stopped once the level had converged,
    # before that block had; its modes failed the certificate and the fallback ran (40x
    # slower at T = 10^4). At 1e-8 the contraction (1 - 1e-8) is 1 in float32: the powers
    # of L in the implicit gradient would not vanish, so that solution is rejected and the
    # exact filter runs. Either way value and gradient equal the exact filter's.
    y = _series(rng, 2000)
    system = _llt_seasonal(seasonal_var=seasonal_var)
    arrays64 = tuple(jnp.asarray(a) for a in system.arrays())
    arrays32 = tuple(jnp.asarray(a) for a in system.arrays(np.float32))
    for (F, Q, H, _, r, *_), closed in ((arrays64, True), (arrays32, closed_in_float32)):
        P_bar = riccati_fixed_point(F, Q, H, r)
        assert np.all(np.isfinite(P_bar)) == closed, F.dtype

    def by_log_variances(log_q, arrays, y, total):
        q = jnp.exp(log_q)
        cov = arrays[1].at[0, 0].set(q[0]).at[2, 2].set(q[1])
        return total(StateSpace(arrays[0], cov, *arrays[2:]), y)

    log_q = np.log([0.1, seasonal_var])
    exact, closed64, closed32 = _exact_and_closed_form(by_log_variances, log_q, system, y)
    np.testing.assert_allclose(closed64[0], exact[0], rtol=1e-10)
    np.testing.assert_allclose(closed64[1], exact[1], rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(closed32[0], exact[0], rtol=1e-5)
    np.testing.assert_allclose(closed32[1], exact[1], atol=2e-3)


def _exact_and_closed_form(loss, log_q, system, y):
    """`(value, gradient)` of `loss(log_q, arrays, y, total)` three ways.

    The exact filter in float64 (the reference), then the closed form
    (`marginal_log_likelihood`, jitted) in float64 and in float32.
    """
    arrays64 = tuple(jnp.asarray(a) for a in system.arrays())
    arrays32 = tuple(jnp.asarray(a) for a in system.arrays(np.float32))
    reference = jax.value_and_grad(loss)(log_q, arrays64, y, _exact_total)
    fast = jax.jit(jax.value_and_grad(loss), static_argnums=3)
    closed64 = fast(log_q, arrays64, y, marginal_log_likelihood)
    closed32 = fast(
        log_q.astype(np.float32), arrays32, y.astype(np.float32), marginal_log_likelihood
    )
    return reference, closed64, closed32


def test_nearly_exact_observation(rng):
    # An observation variance near zero (the half-hourly electricity series' MAP has 6.5e-13
    # of the series' variance) made the doubling's H H' / r swamp the solution, which then
    # failed the steady-state test (this test fails on that solver in float64 already). The
    # doubling now runs with r floored and Newton steps finish the solve at the true r,
    # against SciPy's QZ-based solver and on the closed form, value and gradient, in both
    # precisions.
    obs_var = 1e-13
    y = _series(rng, 400)
    base = _llt_seasonal()
    system = llt_seasonal_system(
        sigma2_obs=obs_var,
        sigma2_level=0.1,
        sigma2_slope=1e-4,
        sigma2_seasonal=1e-6,
        initial_mean=base.initial_mean,
        initial_cov=base.initial_cov,
    )
    F, Q, H, _, r, *_ = (np.asarray(a) for a in system.arrays())
    expected_P = scipy.linalg.solve_discrete_are(F.T, H[:, None], Q, np.array([[r]]))
    for dtype, rtol in ((np.float64, 1e-9), (np.float32, 1e-4)):
        arrays = tuple(jnp.asarray(a, dtype) for a in (F, Q, H, r))
        P_bar = riccati_fixed_point(*arrays)
        assert steady_state_holds(P_bar, *arrays), dtype
        np.testing.assert_allclose(
            P_bar, expected_P, rtol=rtol, atol=rtol * np.abs(expected_P).max()
        )

    def by_log_variances(log_q, arrays, y, total):
        q = jnp.exp(log_q)
        cov = arrays[1].at[0, 0].set(q[1]).at[2, 2].set(q[2])
        return total(StateSpace(arrays[0], cov, arrays[2], arrays[3], q[0], *arrays[5:]), y)

    log_q = np.log([obs_var, 0.1, 1e-6])
    exact, closed64, closed32 = _exact_and_closed_form(by_log_variances, log_q, system, y)
    np.testing.assert_allclose(closed64[0], exact[0], rtol=1e-10)
    np.testing.assert_allclose(closed64[1], exact[1], rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(closed32[0], exact[0], rtol=1e-5)
    np.testing.assert_allclose(closed32[1], exact[1], atol=2e-2 * np.abs(exact[1]).max())


def test_traced_series_without_room_for_gaps_runs_the_exact_filter_directly(rng):
    y = _series(rng, 120)
    y[[10, 11, 50]] = np.nan
    ssm = _ssm(_llt_seasonal())
    value, expected = _exact_grad(ssm, y)
    exact = lambda s, v: marginal_log_likelihood(s, v, max_gaps=None)  # noqa: E731
    gapped = jax.jit(jax.value_and_grad(exact))
    fast_value, actual = gapped(ssm, y)
    np.testing.assert_allclose(float(fast_value), float(value), rtol=1e-12)
    # The one-block filter's hand-written adjoint, not autodiff: equal to round-off.
    _assert_same_gradient(expected, actual, rtol=1e-10)
    # No closed form in the program: no FFT, and no `lax.cond` around the filter.
    text = gapped.lower(ssm, y).as_text()
    assert "fft" not in text and "stablehlo.case" not in text
