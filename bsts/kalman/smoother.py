r"""State smoothing and the Durbin–Koopman simulation smoother.

Smoothing uses the backward recursion of Durbin & Koopman (2012, §4.4), which needs no
matrix inverse (only the scalar $S_t^{-1}$), so singular predicted covariances, such as a
rank-deficient $P_0$ with a singular $Q$, are handled exactly. With the filter's
$v_t, S_t$, the prediction gain $\tilde K_t = F_t P_t^- H_t^\top / S_t$ and
$L_t = F_t - \tilde K_t H_t$, starting from $r = 0$, $N = 0$ after the last step:

$$
r_{t-1} = H_t^\top v_t / S_t + L_t^\top r_t, \qquad
N_{t-1} = H_t^\top H_t / S_t + L_t^\top N_t L_t,
$$
$$
\hat x_t = m_t^- + P_t^- r_{t-1}, \qquad V_t = P_t^- - P_t^- N_{t-1} P_t^- ;
$$

a missing step has $r_{t-1} = F_t^\top r_t$ and $N_{t-1} = F_t^\top N_t F_t$.

The simulation smoother (Durbin & Koopman, 2002) draws $x \sim p(x \mid y)$ as

$$
\tilde x = \hat x(y) + x^+ - \hat x(y^+),
$$

where $(x^+, y^+)$ is simulated from the model. The gains do not depend on the data, so one
covariance pass serves every draw and each draw costs two vector recursions. The
simulation uses the zero-mean version of the model (no $m_0$, no $d_t$): the difference
$x^+ - \hat x(y^+)$ is unchanged by those shifts and avoids cancellation when the means
are large.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from bsts.kalman.sequential import sequential_filter
from bsts.kalman.state_space import StateSpace
from bsts.kalman.steps import FilterResult, matmul, matvec, prepare, symmetrize

__all__ = ["SmootherResult", "kalman_smoother", "sample_states", "simulate", "smoothed_means"]


class SmootherResult(NamedTuple):
    r"""Output of `kalman_smoother`.

    Attributes:
        smoothed_mean: $E[x_t \mid y_{0:T-1}]$.
        smoothed_cov: $\mathrm{Cov}[x_t \mid y_{0:T-1}]$.
        log_likelihood: the filter's per-step log-likelihood, for convenience.
    """

    smoothed_mean: Float[Array, "T d"]
    smoothed_cov: Float[Array, "T d d"]
    log_likelihood: Float[Array, " T"]


class _Gains(NamedTuple):
    """Data-independent quantities of one covariance pass, per step."""

    predicted_cov: Float[Array, "T d d"]
    innovation_var: Float[Array, " T"]
    prediction_gain: Float[Array, "T d"]  # F P^- H^T / S, zero where missing
    residual_transition: Float[Array, "T d d"]  # L = F - (prediction gain) H


def _gains(ssm: StateSpace, filtered: FilterResult, observed) -> _Gains:
    T = observed.shape[0]
    d = ssm.state_dim
    F = jnp.broadcast_to(ssm.transition_matrix, (T, d, d))
    H = jnp.broadcast_to(ssm.observation_matrix, (T, d))
    r = jnp.broadcast_to(ssm.observation_var, (T,))
    P = filtered.predicted_cov
    S = jnp.einsum("ti,tij,tj->t", H, P, H) + r
    gain = jnp.where(observed[:, None], jnp.einsum("tij,tjk,tk->ti", F, P, H) / S[:, None], 0.0)
    L = F - gain[:, :, None] * H[:, None, :]
    return _Gains(P, S, gain, L)


def _backward_means(gains: _Gains, H, innovations, observed):
    r"""The vector recursion for $r_{t-1}$; returns $\hat x_t - m_t^-$ per step."""

    def step(r_next, inputs):
        P, S, L, H_t, v, o = inputs
        r = matvec(L.T, r_next) + jnp.where(o, H_t * (v / S), 0.0)
        return r, matvec(P, r)

    T = innovations.shape[0]
    H = jnp.broadcast_to(H, (T, H.shape[-1]))
    _, corrections = jax.lax.scan(
        step,
        jnp.zeros(H.shape[-1], innovations.dtype),
        (
            gains.predicted_cov,
            gains.innovation_var,
            gains.residual_transition,
            H,
            innovations,
            observed,
        ),
        reverse=True,
    )
    return corrections


def kalman_smoother(ssm: StateSpace, y: Float[Array, " T"]) -> SmootherResult:
    """Smoothed state moments given the whole series.

    Args:
        ssm: the state-space model.
        y: observations, shape `(T,)`; NaN marks a missing step.

    Returns:
        Smoothed means and covariances of every state, and the filter's log-likelihood.

    Raises:
        ValueError: `y` is not 1-D or its length disagrees with the model.
    """
    ssm, y, observed = prepare(ssm, y)
    filtered = sequential_filter(ssm, y, observed)
    gains = _gains(ssm, filtered, observed)
    H = jnp.broadcast_to(ssm.observation_matrix, (y.shape[0], ssm.state_dim))
    innovations = y - jnp.einsum("ti,ti->t", H, filtered.predicted_mean) - ssm.observation_offset

    def step(N_next, inputs):
        P, S, L, H_t, o = inputs
        N = matmul(matmul(L.T, N_next), L) + jnp.where(o, jnp.outer(H_t, H_t) / S, 0.0)
        return N, symmetrize(P - matmul(matmul(P, N), P))

    _, covs = jax.lax.scan(
        step,
        jnp.zeros((ssm.state_dim, ssm.state_dim), y.dtype),
        (gains.predicted_cov, gains.innovation_var, gains.residual_transition, H, observed),
        reverse=True,
    )
    means = filtered.predicted_mean + _backward_means(gains, H, innovations, observed)
    return SmootherResult(means, covs, filtered.log_likelihood)


def smoothed_means(ssm: StateSpace, y: Float[Array, " T"]) -> Float[Array, "T d"]:
    r"""$E[x_t \mid y_{0:T-1}]$ alone: `kalman_smoother` without the covariance recursion.

    Args:
        ssm: the state-space model.
        y: observations, shape `(T,)`; NaN marks a missing step.

    Returns:
        The smoothed means, `(T, d)`.
    """
    ssm, y, observed = prepare(ssm, y)
    filtered = sequential_filter(ssm, y, observed)
    gains = _gains(ssm, filtered, observed)
    H = jnp.broadcast_to(ssm.observation_matrix, (y.shape[0], ssm.state_dim))
    innovations = y - jnp.einsum("ti,ti->t", H, filtered.predicted_mean) - ssm.observation_offset
    return filtered.predicted_mean + _backward_means(gains, H, innovations, observed)


def _psd_sqrt(cov: Float[Array, "... d d"]) -> Float[Array, "... d d"]:
    """A factor B with B Bᵀ = cov for a possibly singular PSD matrix (via eigh)."""
    values, vectors = jnp.linalg.eigh(symmetrize(cov))
    return vectors * jnp.sqrt(jnp.clip(values, 0.0))[..., None, :]


def _mean_smoother(ssm: StateSpace, y, observed, gains: _Gains, initial_mean, offset):
    """Smoothed means for data `y`, reusing the covariance pass in `gains`."""
    T = y.shape[0]
    F = jnp.broadcast_to(ssm.transition_matrix, (T, ssm.state_dim, ssm.state_dim))
    H = jnp.broadcast_to(ssm.observation_matrix, (T, ssm.state_dim))

    def forward(predicted, inputs):
        y_t, d_t, F_t, H_t, gain = inputs
        v = y_t - jnp.sum(H_t * predicted) - d_t
        return matvec(F_t, predicted) + gain * v, (predicted, v)

    offsets = jnp.broadcast_to(offset, (T,))
    _, (predicted, innovations) = jax.lax.scan(
        forward, initial_mean, (y, offsets, F, H, gains.prediction_gain)
    )
    return predicted + _backward_means(gains, H, innovations, observed)


def simulate(
    key: PRNGKeyArray, ssm: StateSpace, num_timesteps: int
) -> tuple[Float[Array, "T d"], Float[Array, " T"]]:
    """Draw one path of states and observations from the model (forward simulation).

    Args:
        key: a JAX PRNG key.
        ssm: the model; its time-varying fields must have `num_timesteps` steps.
        num_timesteps: T.

    Returns:
        `(states, y)` with shapes `(T, d)` and `(T,)`.
    """
    T = num_timesteps
    dim = ssm.state_dim
    dtype = ssm.initial_mean.dtype
    # One draw for the initial state, the shocks and the noise: XLA inlines the whole
    # threefry hash at every call of `jax.random.normal`, about 0.4 s of compilation each
    # on the 2-core CPU (a forecast program compiled in 1.7 s with three calls, 0.5 s
    # with one).
    normals = jax.random.normal(key, ((T + 1) * dim + T,), dtype)
    first, shocks, unit_noise = jnp.split(normals, [dim, (T + 1) * dim])
    shocks = shocks.reshape(T, dim)
    # One batched eigh for both factors: two independent LAPACK calls under vmap have hung
    # XLA's CPU runtime (jax 0.10.2).
    covs = jnp.concatenate([ssm.initial_cov[None], jnp.reshape(ssm.transition_cov, (-1, dim, dim))])
    roots = _psd_sqrt(covs)
    x0 = ssm.initial_mean + roots[0] @ first

    def step(x, inputs):
        z, F, root = inputs
        return matvec(F, x) + matvec(root, z), x

    F = jnp.broadcast_to(ssm.transition_matrix, (T, dim, dim))
    roots = jnp.broadcast_to(roots[1:] if roots.shape[0] > 2 else roots[1], (T, dim, dim))
    _, states = jax.lax.scan(step, x0, (shocks, F, roots))
    H = jnp.broadcast_to(ssm.observation_matrix, (T, dim))
    noise = jnp.sqrt(ssm.observation_var) * unit_noise
    return states, jnp.einsum("ti,ti->t", states, H) + ssm.observation_offset + noise


def _simulate_zero_mean(key, ssm: StateSpace, T: int):
    """One path $(x^+, y^+)$ of the model with $m_0 = 0$ and $d_t = 0$."""
    centred = ssm.replace(
        initial_mean=jnp.zeros_like(ssm.initial_mean),
        observation_offset=jnp.zeros((), ssm.initial_mean.dtype),
    )
    return simulate(key, centred, T)


def sample_states(
    key: PRNGKeyArray,
    ssm: StateSpace,
    y: Float[Array, " T"],
    num_samples: int = 100,
    filtered: FilterResult | None = None,
) -> Float[Array, "num_samples T d"]:
    r"""Draw state paths from $p(x_{0:T-1} \mid y)$ with the simulation smoother.

    Args:
        key: a JAX PRNG key.
        ssm: the state-space model.
        y: observations, shape `(T,)`; NaN marks a missing step.
        num_samples: number of joint draws.
        filtered: `kalman_filter(ssm, y)` when the caller has already run it (it is the
            smoother's forward pass, so passing it saves a second one).

    Returns:
        Draws of shape `(num_samples, T, d)`.

    Raises:
        ValueError: `y` is not 1-D, its length disagrees with the model, or `num_samples`
            is not a positive integer.
    """
    if not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be a positive integer, got {num_samples!r}")
    ssm, y, observed = prepare(ssm, y)
    T = y.shape[0]
    if filtered is None:
        filtered = sequential_filter(ssm, y, observed)
    gains = _gains(ssm, filtered, observed)
    smoothed = _mean_smoother(ssm, y, observed, gains, ssm.initial_mean, ssm.observation_offset)
    zero_mean = jnp.zeros_like(ssm.initial_mean)

    def one_draw(draw_key):
        states, simulated_y = _simulate_zero_mean(draw_key, ssm, T)
        simulated_smoothed = _mean_smoother(ssm, simulated_y, observed, gains, zero_mean, 0.0)
        return smoothed + states - simulated_smoothed

    return jax.vmap(one_draw)(jax.random.split(key, num_samples))
