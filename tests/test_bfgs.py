"""The compact BFGS minimiser (`bsts.bfgs`) against known minima."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bsts.bfgs import minimize_bfgs


def test_quadratic_reaches_the_linear_solve():
    A = jnp.array([[3.0, 1.0, 0.2], [1.0, 2.0, 0.1], [0.2, 0.1, 1.5]])
    b = jnp.array([1.0, -1.0, 0.5])
    result = jax.jit(lambda x: minimize_bfgs(lambda x: 0.5 * x @ A @ x - b @ x, x))(jnp.zeros(3))
    np.testing.assert_allclose(result.x, np.linalg.solve(np.asarray(A), np.asarray(b)), atol=1e-5)
    assert bool(result.converged)
    assert float(result.initial_fun) == 0.0
    np.testing.assert_allclose(result.gradient, A @ result.x - b, atol=1e-12)  # at x


def test_rosenbrock_from_the_classic_start():
    def rosenbrock(x):
        return jnp.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)

    result = jax.jit(lambda x: minimize_bfgs(rosenbrock, x))(jnp.array([-1.2, 1.0, 0.5, -0.3]))
    np.testing.assert_allclose(result.x, np.ones(4), atol=1e-3)
    assert int(result.evaluations) < 500


def test_non_finite_start_stops_at_once():
    result = minimize_bfgs(lambda x: jnp.sum(x**2) + jnp.nan, jnp.zeros(2))
    assert int(result.evaluations) == 1
    assert not bool(result.converged)
    np.testing.assert_array_equal(result.x, np.zeros(2))


def test_a_non_finite_region_is_stepped_back_from():
    # A log barrier: trial steps that overshoot into x <= 0 give NaN and are shrunk.
    def barrier(x):
        return jnp.sum(x - 3.0 * jnp.log(x))

    result = minimize_bfgs(barrier, jnp.array([0.5]))
    np.testing.assert_allclose(result.x, [3.0], rtol=1e-4)


def test_evaluation_budget_is_respected():
    result = minimize_bfgs(lambda x: jnp.sum((x - 1.0) ** 4), jnp.zeros(3), max_evaluations=5)
    assert int(result.evaluations) == 5
    assert not bool(result.converged)


@pytest.mark.parametrize("dim", [1, 5])
def test_the_objective_is_traced_once(dim):
    calls = []

    def objective(x):
        calls.append(1)
        return jnp.sum((x - 2.0) ** 2)

    jax.jit(lambda x: minimize_bfgs(objective, x)).lower(jnp.zeros(dim))
    assert len(calls) == 1


def test_float32_stops_at_round_off_without_a_backtracking_tail():
    # A log density of a few thousand nats: in float32 its gradient never reaches the
    # absolute tolerance, so the stop must come from the decrease falling to round-off,
    # not from two line searches shrinking the step to nothing.
    scales = jnp.array([1.0, 30.0, 0.2, 5.0], jnp.float32)
    centre = jnp.array([0.5, -1.0, 2.0, 0.1], jnp.float32)

    def objective(x):
        return 3000.0 + jnp.sum(scales * (x - centre) ** 2) + 0.1 * jnp.sum((x - centre) ** 4)

    result = jax.jit(lambda x: minimize_bfgs(objective, x))(jnp.zeros(4, jnp.float32))
    assert bool(result.converged)
    assert int(result.evaluations) < 30  # 45 when it searched down to 1e-8 steps
    # float32 resolves 3000 to 2.4e-4: the minimum is known to a few units of that.
    assert float(result.fun) - 3000.0 < 0.01
    np.testing.assert_allclose(result.x, centre, atol=0.15)
