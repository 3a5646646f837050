r"""Non-Gaussian observations of a linear-Gaussian state: the Laplace approximation.

The states follow the linear-Gaussian dynamics of a `StateSpace`; each observation depends
on the state only through the *signal* $\theta_t = H_t x_t + d_t$, with any log density
$\ell_t(\theta_t) = \log p(y_t \mid \theta_t)$ that is concave in $\theta_t$ (Poisson and
Bernoulli with their canonical links, the negative binomial with a log link). The states
are integrated out around their posterior mode (Durbin & Koopman, 2012, §10.6):

**Mode.** Linearising $\ell_t$ at a guess $\tilde\theta_t$ gives a Gaussian pseudo-
observation with the same first two derivatives,

$$
\tilde y_t = \tilde\theta_t + \frac{\ell_t'(\tilde\theta_t)}{-\ell_t''(\tilde\theta_t)},
\qquad A_t = \frac{1}{-\ell_t''(\tilde\theta_t)},
$$

and the Kalman smoother of the model with observations $\tilde y_t$ and noise variances
$A_t$ returns the next guess. This is Newton's method for the mode of $p(\theta \mid y)$,
exact because the prior is Gaussian; it stops when the signal moves less than
$\sqrt{\epsilon}$ of the float type.

**Likelihood.** With the linearisation at $\tilde\theta$, the approximating linear model
$g$ satisfies

$$
\log g(\tilde y) + \sum_t \big[\ell_t(\tilde\theta_t) - \log \mathcal N(\tilde y_t;
\tilde\theta_t, A_t)\big] = \log \int \exp\big(q_{\tilde\theta}(\theta)\big)\,
p(\theta)\, d\theta ,
$$

where $q_{\tilde\theta}$ is the second-order Taylor expansion of $\sum_t \ell_t$ at
$\tilde\theta$. At the mode $\hat\theta$ this is the Laplace approximation of
$\log p(y)$, and $\log g(\tilde y)$ is one exact Kalman filter.

**Gradient.** The mode is found without a gradient (a `while_loop` on stopped inputs); one
more Newton step from it is differentiated. At a root, Newton's map has zero derivative in
its input, so the derivative of that one step is the implicit-function derivative of the
mode: the gradient is the exact gradient of the Laplace approximation, including the
change of the curvature with the mode ($\tfrac12 \ell_t''' V_t$ per step), at the cost of
one smoother pass and one filter pass under autodiff.

**Importance sampling.** With $M$ draws $\theta^{(i)}$ from $g(\theta \mid \tilde y)$ (the
simulation smoother, half of them antithetic; see `_state_draws` for their gradient),

$$
\log p(y) \approx \log g(\tilde y) + \log \frac1M \sum_i \exp \sum_t \big[
\ell_t(\theta^{(i)}_t) - \log \mathcal N(\tilde y_t; \theta^{(i)}_t, A_t)\big],
$$

which converges to the exact marginal likelihood as $M$ grows (Durbin & Koopman, 1997).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, PRNGKeyArray

from bsts.kalman.adjoint import exact_total_log_likelihood
from bsts.kalman.sequential import sequential_filter
from bsts.kalman.smoother import sample_states, smoothed_means
from bsts.kalman.state_space import StateSpace
from bsts.kalman.steps import LOG_2PI, prepare

__all__ = [
    "LaplaceApproximation",
    "LogDensity",
    "importance_resampled_states",
    "laplace_approximation",
    "laplace_log_likelihood",
    "laplace_one_step_log_likelihood",
    "signal_predictive_nodes",
    "step_axes",
]

LogDensity = Callable[[Array, Array, object], Array]
r"""`log_density(y_t, theta_t, params)`: $\log p(y_t \mid \theta_t)$ for scalars, concave in
theta; `params` is a pytree of the family's parameters (differentiated like the model's).
A leaf of `params` that is a scalar is shared by every step; one of shape `(T,)` varies by
step (a binomial's trials) and reaches `log_density` as its step's entry."""

# Curvature floor: a step whose log density is flat in the signal (it cannot be for the
# families above, but float round-off can make it so) gets a huge, finite noise variance.
_MIN_CURVATURE = 1e-12


class LaplaceApproximation(NamedTuple):
    r"""The linear-Gaussian model that approximates the non-Gaussian one at its mode.

    Attributes:
        state_space: the model with the pseudo-observations' noise variances $A_t$.
        pseudo_observations: $\tilde y_t$, NaN where $y_t$ is missing.
        signal: the posterior mode of the signal $\hat\theta_t$ (every step).
        iterations: Newton steps taken to find the mode.
        converged: whether the last step moved the signal less than the tolerance.
    """

    state_space: StateSpace
    pseudo_observations: Float[Array, " T"]
    signal: Float[Array, " T"]
    iterations: Array
    converged: Array


def laplace_approximation(
    ssm: StateSpace,
    y: Float[Array, " T"],
    log_density: LogDensity,
    initial_signal: Float[Array, " T"],
    params=(),
    max_iterations: int = 50,
) -> LaplaceApproximation:
    r"""The Gaussian approximation at the posterior mode of the signal.

    Args:
        ssm: the state's model; its `observation_var` is ignored.
        y: observations, shape `(T,)`; NaN marks a missing step.
        log_density: $\log p(y_t \mid \theta_t)$ of one step, concave in $\theta_t$.
        initial_signal: the first guess of the signal, `(T,)` (any finite values where
            `y` is missing).
        params: the family's parameters, passed to `log_density`.
        max_iterations: the most Newton steps.

    Returns:
        The approximation; differentiable in `ssm` (one Newton step from the stopped
        mode, see the module's docstring).
    """
    ssm, y_filled, observed = prepare(ssm, y)
    signal, iterations, converged = _mode(
        ssm, y_filled, observed, log_density, params, initial_signal, max_iterations
    )
    pseudo, var = _linearise(y_filled, observed, log_density, params, signal)
    approx = ssm.replace(observation_var=var)
    return LaplaceApproximation(
        approx, jnp.where(observed, pseudo, jnp.nan), signal, iterations, converged
    )


def laplace_log_likelihood(
    ssm: StateSpace,
    y: Float[Array, " T"],
    log_density: LogDensity,
    initial_signal: Float[Array, " T"],
    params=(),
    *,
    importance_samples: int = 0,
    key: PRNGKeyArray | None = None,
    max_iterations: int = 50,
) -> Float[Array, ""]:
    r"""The Laplace approximation of $\log p(y)$, or its importance-sampling correction.

    Args:
        ssm: the state's model; its `observation_var` is ignored.
        y: observations, shape `(T,)`; NaN marks a missing step.
        log_density: $\log p(y_t \mid \theta_t)$ of one step, concave in $\theta_t$.
        initial_signal: the first guess of the signal, `(T,)`.
        params: the family's parameters, passed to `log_density`.
        importance_samples: 0 for the Laplace approximation; else an even number of
            draws for the importance-sampling estimate (common random numbers: the same
            `key` gives a smooth function of the model).
        key: the PRNG key of the importance draws (needed when `importance_samples` > 0).
        max_iterations: the most Newton steps.

    Returns:
        A scalar; `-inf` when the mode search failed to converge.

    Raises:
        ValueError: `importance_samples` negative or odd, or > 0 without a key.
    """
    if importance_samples < 0 or importance_samples % 2:
        raise ValueError(f"importance_samples must be 0 or even, got {importance_samples!r}")
    if importance_samples and key is None:
        raise ValueError("importance sampling needs a PRNG key: pass key=...")
    laplace = laplace_approximation(ssm, y, log_density, initial_signal, params, max_iterations)
    approx, y_filled, observed = prepare(laplace.state_space, y)
    pseudo = jnp.where(observed, laplace.pseudo_observations, 0.0)
    var, signal = approx.observation_var, laplace.signal
    log_g = exact_total_log_likelihood(approx, pseudo, observed)
    if importance_samples:
        draws = _signal_draws(key, approx, pseudo, observed, importance_samples)
        log_w = jax.vmap(
            lambda s: _log_ratio(y_filled, observed, log_density, params, pseudo, var, s)
        )(draws)
        correction = jax.nn.logsumexp(log_w) - jnp.log(importance_samples)
    else:
        correction = _log_ratio(y_filled, observed, log_density, params, pseudo, var, signal)
    total = log_g + correction
    return jnp.where(laplace.converged & jnp.isfinite(total), total, -jnp.inf)


def laplace_one_step_log_likelihood(
    approx: LaplaceApproximation,
    y: Float[Array, " T"],
    log_density: LogDensity,
    params=(),
    nodes: int = 32,
) -> Float[Array, " T"]:
    r"""Approximate one-step-ahead $\log p(y_t \mid y_{<t})$ per step, 0 where missing.

    The filter of the approximating model gives the predictive $\mathcal N(\mu_t, v_t)$ of
    the signal given $\tilde y_{<t}$; $p(y_t \mid \theta_t)$ is integrated against it by
    Gauss–Hermite quadrature with `nodes` points.
    """
    _, y_filled, observed = prepare(approx.state_space, y)
    theta, log_weights = signal_predictive_nodes(approx, y, nodes)
    per_node = jax.vmap(jax.vmap(log_density, in_axes=(None, 0, None)), in_axes=_per_step(params))(
        y_filled, theta, params
    )
    log_p = jax.nn.logsumexp(per_node + log_weights[None, :], axis=1)
    return jnp.where(observed, log_p, 0.0)


def signal_predictive_nodes(
    approx: LaplaceApproximation, y: Float[Array, " T"], nodes: int = 32
) -> tuple[Float[Array, "T n"], Float[Array, " n"]]:
    r"""Gauss–Hermite nodes of each step's one-step predictive of the signal.

    The filter of the approximating model gives $\theta_t \mid \tilde y_{<t} \sim
    \mathcal N(\mu_t, v_t)$; an expectation under it is the sum over the nodes of
    `exp(log_weights) * f(theta[t])`.

    Returns:
        `(theta, log_weights)`: `(T, nodes)` signal values and `(nodes,)` log weights.
    """
    ssm, _, observed = prepare(approx.state_space, y)
    pseudo = jnp.where(observed, approx.pseudo_observations, 0.0)
    filtered = sequential_filter(ssm, pseudo, observed)
    T = pseudo.shape[0]
    H = jnp.broadcast_to(ssm.observation_matrix, (T, ssm.state_dim))
    mean = jnp.einsum("ti,ti->t", H, filtered.predicted_mean) + ssm.observation_offset
    var = jnp.einsum("ti,tij,tj->t", H, filtered.predicted_cov, H)
    points, weights = np.polynomial.hermite.hermgauss(nodes)
    theta = mean[:, None] + jnp.sqrt(2.0 * jnp.clip(var, 0.0))[:, None] * points[None, :]
    return theta, jnp.asarray(np.log(weights / np.sqrt(np.pi)), theta.dtype)


def importance_resampled_states(
    key: PRNGKeyArray,
    approx: LaplaceApproximation,
    y: Float[Array, " T"],
    log_density: LogDensity,
    params=(),
    count: int = 64,
) -> Float[Array, "T d"]:
    r"""One path of the states from $p(x \mid y)$, by importance resampling.

    `count` paths are drawn from the approximating posterior $g(x \mid \tilde y)$ (the
    simulation smoother, half of them antithetic) and one is picked with probability
    proportional to its weight
    $\prod_t p(y_t \mid \theta_t) / \mathcal N(\tilde y_t; \theta_t, A_t)$: as `count`
    grows, the path's law tends to the exact posterior of the states.

    Args:
        key: a JAX PRNG key.
        approx: the Laplace approximation (`laplace_approximation`).
        y: the observations, NaN where missing.
        log_density: as for `laplace_approximation`.
        params: the family's parameters.
        count: an even number of candidate paths.

    Returns:
        The chosen path, `(T, d)`.
    """
    ssm, y_filled, observed = prepare(approx.state_space, y)
    pseudo = jnp.where(observed, approx.pseudo_observations, 0.0)
    key_paths, key_pick = jax.random.split(key)
    paths = _state_draws(key_paths, ssm, approx.pseudo_observations, count)
    T = y_filled.shape[0]
    H = jnp.broadcast_to(ssm.observation_matrix, (T, ssm.state_dim))
    signals = jnp.einsum("nti,ti->nt", paths, H) + jnp.broadcast_to(ssm.observation_offset, (T,))
    var = jnp.broadcast_to(ssm.observation_var, (T,))
    log_w = jax.vmap(lambda s: _log_ratio(y_filled, observed, log_density, params, pseudo, var, s))(
        signals
    )
    return paths[jax.random.categorical(key_pick, log_w)]


def step_axes(params):
    """`vmap` axes of a family's `params` over the steps: 0 for `(T,)` leaves, else None."""
    return jax.tree_util.tree_map(lambda v: 0 if jnp.ndim(v) else None, params)


def _per_step(params):
    """`vmap` axes over steps of `(y, signal, params)`."""
    return (0, 0, step_axes(params))


def _first_two_derivatives(log_density: LogDensity, params, y, signal):
    first = jax.grad(log_density, argnums=1)
    second = jax.grad(first, argnums=1)
    per_step = _per_step(params)
    return (
        jax.vmap(first, in_axes=per_step)(y, signal, params),
        jax.vmap(second, in_axes=per_step)(y, signal, params),
    )


def _linearise(y, observed: Bool[Array, " T"], log_density: LogDensity, params, signal):
    """Pseudo-observations and their noise variances at a signal (0 and 1 where missing)."""
    gradient, hessian = _first_two_derivatives(log_density, params, y, signal)
    curvature = jnp.maximum(-hessian, _MIN_CURVATURE)
    pseudo = jnp.where(observed, signal + gradient / curvature, 0.0)
    return pseudo, jnp.where(observed, 1.0 / curvature, 1.0)


def _newton_step(ssm: StateSpace, y, observed, log_density: LogDensity, params, signal):
    """The smoothed signal of the model linearised at `signal`."""
    pseudo, var = _linearise(y, observed, log_density, params, signal)
    approx = ssm.replace(observation_var=var)
    means = smoothed_means(approx, jnp.where(observed, pseudo, jnp.nan))
    T = y.shape[0]
    H = jnp.broadcast_to(ssm.observation_matrix, (T, ssm.state_dim))
    return jnp.einsum("ti,ti->t", H, means) + jnp.broadcast_to(ssm.observation_offset, (T,))


def _mode(
    ssm: StateSpace, y, observed, log_density: LogDensity, params, initial_signal, max_iterations
):
    """Newton's method without a gradient, then one differentiated step (see module)."""
    stopped, stopped_params = jax.tree_util.tree_map(jax.lax.stop_gradient, (ssm, params))
    tolerance = float(np.sqrt(np.finfo(y.dtype).eps))
    start = jnp.where(observed, jnp.asarray(initial_signal, y.dtype), 0.0)

    def moved(old, new):
        change = jnp.where(observed, jnp.abs(new - old) / (1.0 + jnp.abs(old)), 0.0)
        return jnp.max(change)

    def keep_going(carry):
        iteration, _, change = carry
        return (iteration < max_iterations) & (change > tolerance) & jnp.isfinite(change)

    def iterate(carry):
        iteration, signal, _ = carry
        new = _newton_step(stopped, y, observed, log_density, stopped_params, signal)
        return iteration + 1, new, moved(signal, new)

    iterations, signal, change = jax.lax.while_loop(
        keep_going, iterate, (0, jax.lax.stop_gradient(start), jnp.asarray(np.finfo(y.dtype).max))
    )
    converged = change <= tolerance
    return _newton_step(ssm, y, observed, log_density, params, signal), iterations, converged


def _log_ratio(y, observed, log_density: LogDensity, params, pseudo, var, signal):
    r"""$\sum_t [\ell_t(\theta_t) - \log \mathcal N(\tilde y_t; \theta_t, A_t)]$, observed steps."""
    exact = jax.vmap(log_density, in_axes=_per_step(params))(y, signal, params)
    gaussian = -0.5 * (LOG_2PI + jnp.log(var) + (pseudo - signal) ** 2 / var)
    return jnp.sum(jnp.where(observed, exact - gaussian, 0.0))


def _state_draws(key, approx: StateSpace, pseudo_observations, count: int):
    """`count` state paths from the approximating posterior, half of them antithetic.

    `pseudo_observations` has NaN at the missing steps. The paths are the smoothed mean,
    which is differentiated, plus deviations drawn with the model's parameters stopped:
    the simulation smoother factors the noise covariances by an eigendecomposition, whose
    gradient is not finite where eigenvalues repeat (a dummy seasonal's singular noise
    covariance has several zeros). The likelihood's value is unchanged; its gradient
    then omits how the spread of the draws moves with the parameters, which leaves NUTS
    exact (its leapfrog steps stay reversible and volume-preserving with any force) and
    changes only its efficiency.
    """
    stopped = jax.tree_util.tree_map(jax.lax.stop_gradient, (approx, pseudo_observations))
    states = sample_states(key, *stopped, num_samples=count // 2)
    deviations = states - smoothed_means(*stopped)
    mean = smoothed_means(approx, pseudo_observations)
    return jnp.concatenate([mean + deviations, mean - deviations])


def _signal_draws(key, approx: StateSpace, pseudo, observed, count: int):
    """`count` signal paths from the approximating posterior, half of them antithetic."""
    states = _state_draws(key, approx, jnp.where(observed, pseudo, jnp.nan), count)
    T = pseudo.shape[0]
    H = jnp.broadcast_to(approx.observation_matrix, (T, approx.state_dim))
    offset = jnp.broadcast_to(approx.observation_offset, (T,))
    return jnp.einsum("nti,ti->nt", states, H) + offset
