"""Properties of the Kalman engine: forms agree, gradients, jit/vmap, sampling, float32."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from kalman_helpers import (
    DenseOracle,
    apply_missing,
    co2_monthly,
    co2_system,
    llt_seasonal_system,
    make_state_space,
    nile_data,
    nile_system,
    random_system,
    run_filter,
    run_log_likelihood,
    run_smoother,
    scaled_atol,
    simulate,
    steps_to_steady_state,
)

from bsts.kalman import (
    StateSpace,
    kalman_filter,
    kalman_smoother,
    log_likelihood,
    sample_states,
)

FILTER_FIELDS = (
    "log_likelihood",
    "filtered_mean",
    "filtered_cov",
    "predicted_mean",
    "predicted_cov",
)

# --------------------------------------------------------------------------------------
# Sequential == parallel on a structural model with a large initial mean
# --------------------------------------------------------------------------------------


def _llt_seasonal_case(num_steps: int = 200):
    d = 13
    m0 = np.zeros(d)
    m0[0], m0[1] = 1e4, 2.0
    m0[2:] = np.linspace(-5.0, 5.0, d - 2)
    system = llt_seasonal_system(
        sigma2_obs=1.0,
        sigma2_level=0.1,
        sigma2_slope=0.01,
        sigma2_seasonal=0.05,
        initial_mean=m0,
        initial_cov=np.diag(np.r_[100.0, 1.0, np.full(d - 2, 10.0)]),
    )
    rng = np.random.default_rng(13)
    y = simulate(rng, system, num_steps)
    y[[0, 1, 30, 31, 32, 100, num_steps - 1]] = np.nan
    y[rng.uniform(size=num_steps) < 0.05] = np.nan
    return system, y


def test_sequential_equals_parallel_llt_seasonal():
    system, y = _llt_seasonal_case()
    seq = run_filter(system, y, parallel=False)
    par = run_filter(system, y, parallel=True)
    np.testing.assert_allclose(par["log_likelihood"], seq["log_likelihood"], rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(par["log_likelihood"].sum(), seq["log_likelihood"].sum(), rtol=1e-10)
    for key in FILTER_FIELDS[1:]:
        np.testing.assert_allclose(
            par[key], seq[key], rtol=1e-7, atol=scaled_atol(seq[key], 1e-9), err_msg=key
        )
    fast = run_log_likelihood(system, y)
    np.testing.assert_allclose(fast, seq["log_likelihood"], rtol=1e-8, atol=1e-8)


# --------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------

# Long enough, and quickly settling, for log_likelihood's steady-state path to be used
# between the early gaps and the late ones.
GRAD_T = 256
GRAD_PERIOD = 4
GRAD_THETA = np.log(np.array([0.2, 1.0, 0.2, 0.5]))  # log σ² of obs, level, slope, seasonal


@functools.cache
def _grad_data() -> np.ndarray:
    system = _grad_system_numpy(GRAD_THETA)
    y = simulate(np.random.default_rng(4), system, GRAD_T)
    y[[0, 3, 5, 200, 201, GRAD_T - 1]] = np.nan
    return y


def test_gradient_model_settles_early():
    """Premise of the gradient tests: the covariance settles long before the late gaps."""
    assert steps_to_steady_state(_grad_system_numpy(GRAD_THETA)) < 60


def _grad_system_numpy(theta):
    d = GRAD_PERIOD + 1
    return llt_seasonal_system(
        sigma2_obs=float(np.exp(theta[0])),
        sigma2_level=float(np.exp(theta[1])),
        sigma2_slope=float(np.exp(theta[2])),
        sigma2_seasonal=float(np.exp(theta[3])),
        initial_mean=np.r_[20.0, 0.3, np.zeros(d - 2)],
        initial_cov=np.eye(d) * 5.0,
        period=GRAD_PERIOD,
    )


def _grad_ssm(theta, time_varying: bool) -> StateSpace:
    """LLT + seasonal(4) with variances exp(theta); `time_varying` gives r a time axis."""
    base = _grad_system_numpy(GRAD_THETA)
    d = base.state_dim
    variances = jnp.exp(theta)
    q = jnp.zeros((d, d)).at[0, 0].set(variances[1]).at[1, 1].set(variances[2])
    q = q.at[2, 2].set(variances[3])
    r = variances[0] * jnp.ones(GRAD_T) if time_varying else variances[0]
    return StateSpace(
        transition_matrix=jnp.asarray(base.transition_matrix),
        transition_cov=q,
        observation_matrix=jnp.asarray(base.observation_matrix),
        observation_offset=jnp.asarray(base.observation_offset),
        observation_var=r,
        initial_mean=jnp.asarray(base.initial_mean),
        initial_cov=jnp.asarray(base.initial_cov),
    )


def _total_log_likelihood(theta, y, form: str, time_varying: bool):
    ssm = _grad_ssm(theta, time_varying)
    if form == "log_likelihood":
        return jnp.sum(log_likelihood(ssm, y))
    return jnp.sum(kalman_filter(ssm, y, parallel=form == "parallel").log_likelihood)


@functools.cache
def _jitted_objective(form: str, time_varying: bool):
    """Jitted value_and_grad of the total log-likelihood in (theta, y); compiled once.

    The finite differences reuse it (ignoring the gradient) to avoid a second compile.
    """
    fun = functools.partial(_total_log_likelihood, form=form, time_varying=time_varying)
    return jax.jit(jax.value_and_grad(fun))


# The parallel form's gradient is slow to compile: check it on the constant layout only, and
# on the first PARALLEL_GRAD_T steps (the long series is there for log_likelihood's sake).
PARALLEL_GRAD_T = 64
GRAD_CASES = [
    ("sequential", False),
    ("sequential", True),
    # The longest compile of the suite; sequential == parallel is checked in the default run.
    pytest.param("parallel", False, marks=pytest.mark.slow),
    ("log_likelihood", False),  # steady-state path
    ("log_likelihood", True),  # exact path
]
GRAD_IDS = [
    "sequential-constant",
    "sequential-time_varying",
    "parallel-constant",
    "log_likelihood-constant",
    "log_likelihood-time_varying",
]


@pytest.mark.parametrize(("form", "time_varying"), GRAD_CASES, ids=GRAD_IDS)
def test_gradient_matches_finite_differences(form, time_varying):
    y = _grad_data()
    if form == "parallel":
        y = y[:PARALLEL_GRAD_T]
    assert np.isnan(y).any()
    y = jnp.asarray(y)
    value_and_grad = _jitted_objective(form, time_varying)
    value, grad = value_and_grad(jnp.asarray(GRAD_THETA), y)
    grad = np.asarray(grad)
    assert np.isfinite(value)
    assert np.all(np.isfinite(grad)), grad

    h = 1e-5
    fd = np.empty_like(grad)
    for i in range(grad.size):
        step = np.zeros_like(GRAD_THETA)
        step[i] = h
        plus = float(value_and_grad(jnp.asarray(GRAD_THETA + step), y)[0])
        minus = float(value_and_grad(jnp.asarray(GRAD_THETA - step), y)[0])
        fd[i] = (plus - minus) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-6 * np.abs(fd).max())


@pytest.mark.parametrize(("form", "time_varying"), GRAD_CASES, ids=GRAD_IDS)
def test_gradient_finite_with_all_steps_missing_but_one(form, time_varying):
    y = np.full(PARALLEL_GRAD_T if form == "parallel" else GRAD_T, np.nan)
    y[10] = 3.0
    value_and_grad = _jitted_objective(form, time_varying)
    value, grad = value_and_grad(jnp.asarray(GRAD_THETA), jnp.asarray(y))
    assert np.isfinite(value)
    assert np.all(np.isfinite(np.asarray(grad))), grad


# --------------------------------------------------------------------------------------
# jit and vmap
# --------------------------------------------------------------------------------------

BATCH_T = 17  # shares compiled shapes with the d=2, T=17 oracle tests
STEADY_T = 300  # shares compiled shapes with the long time-invariant oracle tests (d = 2)


@functools.cache
def _batch_case(time_invariant: bool, num_steps: int = BATCH_T):
    rng = np.random.default_rng(7)
    system = random_system(rng, 2, num_steps, time_invariant=time_invariant)
    ys = [simulate(rng, system, num_steps) for _ in range(3)]
    ys[1] = apply_missing(rng, ys[1], "some")
    ys[2][[num_steps - 5, num_steps - 4, num_steps - 1]] = np.nan  # late gaps only
    return system, np.stack(ys)


def _assert_tree_close(actual, expected, rtol=1e-10):
    for a, e in zip(
        jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(expected), strict=True
    ):
        np.testing.assert_allclose(
            np.asarray(a), np.asarray(e), rtol=rtol, atol=scaled_atol(np.asarray(e), rtol)
        )


# Each vmapped function is a fresh compile, so spread them over the two layouts: the
# constant layout exercises the steady-state path of log_likelihood under vmap (one series
# has late gaps, which changes that path); the parallel form is checked on the other.
# A long constant model puts log_likelihood's steady-state blocks under vmap, with series
# that stay steady, leave it for late gaps, or never settle in the first blocks.
VMAP_CASES = {
    "constant": (True, BATCH_T, ("sequential", "log_likelihood", "smoother")),
    "time_varying": (False, BATCH_T, ("sequential", "parallel", "log_likelihood")),
    "constant_long": (True, STEADY_T, ("sequential", "log_likelihood")),
}


@pytest.mark.parametrize("layout", list(VMAP_CASES))
def test_vmap_over_series_matches_loop(layout):
    time_invariant, num_steps, names = VMAP_CASES[layout]
    system, ys = _batch_case(time_invariant, num_steps)
    if num_steps == STEADY_T:
        assert steps_to_steady_state(system) < 40
    ssm = make_state_space(system)
    batch = jnp.asarray(ys)
    functions = {
        "sequential": lambda y: kalman_filter(ssm, y),
        "parallel": lambda y: kalman_filter(ssm, y, parallel=True),
        "log_likelihood": lambda y: log_likelihood(ssm, y),
        "smoother": lambda y: kalman_smoother(ssm, y),
    }
    for name in names:
        out = jax.jit(jax.vmap(functions[name]))(batch)
        for i, y in enumerate(ys):
            if name == "log_likelihood":
                assert out.shape == (3, num_steps)
                _assert_tree_close(out[i], run_log_likelihood(system, y), rtol=1e-9)
            elif name == "smoother":
                loop = run_smoother(system, y)
                _assert_tree_close(out.smoothed_mean[i], loop["smoothed_mean"])
                _assert_tree_close(out.smoothed_cov[i], loop["smoothed_cov"])
            else:
                loop = run_filter(system, y, parallel=name == "parallel")
                for key in FILTER_FIELDS:
                    assert getattr(out, key).shape[0] == 3
                    _assert_tree_close(getattr(out, key)[i], loop[key], rtol=1e-10)


def test_jit_with_state_space_argument_and_eager_calls():
    """StateSpace passes through jit as a pytree; eager calls agree with jitted ones."""
    system, ys = _batch_case(False)
    ssm = make_state_space(system)
    y = jnp.asarray(ys[1])
    reference = run_filter(system, ys[1])

    jitted = jax.jit(kalman_filter, static_argnames="parallel")(ssm, y)
    eager = kalman_filter(ssm, y)
    assert type(jitted) is type(eager)
    for key in FILTER_FIELDS:
        _assert_tree_close(getattr(jitted, key), reference[key], rtol=1e-12)
        _assert_tree_close(getattr(eager, key), reference[key], rtol=1e-12)

    _assert_tree_close(log_likelihood(ssm, y), reference["log_likelihood"], rtol=1e-12)
    smoothed = kalman_smoother(ssm, y)
    expected = run_smoother(system, ys[1])
    _assert_tree_close(smoothed.smoothed_mean, expected["smoothed_mean"], rtol=1e-12)
    _assert_tree_close(smoothed.smoothed_cov, expected["smoothed_cov"], rtol=1e-12)


# --------------------------------------------------------------------------------------
# Simulation smoother
# --------------------------------------------------------------------------------------

SIM_T = 20
NUM_DRAWS = 4000


_sample_jit = jax.jit(sample_states, static_argnames="num_samples")


@functools.cache
def _sampling_case():
    rng = np.random.default_rng(2024)
    system = random_system(rng, 2, SIM_T)
    y = apply_missing(rng, simulate(rng, system, SIM_T), "some")
    y[0] = np.nan
    return system, y, np.asarray(_draws(system, y, 0))


def _draws(system, y, seed: int):
    ssm = make_state_space(system)
    return _sample_jit(jax.random.key(seed), ssm, jnp.asarray(y), num_samples=NUM_DRAWS)


def test_sample_states_shape_and_reproducibility():
    system, y, draws = _sampling_case()
    assert draws.shape == (NUM_DRAWS, SIM_T, 2)
    assert draws.dtype == np.float64
    assert np.all(np.isfinite(draws))

    np.testing.assert_array_equal(np.asarray(_draws(system, y, 0)), draws)
    other = np.asarray(_draws(system, y, 1))
    assert not np.allclose(other, draws)
    # draws within one call are distinct
    assert not np.allclose(draws[0], draws[1])


def test_sample_states_reuses_a_given_filter_pass():
    system, y, _ = _sampling_case()
    ssm, y = make_state_space(system), jnp.asarray(y)
    key = jax.random.key(3)
    fresh = sample_states(key, ssm, y, num_samples=5)
    reused = sample_states(key, ssm, y, num_samples=5, filtered=kalman_filter(ssm, y))
    np.testing.assert_array_equal(np.asarray(reused), np.asarray(fresh))


def test_sample_states_moments_match_smoother():
    system, y, draws = _sampling_case()
    n = draws.shape[0]
    sm = run_smoother(system, y)
    mean, cov = sm["smoothed_mean"], sm["smoothed_cov"]
    var = np.diagonal(cov, axis1=-2, axis2=-1)
    assert np.all(var > 0)

    sample_mean = draws.mean(axis=0)
    z = (sample_mean - mean) / np.sqrt(var / n)
    assert np.abs(z).max() < 4.5, np.abs(z).max()

    sample_var = draws.var(axis=0, ddof=1)
    ratio = sample_var / var
    assert np.abs(ratio - 1).max() < 0.1, ratio


def test_sample_states_joint_covariance_matches_dense_oracle():
    """Draws have the right covariance across time, not only the right marginals."""
    system, y, draws = _sampling_case()
    n = draws.shape[0]
    _, joint = DenseOracle(system, SIM_T).condition_states(y, ~np.isnan(y))
    flat = draws.reshape(n, -1)
    sample_cov = np.cov(flat, rowvar=False)
    sd = np.sqrt(np.diag(joint))
    # standard error of a sample covariance entry under Gaussianity
    se = np.sqrt((np.outer(sd**2, sd**2) + joint**2) / n)
    z = np.abs(sample_cov - joint) / se
    assert z.max() < 5.5, z.max()


# --------------------------------------------------------------------------------------
# float32
# --------------------------------------------------------------------------------------


def _float32_case(model: str):
    if model == "nile":
        return nile_data(), nile_system()
    y = co2_monthly()
    assert np.isnan(y).any()
    return y, co2_system(y[0])


FLOAT32_CASES = [
    pytest.param(model, form, id=f"{model}-{form}", marks=marks)
    for model in ("nile", "co2")
    for form in ("sequential", "parallel", "log_likelihood")
    # the float32 parallel form at d = 13, T = 526 is a compile of its own (~5 s)
    for marks in [[pytest.mark.slow] if (model, form) == ("co2", "parallel") else []]
]


@pytest.mark.parametrize(("model", "form"), FLOAT32_CASES)
def test_float32_matches_float64(model, form):
    y, system = _float32_case(model)
    reference = run_filter(system, y)["log_likelihood"].sum()
    if form == "log_likelihood":
        ll = run_log_likelihood(system, y, dtype=np.float32)
    else:
        out = run_filter(system, y, parallel=form == "parallel", dtype=np.float32)
        for key in FILTER_FIELDS:
            assert out[key].dtype == np.float32, (key, out[key].dtype)
        ll = out["log_likelihood"]
    assert ll.dtype == np.float32
    total = ll.sum(dtype=np.float64)
    assert np.isfinite(total)
    np.testing.assert_allclose(total, reference, rtol=1e-3)


def test_float32_inputs_give_float32_smoother_and_draws():
    y, system = nile_data(), nile_system()
    sm = run_smoother(system, y, dtype=np.float32)
    assert sm["smoothed_mean"].dtype == np.float32
    assert sm["smoothed_cov"].dtype == np.float32
    ref = run_smoother(system, y)
    np.testing.assert_allclose(sm["smoothed_mean"], ref["smoothed_mean"], rtol=1e-3)
    draws = _sample_jit(
        jax.random.key(0),
        make_state_space(system, np.float32),
        jnp.asarray(y, dtype=jnp.float32),
        num_samples=3,
    )
    assert draws.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(draws)))
