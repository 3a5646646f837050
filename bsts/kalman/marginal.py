r"""The marginal log-likelihood for constant dynamics without any transient filtering.

The covariance of $y$ is affine in the initial covariance $P_0$. Split
$P_0 = \bar P + E_0$, where $\bar P$ is the Riccati fixed point. Under the initial
covariance $\bar P$ the filter is in its steady state from the first step, so its
innovations $\tilde v_t$ (all with variance $\bar S$) come from the blocked steady-state
recursion of `bsts.kalman.steady`, started at $m_0$. The rest, $E_0$, enters $y$ through
$y_t \mathrel{+}= H F^t \delta$, $\delta \sim \mathcal N(0, E_0)$; whitened by the same
steady filter, the response to $\delta$ is $w_t \delta$ with $w_t = H L^t$. The matrix
determinant lemma and the Woodbury identity then give the exact total

$$
\log p(y) = \sum_t \log \mathcal N(\tilde v_t; 0, \bar S)
- \tfrac12 \log\det(I + W E_0) + \tfrac12\, c^\top E_0 (I + W E_0)^{-1} c,
$$
$$
W = \sum_t w_t^\top w_t / \bar S, \qquad c = \sum_t w_t^\top \tilde v_t / \bar S,
$$

where both sums are accumulated block-wise ($w_{kB+j} = (H L^j) (L^B)^k$). No step runs the
covariance recursion, so the cost is that of the steady blocks alone, in value and
gradient. It needs every step observed and a fixed point that solves the Riccati equation;
otherwise the per-step path (`steady_state_log_likelihood`) runs instead, chosen by a
`lax.cond` under `jit`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from bsts.kalman.riccati import riccati_fixed_point, riccati_step
from bsts.kalman.state_space import StateSpace
from bsts.kalman.steady import (
    DEFAULT_BLOCK,
    blocked_steady_innovations,
    steady_operators,
    steady_state_log_likelihood,
)
from bsts.kalman.steps import LOG_2PI

__all__ = ["steady_state_marginal_log_likelihood"]


def _closed_form(ssm: StateSpace, y, P_bar, block: int) -> Float[Array, ""]:
    F, H, r = ssm.transition_matrix, ssm.observation_matrix, ssm.observation_var
    T = y.shape[0]
    S_bar, rows, toeplitz, columns, L_block = steady_operators(F, H, r, P_bar, block)
    offset = ssm.observation_offset
    v, valid = blocked_steady_innovations(
        y - offset, ssm.initial_mean, rows, toeplitz, columns, L_block
    )
    v = jnp.where(valid, v, 0.0)
    steady_terms = -0.5 * (T * (LOG_2PI + jnp.log(S_bar)) + jnp.sum(v * v) / S_bar)

    weighted_rows = valid[:, :, None] * rows[None]  # (num_blocks, B, d)

    def accumulate(carry, inputs):
        gramian, projection = carry
        block_rows, block_v = inputs
        gramian = block_rows.T @ block_rows / S_bar + L_block.T @ gramian @ L_block
        projection = block_rows.T @ block_v / S_bar + L_block.T @ projection
        return (gramian, projection), None

    dim = ssm.state_dim
    (gramian, projection), _ = jax.lax.scan(
        accumulate,
        (jnp.zeros((dim, dim), y.dtype), jnp.zeros(dim, y.dtype)),
        (weighted_rows, v),
        reverse=True,
    )
    excess = ssm.initial_cov - P_bar
    M = jnp.eye(dim, dtype=y.dtype) + gramian @ excess
    sign, log_det = jnp.linalg.slogdet(M)
    correction = -0.5 * log_det + 0.5 * projection @ excess @ jnp.linalg.solve(M, projection)
    return jnp.where(sign > 0, steady_terms + correction, jnp.nan)


def steady_state_marginal_log_likelihood(
    ssm: StateSpace,
    y: Float[Array, " T"],
    observed: Bool[Array, " T"],
    block: int = DEFAULT_BLOCK,
) -> Float[Array, ""]:
    r"""Total log-likelihood for a model whose F, Q, H and r are constant.

    Args:
        ssm: the model; `ssm.has_constant_dynamics` must be true.
        y: NaN-free observations.
        observed: the mask of observed steps.
        block: the block length B.

    Returns:
        $\log p(y)$, summed over the observed steps.
    """
    F, Q, H, r = (
        ssm.transition_matrix,
        ssm.transition_cov,
        ssm.observation_matrix,
        ssm.observation_var,
    )
    P_bar = riccati_fixed_point(F, Q, H, r)
    residual = jnp.max(jnp.abs(riccati_step(P_bar, F, Q, H, r) - P_bar))
    tolerance = 1e3 * jnp.finfo(P_bar.dtype).eps * jnp.max(jnp.abs(P_bar))
    usable = jnp.all(observed) & (residual <= tolerance)

    def per_step(_):
        return jnp.sum(steady_state_log_likelihood(ssm, y, observed, block))

    def closed(_):
        total = _closed_form(ssm, y, P_bar, block)
        # A non-positive determinant can only come from round-off: use the safe path.
        return jax.lax.cond(jnp.isfinite(total), lambda _: total, per_step, None)

    return jax.lax.cond(usable, closed, per_step, None)
