r"""The fast log-likelihood for constant dynamics: exact blocks, then steady-state blocks.

When $F, Q, H, r$ are constant, the predicted covariance $P_t^-$ converges to the fixed
point $\bar P$ of the Riccati recursion (statsmodels' `UnobservedComponents` uses the same
fact). From then on the innovation variance $\bar S = H \bar P H^\top + r$ and the gain are
constant, and the predicted mean follows the time-invariant recursion

$$
m_{t+1}^- = L\, m_t^- + G\, u_t, \qquad v_t = u_t - H m_t^-, \qquad
G = F \bar P H^\top / \bar S, \quad L = F - G H, \quad u_t = y_t - d_t .
$$

Unrolled over a block of $B$ steps that starts from $x = m^-$,

$$
v_{j} = u_{j} - H L^j x - \sum_{i<j} h_{j-1-i}\, u_{i},
\qquad h_n = H L^n G, \qquad
x' = L^B x + \sum_{i<B} L^{B-1-i} G\, u_{i},
$$

so a steady block costs two small matrix products instead of $B$ sequential
matrix-matrix steps, and its reverse-mode tape is just as small.

The series is processed in blocks of $B$ steps. A block runs the exact filter
(`exact_block`) unless, at the end of the previous block, $P^-$ was within $10^{-11}$
(relative; $256\epsilon$ in float32) of $\bar P$ and every step of this block is observed.
$\bar P$ comes from the doubling algorithm with an implicit-function gradient
(`riccati`). A missing step sends the filter back to exact blocks until the covariance
settles again, so gaps keep the numbers exact; a model without a stabilising solution
never switches. The choice is a `lax.cond` on traced values, made per block under `jit`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from bsts.kalman.exact_block import exact_block
from bsts.kalman.riccati import riccati_fixed_point
from bsts.kalman.state_space import StateSpace
from bsts.kalman.steps import LOG_2PI, power_rows, symmetrize
from bsts.kalman.transition import Transition

__all__ = ["DEFAULT_BLOCK", "steady_operators", "steady_state_log_likelihood"]

DEFAULT_BLOCK = 64


def steady_operators(F, H, r, P_bar, block: int):
    r"""Everything a steady block needs, built from the converged covariance $\bar P$."""
    s = P_bar @ H
    S_bar = H @ s + r
    G = F @ (s / S_bar)
    L = F - jnp.outer(G, H)
    # Rows H L^j and columns L^j G for j < B.
    rows, columns = power_rows(H, L, block), power_rows(G, L.T, block)
    L_block = jnp.linalg.matrix_power(L, block)
    h = rows @ G  # h_n = H L^n G
    lag = jnp.arange(block)[:, None] - jnp.arange(block)[None, :] - 1
    toeplitz = jnp.where(lag >= 0, h[jnp.clip(lag, 0, block - 1)], 0.0)
    return S_bar, rows, toeplitz, columns[::-1].T, L_block


def steady_state_log_likelihood(
    ssm: StateSpace,
    y: Float[Array, " T"],
    observed: Bool[Array, " T"],
    block: int = DEFAULT_BLOCK,
) -> Float[Array, " T"]:
    r"""Per-step log-likelihood for a model whose F, Q, H and r are constant.

    Args:
        ssm: the model; `ssm.has_constant_dynamics` must be true.
        y: NaN-free observations.
        observed: the mask of observed steps.
        block: the block length B.

    Returns:
        $\log p(y_t \mid y_{<t})$ per step, 0 where missing.
    """
    F, Q = ssm.transition_matrix, ssm.transition_cov
    H, r = ssm.observation_matrix, ssm.observation_var
    T = y.shape[0]
    num_blocks = -(-T // block)
    pad = num_blocks * block - T
    offset = ssm.observation_offset
    u = jnp.pad(y - offset, (0, pad)).reshape(num_blocks, block)
    mask = jnp.pad(observed, (0, pad), constant_values=True).reshape(num_blocks, block)

    transition = Transition(F)
    P_bar = riccati_fixed_point(F, Q, H, r)
    tolerance = jnp.maximum(1e-11, 256 * jnp.finfo(P_bar.dtype).eps) * jnp.max(jnp.abs(P_bar))
    S_bar, rows, toeplitz, columns, L_block = steady_operators(F, H, r, P_bar, block)

    def body(carry, inputs):
        m, P, converged = carry
        u_block, mask_block = inputs

        def steady(_):
            v = u_block - toeplitz @ u_block - rows @ m
            ll = -0.5 * (LOG_2PI + jnp.log(S_bar) + v * v / S_bar)
            return ll, (L_block @ m + columns @ u_block, P, converged)

        def exact(_):
            ll, m_next, P_next = exact_block(transition, m, P, u_block, mask_block, F, Q, H, r)
            # NaN-safe: a non-finite P_bar compares False and the exact path continues.
            return ll, (m_next, P_next, jnp.max(jnp.abs(P_next - P_bar)) <= tolerance)

        ll, carry = jax.lax.cond(converged & jnp.all(mask_block), steady, exact, None)
        return carry, ll

    init = (ssm.initial_mean, symmetrize(ssm.initial_cov), jnp.array(False))
    _, ll = jax.lax.scan(body, init, (u, mask))
    return ll.reshape(-1)[:T]
