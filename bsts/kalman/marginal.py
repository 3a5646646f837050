r"""The marginal log-likelihood for constant dynamics without any transient filtering.

The covariance of $y$ is affine in the initial covariance $P_0$. Split
$P_0 = \bar P + E_0$, where $\bar P$ is the Riccati fixed point. Under the initial
covariance $\bar P$ the filter is in its steady state from the first step: with the
constant gain $G = F \bar P H^\top / \bar S$ and $L = F - G H$, its innovations (all with
variance $\bar S$) are a causal convolution of the residuals $u_t = y_t - d_t$,

$$
\tilde v_t = u_t - H L^t m_0 - \sum_{i<t} h_{t-1-i}\, u_i, \qquad h_n = H L^n G,
$$

computed for the whole series at once: the rows $w_t = H L^t$ by doubling
($\lceil \log_2 T \rceil$ matrix products) and the convolution by FFT. The rest, $E_0$,
enters $y$ through $y_t \mathrel{+}= H F^t \delta$, $\delta \sim \mathcal N(0, E_0)$;
whitened by the same steady filter, the response to $\delta$ is $w_t \delta$. The matrix
determinant lemma and the Woodbury identity then give, for the full covariance $\Sigma$ of
$y$ and any residual vectors $a, b$ (their whitened forms $\tilde v^a, \tilde v^b$),

$$
\log\det\Sigma = T \log \bar S + \log\det(I + W E_0), \qquad
a^\top \Sigma^{-1} b = \tilde v^{a\top} \tilde v^b / \bar S
- c_a^\top E_0 (I + W E_0)^{-1} c_b,
$$
$$
W = \sum_t w_t^\top w_t / \bar S, \qquad c_a = \sum_t w_t^\top \tilde v^a_t / \bar S .
$$

No step runs a recursion, so value and gradient are a few flat array operations, with no
loop for the compiler to unroll or the gradient to tape. (FFT round-off is relative to the
whole series' norm, not to each term; against the exact filter it stays about $10^{-12}$
relative in float64 up to $T = 10^5$ on a series far from zero:
`benchmarks/marginal_precision.py`.)

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
zero mean). An impulse at $j$ whitens to $e_j - h_{t-1-j}$ for $t > j$, a shifted copy of
$h$, so the impulses need no convolution of their own. With gaps before the last
observation that are not known at trace time, or too many of them, or on a numerical
failure of the closed form (no fixed point solving the Riccati equation, round-off), the
exact filter runs instead (`exact_block`, with its hand-written adjoint).

**Trailing missing steps.** Missing steps after the last observation add nothing to
$\log p(y)$, and the whitening is causal, so they need no impulses: the sums above simply
run over the steps up to the last observed one. This holds when the gaps are not known at
trace time too (the length of the observed prefix is computed from the mask), so a batch of
series padded with NaN to a common length (`bsts.many`) keeps the closed form for every
series that has no gap before its end.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int

from bsts.kalman.exact_block import exact_log_likelihood
from bsts.kalman.riccati import riccati_fixed_point, riccati_step
from bsts.kalman.state_space import StateSpace
from bsts.kalman.steps import LOG_2PI, power_rows, symmetrize

__all__ = ["MAX_CLOSED_FORM_GAPS", "static_gaps", "steady_state_marginal_log_likelihood"]

# The gap impulses are whitened as extra series, so the work grows as T * (gaps + 1).
# On LLT + seasonal(12) (benchmarks/kalman_speed.py) 20 gaps in T = 1,000 or 10,000 run
# 4-5x faster than the per-step path, while 200 gaps in T = 10,000 ran several times
# slower. Past this budget (or 256 gaps) the exact filter runs; a handful of gaps
# always keeps the closed form.
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


def _causal_convolution(h: Float[Array, " T"], u: Float[Array, " T"]) -> Float[Array, " T"]:
    r"""$c_t = \sum_{i<t} h_{t-1-i} u_i$, by FFT."""
    T = u.shape[0]
    n = 1 << (2 * T - 1).bit_length()
    full = jnp.fft.irfft(jnp.fft.rfft(h, n) * jnp.fft.rfft(u, n), n)[: T - 1]
    return jnp.concatenate([jnp.zeros(1, u.dtype), full])


def _whitened_impulses(h: Float[Array, " T"], gaps: Int[np.ndarray, " m"]) -> Float[Array, "T m"]:
    r"""The steady filter's innovations for unit impulses at the gaps, from a zero mean.

    An impulse at step $j$ whitens to $e_j - h_{t-1-j}$ ($t > j$): a shifted copy of $h$,
    cut out by static slices (no FFT, and no scatter in the gradient).
    """
    T = h.shape[0]
    # padded[T + 1 + k] = h_k and zeros below, so padded[T - j + t] = h_{t-1-j} or 0.
    padded = jnp.concatenate([jnp.zeros(T + 1, h.dtype), h[: T - 1]])
    shifted = jnp.stack([padded[T - j : 2 * T - j] for j in gaps.tolist()], axis=1)
    unit = np.zeros((T, gaps.size))
    unit[gaps, np.arange(gaps.size)] = 1.0
    return unit - shifted


def _whitened_gram(
    ssm: StateSpace,
    u: Float[Array, " T"],
    gaps: Int[np.ndarray, " m"],
    P_bar,
    within: Bool[Array, " T"] | None = None,
) -> tuple[Float[Array, "k k"], Float[Array, ""]]:
    r"""$R^\top \Sigma^{-1} R$ and $\log\det\Sigma$ for $R = [u, e_{j_1}, \dots, e_{j_m}]$.

    $u$ has the model's initial mean, the unit impulses at the gaps a zero one. With
    `within`, only those steps (a prefix of the series) are counted. The log-determinant is
    NaN if round-off made $I + W E_0$ singular.
    """
    F, H, r = ssm.transition_matrix, ssm.observation_matrix, ssm.observation_var
    T = u.shape[0]
    s = P_bar @ H
    S_bar = H @ s + r
    G = F @ (s / S_bar)
    L = F - jnp.outer(G, H)
    rows = power_rows(H, L, T)
    h = rows @ G
    v = (u - _causal_convolution(h, u) - rows @ ssm.initial_mean)[:, None]
    if gaps.size:
        v = jnp.concatenate([v, _whitened_impulses(h, gaps)], axis=1)
    count = T
    if within is not None:
        # Causal whitening: cutting the sums at the prefix's end is all trailing gaps need.
        v = jnp.where(within[:, None], v, 0.0)
        rows = jnp.where(within[:, None], rows, 0.0)
        count = jnp.sum(within)
    steady_gram = v.T @ v / S_bar
    gramian = rows.T @ rows / S_bar
    projection = rows.T @ v / S_bar

    # Symmetrised as in the exact filter, so the gradient in P0 is symmetric as well.
    excess = symmetrize(ssm.initial_cov) - P_bar
    M = jnp.eye(ssm.state_dim, dtype=u.dtype) + gramian @ excess
    sign, log_det_M = jnp.linalg.slogdet(M)
    gram = steady_gram - projection.T @ excess @ jnp.linalg.solve(M, projection)
    log_det = count * jnp.log(S_bar) + log_det_M
    return gram, jnp.where(sign > 0, log_det, jnp.nan)


def _closed_form(
    ssm: StateSpace, y, gaps: Int[np.ndarray, " m"], P_bar, within=None
) -> Float[Array, ""]:
    T, m = y.shape[0], gaps.size
    u = y - ssm.observation_offset
    if m:
        u = u.at[gaps].set(0.0)
    gram, log_det = _whitened_gram(ssm, u, gaps, P_bar, within)
    if within is not None:
        T = jnp.sum(within)
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
) -> Float[Array, ""]:
    r"""Total log-likelihood for a model whose F, Q, H and r are constant.

    Args:
        ssm: the model; `ssm.has_constant_dynamics` must be true.
        y: NaN-free observations (0 at the missing steps).
        observed: the mask of observed steps.
        gaps: the missing steps, known at trace time (`static_gaps`), or None when they
            are not; with None the closed form is used only if every step up to the last
            observed one is observed (trailing missing steps, such as padding, are fine).

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
    within = None
    if gaps is None:
        # Steps up to the last observed one; only a gap among them needs the fallback.
        steps = jnp.arange(y.shape[0])
        within = steps <= jnp.max(jnp.where(observed, steps, -1))
        usable = usable & jnp.all(observed | ~within)
        gaps = np.zeros(0, dtype=int)

    # The fallback (no stabilising solution, round-off, or gaps before the end that are
    # not known at trace time) is the exact filter as one block with its hand-written
    # adjoint. The per-step steady path would run faster, but its gradient is not finite
    # for some models whose Riccati equation has no stabilising solution (a semi-local
    # trend's constant long-run slope, in float64) nor in parts of the parameter space in
    # float32 (NUTS diverged on monthly M1 series with the data traced). The fallback is
    # common: a slope whose variance goes to zero has no stabilising solution in float32,
    # and on monthly M1 series it took 20% of MAP's and 3% of NUTS's evaluations. Under
    # reverse mode a `lax.cond` stores the residuals of both branches (zeros for the one
    # not taken); the block's are only its inputs, so nothing of size T x d x d is written.
    def per_step(_):
        return exact_log_likelihood(ssm, y, observed)

    # The closed form runs whatever `usable` says, with its inputs behind a gradient gate:
    # where it is unusable its value is replaced and its gradient (0 * NaN inside, from a
    # missing fixed point) is dropped at the gate. A `lax.cond` around it instead cost
    # 0.3 s of tracing and 0.3 s of compiling per program (its forward and transposed
    # branches); computing the closed form needlessly on an unusable evaluation costs
    # about 0.3 ms at T = 128, next to the fallback's 0.9 ms.
    gated_ssm, gated_y = jax.tree_util.tree_map(lambda a: _gate(usable, a), (ssm, y))
    steady = jnp.where(usable, P_bar, jnp.eye(P_bar.shape[0], dtype=P_bar.dtype))
    total = jnp.where(usable, _closed_form(gated_ssm, gated_y, gaps, steady, within), jnp.nan)
    # One fallback site, shared by both failure modes (no usable fixed point; a non-finite
    # closed form, which only round-off produces): each site compiles the fallback's value
    # and gradient once more.
    return jax.lax.cond(jnp.isfinite(total), lambda _: total, per_step, None)


def _gate(open_: Bool[Array, ""], value):
    """`value`, whose gradient passes only where `open_` (a select, so NaN stops too).

    A concrete array stays concrete (it has no gradient, and a concrete transition keeps
    its sparse products).
    """
    if not isinstance(value, jax.core.Tracer) or not jnp.issubdtype(value.dtype, jnp.floating):
        return value
    return jnp.where(open_, value, jax.lax.stop_gradient(value))
