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

**Missing steps.** A gap breaks the steady state, and the filter's excess covariance
then decays again over the next observed steps. `bsts.kalman.segments` carries the closed
form across gaps: one segment per stretch of observed steps, in a scan with one step per
gap. The gap positions are found at run time, so only an upper bound on their number is
static (`gap_capacity`): a series concrete at trace time sets it from its own gaps, a
fitting program from the bucket's series. With more gaps than that bound, or on a
numerical failure of the closed form (no fixed point solving the Riccati equation,
round-off), the exact filter runs instead (`exact_block`, with its hand-written adjoint).

**Trailing missing steps.** Missing steps after the last observation add nothing to
$\log p(y)$, and the whitening is causal, so the sums above simply run over the steps up
to the last observed one. This holds when the gaps are not known at trace time too (the
length of the observed prefix is computed from the mask), so a batch of series padded
with NaN to a common length (`bsts.many`) keeps the closed form.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from bsts.kalman.exact_block import exact_log_likelihood
from bsts.kalman.riccati import riccati_fixed_point, steady_state_holds
from bsts.kalman.segments import gap_pieces, gap_terms, segment_term
from bsts.kalman.state_space import StateSpace
from bsts.kalman.steps import LOG_2PI, power_rows, symmetrize

__all__ = [
    "gap_capacity",
    "interior_gaps",
    "shared_gap_capacity",
    "steady_state_marginal_log_likelihood",
]

# The scan across gaps costs a few d x d products and one LU factorisation per run of
# gaps (up to 16 of them), against one exact filter step per time step for the
# fallback: past a third of the series' steps in scan steps, the exact filter is the
# cheaper of the two.
_MAX_GAP_SHARE = 1 / 3
_MIN_CAPACITY = 4


def interior_gaps(y) -> int | None:
    """The scan steps the gaps of a concrete `y` take (`bsts.kalman.segments.gap_pieces`).

    Gaps are the missing steps before the last observation; each run of them counts once
    per `RUN_PIECE` steps.

    Returns:
        The count, or None when `y` is traced (unknown until run time) or not numeric.
    """
    if isinstance(y, jax.core.Tracer):
        return None
    try:
        missing = np.isnan(np.asarray(y, dtype=float))
    except (TypeError, ValueError):
        return None  # not numeric: `prepare` reports it
    observed = np.flatnonzero(~missing)
    if not observed.size:
        return 0
    return gap_pieces(missing[: observed[-1]])


