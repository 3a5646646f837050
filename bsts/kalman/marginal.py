r"""The marginal log-likelihood for constant dynamics without any transient filtering.

The covariance of $y$ is affine in the initial covariance $P_0$. Split
$P_0 = \bar P + E_0$, where $\bar P$ is the Riccati fixed point. Under the initial
covariance $\bar P$ the filter is in its steady state from the first step, so its
innovations $\tilde v_t$ (all with variance $\bar S$) come from the blocked steady-state
recursion of `bsts.kalman.steady`, started at $m_0$. The rest, $E_0$, enters $y$ through
$y_t \mathrel{+}= H F^t \delta$, $\delta \sim \mathcal N(0, E_0)$; whitened by the same
steady filter, the response to $\delta$ is $w_t \delta$ with $w_t = H L^t$. The matrix
determinant lemma and the Woodbury identity then give, for the full covariance $\Sigma$ of
$y$ and any residual vectors $a, b$ (their whitened forms $\tilde v^a, \tilde v^b$),

$$
\log\det\Sigma = T \log \bar S + \log\det(I + W E_0), \qquad
a^\top \Sigma^{-1} b = \tilde v^{a\top} \tilde v^b / \bar S
- c_a^\top E_0 (I + W E_0)^{-1} c_b,
$$
$$
W = \sum_t w_t^\top w_t / \bar S, \qquad c_a = \sum_t w_t^\top \tilde v^a_t / \bar S,
$$

where both sums are accumulated block-wise ($w_{kB+j} = (H L^j) (L^B)^k$). No step runs the
covariance recursion, so the cost is that of the steady blocks alone, in value and
gradient.

**Missing steps.** With the $m$ missing steps $J$ known when the function is traced (the
observations are a concrete array, as they are inside a NumPyro model), the observed
part $y_o$ still needs no recursion. Fill the gaps with zeros, so the residual is
$r = u + \sum_{j \in J} c_j e_j$ for unknown fill values $c$. With
$\Lambda = \Sigma^{-1}$ restricted to the gaps and $b = \Lambda_{J,\cdot}\, u$, the Gaussian
conditional $p(y_o) = p(y_o, y_J = c^*) / p(y_J = c^* \mid y_o)$ at its mode $c^*$ gives

$$
\log p(y_o) = -\tfrac12\left[(T - m)\log 2\pi + \log\det\Sigma + \log\det\Lambda_{JJ}
+ u^\top\Sigma^{-1}u - b^\top \Lambda_{JJ}^{-1} b\right],
$$

so the series is whitened once together with the $m$ unit impulses $e_j$ (started from a
zero mean): matrix products in place of matrix-vector ones. Without a fixed point that
solves the Riccati equation, with the gaps not known at trace time, or with too many of
them, the per-step path (`steady_state_log_likelihood`) runs instead; with the gaps known,
a numerical failure of the closed form falls back to the sequential filter.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from bsts.kalman.riccati import riccati_fixed_point, riccati_step
from bsts.kalman.sequential import sequential_filter
from bsts.kalman.state_space import StateSpace
from bsts.kalman.steady import (
    DEFAULT_BLOCK,
    blocked_steady_innovations,
    steady_operators,
    steady_state_log_likelihood,
)
from bsts.kalman.steps import LOG_2PI, symmetrize

__all__ = ["MAX_CLOSED_FORM_GAPS", "static_gaps", "steady_state_marginal_log_likelihood"]

# The gap impulses are whitened as extra series, so the work grows as T * (gaps + 1).
# On LLT + seasonal(12) (benchmarks/kalman_speed.py) 20 gaps in T = 1,000 or 10,000 run
# 4-5x faster than the per-step path, while 200 gaps in T = 10,000 ran several times
# slower. Past this budget (or 256 gaps) the per-step path runs; a handful of gaps always
# keeps the closed form.
MAX_CLOSED_FORM_GAPS = 256
_WHITENED_BUDGET = 250_000
_ALWAYS_CLOSED_GAPS = 3


def static_gaps(y) -> np.ndarray | None:
    """The indices of the missing steps when `y` is concrete and has few enough of them.

    Returns:
        The sorted indices of the NaN entries of `y`, or None when `y` is traced (its gaps
        are unknown until run time) or has too many gaps for the closed form.
    """
    if isinstance(y, jax.core.Tracer):
        return None
    try:
        gaps = np.flatnonzero(np.isnan(np.asarray(y, dtype=float)))
    except (TypeError, ValueError):
        return None  # not numeric: `prepare` reports it

    if gaps.size <= _ALWAYS_CLOSED_GAPS:
        return gaps
    if gaps.size > MAX_CLOSED_FORM_GAPS or (gaps.size + 1) * np.size(y) > _WHITENED_BUDGET:
        return None
    return gaps


def _whitened_gram(
    ssm: StateSpace, residuals: Float[Array, "T k"], means: Float[Array, "d k"], P_bar, block
) -> tuple[Float[Array, "k k"], Float[Array, ""]]:
    r"""$R^\top \Sigma^{-1} R$ and $\log\det\Sigma$ for residual columns $R$.

    Each column has its own initial mean. The log-determinant is NaN if round-off made
    $I + W E_0$ singular.
    """
    F, H, r = ssm.transition_matrix, ssm.observation_matrix, ssm.observation_var
    T = residuals.shape[0]
    S_bar, rows, toeplitz, columns, L_block = steady_operators(F, H, r, P_bar, block)
    whiten = jax.vmap(
        lambda u, x0: blocked_steady_innovations(u, x0, rows, toeplitz, columns, L_block),
        in_axes=(1, 1),
        out_axes=(-1, None),
    )
    v, valid = whiten(residuals, means)  # v: (num_blocks, B, k)
    v = jnp.where(valid[..., None], v, 0.0)
    steady_gram = jnp.einsum("nbi,nbj->ij", v, v) / S_bar

    weighted_rows = valid[:, :, None] * rows[None]  # (num_blocks, B, d)

    def accumulate(carry, inputs):
        gramian, projection = carry
        block_rows, block_v = inputs
        gramian = block_rows.T @ block_rows / S_bar + L_block.T @ gramian @ L_block
        projection = block_rows.T @ block_v / S_bar + L_block.T @ projection
        return (gramian, projection), None

    dim, k = ssm.state_dim, residuals.shape[1]
    dtype = residuals.dtype
    (gramian, projection), _ = jax.lax.scan(
        accumulate,
        (jnp.zeros((dim, dim), dtype), jnp.zeros((dim, k), dtype)),
        (weighted_rows, v),
        reverse=True,
    )
    # Symmetrised as in the exact filter, so the gradient in P0 is symmetric as well.
    excess = symmetrize(ssm.initial_cov) - P_bar
    M = jnp.eye(dim, dtype=dtype) + gramian @ excess
    sign, log_det_M = jnp.linalg.slogdet(M)
    gram = steady_gram - projection.T @ excess @ jnp.linalg.solve(M, projection)
    log_det = T * jnp.log(S_bar) + log_det_M
    return gram, jnp.where(sign > 0, log_det, jnp.nan)


def _closed_form(
    ssm: StateSpace, y, gaps: Int[np.ndarray, " m"], P_bar, block: int
) -> Float[Array, ""]:
    T, m = y.shape[0], gaps.size
    u = y - ssm.observation_offset
    if m:
        u = u.at[gaps].set(0.0)
    impulses = jnp.zeros((T, m), y.dtype).at[gaps, jnp.arange(m)].set(1.0)
    residuals = jnp.concatenate([u[:, None], impulses], axis=1)
    means = jnp.zeros((ssm.state_dim, m + 1), y.dtype).at[:, 0].set(ssm.initial_mean)
    gram, log_det = _whitened_gram(ssm, residuals, means, P_bar, block)
    quadratic = gram[0, 0]
    if m:
        chol = jnp.linalg.cholesky(gram[1:, 1:])
        z = jax.scipy.linalg.solve_triangular(chol, gram[1:, 0], lower=True)
        quadratic = quadratic - z @ z
        log_det = log_det + 2.0 * jnp.sum(jnp.log(jnp.diagonal(chol)))
    return -0.5 * ((T - m) * LOG_2PI + log_det + quadratic)


def steady_state_marginal_log_likelihood(
    ssm: StateSpace,
    y: Float[Array, " T"],
    observed: Bool[Array, " T"],
    gaps: Int[np.ndarray, " m"] | None = None,
    block: int = DEFAULT_BLOCK,
) -> Float[Array, ""]:
    r"""Total log-likelihood for a model whose F, Q, H and r are constant.

    Args:
        ssm: the model; `ssm.has_constant_dynamics` must be true.
        y: NaN-free observations (0 at the missing steps).
        observed: the mask of observed steps.
        gaps: the missing steps, known at trace time (`static_gaps`), or None when they
            are not; with None the closed form is used only if every step is observed.
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
    # A check, not part of the value: no gradient (it would be 0 * NaN without a solution).
    residual = jax.lax.stop_gradient(jnp.max(jnp.abs(riccati_step(P_bar, F, Q, H, r) - P_bar)))
    tolerance = 1e3 * jnp.finfo(P_bar.dtype).eps * jnp.max(jnp.abs(P_bar))
    usable = residual <= tolerance
    if gaps is None:
        usable = usable & jnp.all(observed)
        gaps = np.zeros(0, dtype=int)

        def per_step(_):
            return jnp.sum(steady_state_log_likelihood(ssm, y, observed, block))
    else:
        # Gaps known at trace time leave only numerical failures (no stabilising solution,
        # round-off) to the fallback: the plain sequential filter, which compiles in a
        # fraction of the time of the fast per-step path it would rarely run.
        def per_step(_):
            return jnp.sum(sequential_filter(ssm, y, observed).log_likelihood)

    def closed(_):
        total = _closed_form(ssm, y, gaps, P_bar, block)
        # A non-finite total can only come from round-off: use the safe path.
        return jax.lax.cond(jnp.isfinite(total), lambda _: total, per_step, None)

    return jax.lax.cond(usable, closed, per_step, None)
