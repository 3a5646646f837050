r"""The Kalman filter: exact one-step-ahead moments and log-likelihood.

For each step, with predicted moments $m_t^- = E[x_t \mid y_{<t}]$ and $P_t^-$:

$$
v_t = y_t - H_t m_t^- - d_t, \quad S_t = H_t P_t^- H_t^\top + r_t, \quad
K_t = P_t^- H_t^\top / S_t,
$$
$$
m_t = m_t^- + K_t v_t, \quad
P_t = (I - K_t H_t) P_t^- (I - K_t H_t)^\top + r_t K_t K_t^\top, \quad
\ell_t = -\tfrac12 \left(\log 2\pi S_t + v_t^2 / S_t\right),
$$
$$
m_{t+1}^- = F_t m_t, \qquad P_{t+1}^- = F_t P_t F_t^\top + Q_t .
$$

The covariance update is the Joseph form, symmetrised after each step, so that it stays
positive semi-definite in float32. A missing $y_t$ (NaN) skips the update: $m_t = m_t^-$,
$P_t = P_t^-$, $\ell_t = 0$. NaNs are replaced before any arithmetic so that gradients stay
finite.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from bsts.kalman.state_space import StateSpace, check_observations

__all__ = ["LOG_2PI", "FilterResult", "power_rows", "predict", "prepare", "symmetrize", "update"]

LOG_2PI = math.log(2.0 * math.pi)


class FilterResult(NamedTuple):
    r"""Output of `kalman_filter`.

    Attributes:
        log_likelihood: $\log p(y_t \mid y_{<t})$ per step, 0 where $y_t$ is missing;
            its sum is the marginal log-likelihood.
        filtered_mean: $E[x_t \mid y_{\le t}]$.
        filtered_cov: $\mathrm{Cov}[x_t \mid y_{\le t}]$.
        predicted_mean: $E[x_t \mid y_{<t}]$; the first row is the initial mean.
        predicted_cov: $\mathrm{Cov}[x_t \mid y_{<t}]$.
    """

    log_likelihood: Float[Array, " T"]
    filtered_mean: Float[Array, "T d"]
    filtered_cov: Float[Array, "T d d"]
    predicted_mean: Float[Array, "T d"]
    predicted_cov: Float[Array, "T d d"]


# Up to this state size a matrix product inside a scan step is written as a broadcast
# product and a sum, which XLA fuses with its neighbours: on a CPU each unfused dot in a
# loop body is a call of its own whose dispatch, not arithmetic, is most of a small
# step's cost. The adjoint filter's forward pass ran 2.3x faster at d = 6, and at d = 20
# the dot was faster again; the gain is largest for the few-state models of counts
# (`benchmarks/counts.py`).
FUSED_PRODUCTS_UP_TO = 16


def matmul(a: Float[Array, "m k"], b: Float[Array, "k n"]) -> Float[Array, "m n"]:
    """`a @ b`, fused into its neighbours for small states (see `FUSED_PRODUCTS_UP_TO`)."""
    if a.shape[-1] > FUSED_PRODUCTS_UP_TO:
        return a @ b
    return jnp.sum(a[:, :, None] * b[None, :, :], axis=1)


def matvec(a: Float[Array, "m k"], v: Float[Array, " k"]) -> Float[Array, " m"]:
    """`a @ v`, fused into its neighbours for small states (see `FUSED_PRODUCTS_UP_TO`)."""
    if a.shape[-1] > FUSED_PRODUCTS_UP_TO:
        return a @ v
    return jnp.sum(a * v[None, :], axis=1)


def symmetrize(P: Float[Array, "... d d"]) -> Float[Array, "... d d"]:
    """Average a matrix with its transpose, removing round-off asymmetry."""
    return 0.5 * (P + jnp.swapaxes(P, -1, -2))


def power_rows(v: Float[Array, " d"], M: Float[Array, "d d"], count: int) -> Float[Array, "n d"]:
    r"""$v M^t$ for $t < n$ (`count`), by doubling: $\lceil\log_2 n\rceil$ matrix products."""
    rows, power = v[None], M
    while rows.shape[0] < count:
        rows = jnp.concatenate([rows, rows @ power])
        power = power @ power
    return rows[:count]


def prepare(ssm: StateSpace, y) -> tuple[StateSpace, Float[Array, " T"], Bool[Array, " T"]]:
    """Validate `y`, cast model and data to one float dtype, and split off the missing mask.

    Returns:
        `(ssm, y_filled, observed)`: `y_filled` has 0 where `y` was NaN, so that no NaN ever
        enters the arithmetic (a NaN would poison gradients even where it is masked).
    """
    y = check_observations(ssm, y)
    dtype = jnp.result_type(ssm.dtype, y.dtype)
    ssm = jax.tree_util.tree_map(lambda leaf: jnp.asarray(leaf, dtype), ssm)
    y = y.astype(dtype)
    observed = ~jnp.isnan(y)
    return ssm, jnp.where(observed, y, 0.0), observed


def update(m, P, y_t, observed_t, H, d, r):
    """Condition the predicted moments on one observation (Joseph form).

    Returns:
        `(filtered_mean, filtered_cov, log_likelihood, innovation_var)`.
    """
    s = matvec(P, H)
    S = jnp.sum(H * s) + r
    v = y_t - jnp.sum(H * m) - d
    K = s / S
    A = jnp.eye(m.shape[0], dtype=m.dtype) - jnp.outer(K, H)
    P_f = symmetrize(matmul(matmul(A, P), A.T) + r * jnp.outer(K, K))
    m_f = m + K * v
    ll = -0.5 * (LOG_2PI + jnp.log(S) + v * v / S)
    return (
        jnp.where(observed_t, m_f, m),
        jnp.where(observed_t, P_f, P),
        jnp.where(observed_t, ll, 0.0),
        S,
    )


def predict(m, P, F, Q):
    """Propagate filtered moments one step through the transition."""
    return matvec(F, m), symmetrize(matmul(matmul(F, P), F.T) + Q)