def gap_capacity(count: int, length: int) -> int | None:
    """The static room for `count` gaps in a series of `length` steps.

    Rounded up to an eighth of the next power of two (at least 4), so that series with
    similar numbers of gaps share one compiled program while the spare room, which the
    scan still steps through, stays under a quarter; 0 without gaps; None past a third of
    the steps, where the exact filter runs instead.
    """
    if count == 0:
        return 0
    if count > _MAX_GAP_SHARE * length:
        return None
    step = max(_MIN_CAPACITY, (1 << (count - 1).bit_length()) // 8)
    return -(-count // step) * step


def shared_gap_capacity(capacities) -> int | None:
    """The room one program needs for several series' gaps (None: the exact filter)."""
    capacities = list(capacities)
    if any(capacity is None for capacity in capacities):
        return None
    return max(capacities, default=0)


def _causal_convolution(h: Float[Array, " T"], u: Float[Array, " T"]) -> Float[Array, " T"]:
    r"""$c_t = \sum_{i<t} h_{t-1-i} u_i$, by FFT."""
    T = u.shape[0]
    n = 1 << (2 * T - 1).bit_length()
    full = jnp.fft.irfft(jnp.fft.rfft(h, n) * jnp.fft.rfft(u, n), n)[: T - 1]
    return jnp.concatenate([jnp.zeros(1, u.dtype), full])


def _filled(u: Float[Array, " T"], observed: Bool[Array, " T"], steps) -> Float[Array, " T"]:
    """`u` with each missing step holding the last observed value (the first, before it).

    Any fill gives the same likelihood (`bsts.kalman.segments`), but the steady filter
    runs through the fills, and zeros on a series far from zero (a level of 300) left
    innovations of that size to cancel later: float32 lost 3e-5 of the log-likelihood.
    """
    last = jax.lax.cummax(jnp.where(observed, steps, -1))
    first = jnp.argmax(observed)
    return u[jnp.where(last >= 0, last, first)]


def _closed_form(
    ssm: StateSpace, y, observed: Bool[Array, " T"], P_bar, max_gaps: int
) -> Float[Array, ""]:
    r"""$\log p(y)$ by the closed form; NaN on round-off or more than `max_gaps` gaps."""
    F, H, r = ssm.transition_matrix, ssm.observation_matrix, ssm.observation_var
    T = y.shape[0]
    s = P_bar @ H
    S_bar = H @ s + r
    G = F @ (s / S_bar)
    L = F - jnp.outer(G, H)
    rows = power_rows(H, L, T)
    h = rows @ G

    steps = jnp.arange(T)
    u = _filled(jnp.broadcast_to(y - ssm.observation_offset, y.shape), observed, steps)
    # Causal whitening: cutting the sums after the last observation is all trailing
    # missing steps (padding, a forecast's future) need.
    end = jnp.max(jnp.where(observed, steps, -1)) + 1
    within = steps < end
    v = jnp.where(within, u - _causal_convolution(h, u) - rows @ ssm.initial_mean, 0.0)
    # Symmetrised as in the exact filter, so the gradient in P0 is symmetric as well.
    excess = symmetrize(ssm.initial_cov) - P_bar
    missing = within & ~observed
    if max_gaps:
        terms = jnp.sum(gap_terms(F, G, L, S_bar, rows, v, missing, end, excess, max_gaps))
    else:
        rows = jnp.where(within[:, None], rows, 0.0)
        zero = jnp.zeros_like(ssm.initial_mean)
        terms, _, _ = segment_term(zero, excess, rows.T @ rows / S_bar, rows.T @ v / S_bar)
        terms = jnp.where(jnp.any(missing), jnp.nan, terms)
    count = jnp.sum(observed)
    quadratic = jnp.sum(jnp.where(observed, v * v, 0.0)) / S_bar
    return -0.5 * (count * (LOG_2PI + jnp.log(S_bar)) + quadratic + terms)


def steady_state_marginal_log_likelihood(
    ssm: StateSpace,
    y: Float[Array, " T"],
    observed: Bool[Array, " T"],
    max_gaps: int = 0,
) -> Float[Array, ""]:
    r"""Total log-likelihood for a model whose F, Q, H and r are constant.

    Args:
        ssm: the model; `ssm.has_constant_dynamics` must be true.
        y: NaN-free observations (0 at the missing steps).
        observed: the mask of observed steps.
        max_gaps: the most missing steps before the last observation that the closed form
            makes room for (static); with more, the exact filter runs.

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
    usable = steady_state_holds(*jax.lax.stop_gradient((P_bar, F, Q, H, r)))

    # The fallback (no stabilising solution, round-off, or more gaps than the closed form
    # has room for, where the closed form is NaN) is the exact filter as one block with
    # its hand-written adjoint. The per-step steady path would run faster, but its gradient
    # is not finite for some models whose Riccati equation has no stabilising solution (a
    # semi-local trend's constant long-run slope, in float64) nor in parts of the
    # parameter space in float32 (NUTS diverged on monthly M1 series with the data
    # traced). The fallback is common: a slope whose variance goes to zero has no
    # stabilising solution in float32, and on monthly M1 series it took 20% of MAP's and
    # 3% of NUTS's evaluations. Under reverse mode a `lax.cond` stores the residuals of
    # both branches (zeros for the one not taken); the block's are only its inputs, so
    # nothing of size T x d x d is written.
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
    closed = _closed_form(gated_ssm, gated_y, observed, steady, max_gaps)
    total = jnp.where(usable, closed, jnp.nan)
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
