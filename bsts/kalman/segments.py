r"""The closed-form likelihood across gaps: a step per run of gaps, none per time step.

Between two missing steps the series is a segment of observed steps, and within a
segment the filter can be summarised in closed form (`bsts.kalman.marginal`): measured
against the steady filter $(G, L = F - G H, \bar S)$, the exact filter's predicted
covariance at a segment's start is $\bar P + E$, its mean $\hat m + D$, where $\hat m$ is
the steady filter's mean. Let $\tilde v$ be the steady filter's innovations for the whole
series with each gap filled by any value $u_j$ (one FFT convolution; the last observed
value keeps the innovations small), and $w_i = H L^i$. Over a segment of $n$ steps
starting at $a$, the steady innovations restarted from the exact mean are
$\tilde v_{a+i} - w_i D$, and with $\delta \sim \mathcal N(D, E)$ they are $w_i \delta$
plus white noise of variance $\bar S$. So the segment adds

$$
-\tfrac12\Big[n \log 2\pi\bar S + \textstyle\sum_i \tilde v_{a+i}^2 / \bar S
+ \log\det(I + E J) + D^\top J D - 2 D^\top \eta - c^\top \Sigma_\delta c\Big],
$$
$$
J = Y_n / \bar S, \quad Y_n = \textstyle\sum_{i<n} w_i^\top w_i, \quad
\eta = \textstyle\sum_{i<n} w_i^\top \tilde v_{a+i} / \bar S, \quad
c = \eta - J D, \quad \Sigma_\delta = (I + E J)^{-1} E,
$$

and leaves the state at the segment's end with $D' = L^n (D + \Sigma_\delta c)$ and
$E' = L^n \Sigma_\delta L^{n\top}$ (the steady filter's own error is independent of its
innovations). A missing step $j$ then predicts without an update: since
$F \bar P F^\top + Q = \bar P + \bar S G G^\top$ and the filled steady filter's mean
moves by $L \hat m_j + G u_j = F \hat m_j + G \tilde v_j$,

$$
E \leftarrow F E F^\top + \bar S G G^\top, \qquad D \leftarrow F D - G \tilde v_j ,
$$

and a run of $r$ consecutive gaps from $j$ on, in one step,
$E \leftarrow F^r E F^{r\top} + \bar S \sum_{i<r} F^i G G^\top F^{i\top}$ and
$D \leftarrow F^r D - \sum_{i<r} F^{r-1-i} G \tilde v_{j+i}$ (runs longer than
`RUN_PIECE` take several steps).

The series starts with $D = 0$ and $E = P_0 - \bar P$; without gaps the recursion is the
single segment of `bsts.kalman.marginal`. The per-segment quantities need no recursion
over time: with a block length $B$, the powers $L^n = L^{n \bmod B} (L^B)^{\lfloor n/B
\rfloor}$ and the Gramians $Y_n$ come from tables of $B + T/B$ small matrices, and
$\eta$ from sums cut at the segment ends (one short scan over blocks, then windows of at
most $B$ steps). What runs sequentially is a scan with one step per run of gaps, each
a few $d \times d$ products and one LU factorisation, so its cost is independent of the
series' length. The gap
positions are found at run time (`jnp.nonzero` with a static size), so a traced series,
as a fitting program sees it, keeps this path; only an upper bound on their number is
static.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from bsts.kalman.steps import matmul, matvec, symmetrize

__all__ = ["RUN_PIECE", "block_length", "gap_pieces", "gap_terms", "segment_term"]

# Consecutive gaps handled by one scan step (tables of F^r and of the inflow
# sum_{i<r} F^i G G' F^i' for r up to this); a longer run of gaps takes several steps.
RUN_PIECE = 16


def gap_pieces(missing: np.ndarray) -> int:
    """The scan steps a pattern of gaps takes: each run of gaps, in pieces of `RUN_PIECE`.

    Args:
        missing: the gaps (missing steps before the last observation), a boolean array.
    """
    gaps = np.flatnonzero(missing)
    if not gaps.size:
        return 0
    runs = np.split(gaps, np.flatnonzero(np.diff(gaps) > 1) + 1)
    return int(sum(-(-run.size // RUN_PIECE) for run in runs))


def block_length(num_steps: int) -> int:
    r"""The table block $B$: about $\sqrt T$ (a power of two, at least 16, at most T).

    It balances the tables ($B + T / B$ matrices), the windows ($B$ steps per segment
    end) and the scan over blocks ($T / B$ steps).
    """
    return max(1, min(num_steps, max(16, 2 ** round(math.log2(math.sqrt(num_steps))))))


def segment_term(D, E, J, eta):
    r"""The bracketed terms of one segment that involve $D$ and $E$, and its posterior.

    Returns:
        `(term, mean, cov)`: $\log\det(I + EJ) + D^\top J D - 2 D^\top \eta
        - c^\top \Sigma_\delta c$ (NaN if round-off made $\det(I + EJ) \le 0$), and
        $D + \Sigma_\delta c$ and $\Sigma_\delta$, the moments of $\delta$ given the segment.
    """
    log_det, cov = _conditioned_excess(E, J)
    term, _, shift = _quadratic_terms(log_det, cov, D, J, eta)
    return term, D + shift, cov


def _quadratic_terms(log_det, cov, D, J, eta):
    r"""The term given $\log\det$ and $\Sigma_\delta$, with $c$ and $\Sigma_\delta c$."""
    JD = matvec(J, D)
    c = eta - JD
    shift = matvec(cov, c)
    return log_det + jnp.dot(D, JD) - 2.0 * jnp.dot(D, eta) - jnp.dot(c, shift), c, shift


@jax.custom_vjp
def _conditioned_excess(E: Float[Array, "d d"], J: Float[Array, "d d"]):
    r"""$\log\det M$ and $\Sigma = M^{-1} E$ for $M = I + E J$ ($E$, $J$ symmetric).

    Differentiated by hand: with $N = M^{-1}$, $d\Sigma = N\,dE\,N^\top - \Sigma\,dJ\,\Sigma$
    and $d \log\det M = \mathrm{tr}(J N\,dE) + \mathrm{tr}(\Sigma\,dJ)$, so the reverse pass
    is a few products (automatic differentiation of the LU factorisation cost about four
    times the forward pass, in a scan step that runs once per run of gaps).
    """
    return _conditioned_excess_forward(E, J)[:2]


def _conditioned_excess_forward(E, J):
    r"""`(log_det, cov, inverse)`: $\log\det M$, $\Sigma = M^{-1} E$ and $M^{-1}$.

    Where a segment is informative ($J$ of order $n / \bar S$, large for a smooth
    series) and $E$ is ill-conditioned (after a gap near the start), $M = I + EJ$ is
    ill-conditioned as well, and $\Sigma$ formed as $M^{-1} E$ carries an error of
    order $\epsilon\,\mathrm{cond}(M)$ relative to its largest entry, which swamps its small
    (identified) directions. In float64 that is harmless; in float32 it moved a segment's
    term by tens of nats on the CO2 series (five early gaps), so NUTS's step size
    collapsed. float32 therefore takes the symmetric form through a factor of $E$:
    with $E = W S W^\top$ ($S$ the signs of its eigenvalues, since $E_0 = P_0 - \bar P$
    can be indefinite) and $K = W^\top J W$,

    $$
    \det M = \det(I + S K), \qquad \Sigma = W (I + S K)^{-1} S W^\top,
    \qquad M^{-1} = I - \Sigma J,
    $$

    whose round-off lands in the poorly identified directions, where $\Sigma$ is large.
    It costs a factorisation of $E$ per segment, so float64 keeps the direct form.
    """
    eye = jnp.eye(E.shape[-1], dtype=E.dtype)
    if E.dtype == jnp.float64:
        # One factorisation for the determinant and the inverse: independent LAPACK calls
        # side by side have hung XLA's CPU runtime (see `bsts.kalman.riccati`).
        lu, pivots = jax.scipy.linalg.lu_factor(eye + matmul(E, J))
        log_det = _lu_log_det(lu, pivots)
        inverse = jax.scipy.linalg.lu_solve((lu, pivots), eye)
        return log_det, symmetrize(matmul(inverse, E)), inverse
    W, signs = _signed_factor(symmetrize(E))
    K = matmul(matmul(W.T, J), W)
    lu, pivots = jax.scipy.linalg.lu_factor(eye + signs[:, None] * K)
    log_det = _lu_log_det(lu, pivots)
    weighted = jax.scipy.linalg.lu_solve((lu, pivots), signs[:, None] * W.T)
    cov = symmetrize(matmul(W, weighted))
    return log_det, cov, eye - matmul(cov, J)


def _signed_factor(E):
    r"""`(W, s)` with $E = W \mathrm{diag}(s) W^\top$, $s = \pm 1$: Cholesky where it succeeds.

    The Cholesky factor costs a tenth of an eigendecomposition; a semi-definite or
    indefinite $E$ (after a long segment $E$ is nearly the rank-one jump of a gap) makes it
    fail, and then the eigendecomposition gives the factor and the signs.
    """
    ones = jnp.ones(E.shape[-1], E.dtype)
    lower = jnp.linalg.cholesky(E)
    succeeded = jnp.all(jnp.isfinite(lower))

    def by_eigenvalues(_):
        # Made to wait for the Cholesky factor: under `vmap` the cond becomes a select that
        # runs both branches, and independent LAPACK calls side by side have hung XLA's CPU
        # runtime (see `bsts.kalman.riccati`).
        after = E + 0.0 * jnp.where(succeeded, lower[0, 0], 0.0)
        eigenvalues, vectors = jnp.linalg.eigh(after)
        return vectors * jnp.sqrt(jnp.abs(eigenvalues))[None, :], jnp.sign(eigenvalues)

    return jax.lax.cond(succeeded, lambda _: (lower, ones), by_eigenvalues, None)


def _lu_log_det(lu, pivots):
    r"""$\log\det$ from an LU factorisation; NaN where round-off made it non-positive."""
    diagonal = jnp.diagonal(lu)
    swaps = jnp.sum(pivots != jnp.arange(pivots.shape[0], dtype=pivots.dtype))
    negative = (swaps + jnp.sum(diagonal < 0)) % 2 == 1
    return jnp.where(negative, jnp.nan, jnp.sum(jnp.log(jnp.abs(diagonal))))


def _conditioned_excess_fwd(E, J):
    log_det, cov, inverse = _conditioned_excess_forward(E, J)
    return (log_det, cov), (J, cov, inverse)


def _conditioned_excess_bwd(residuals, cotangents):
    J, cov, inverse = residuals
    log_det_bar, cov_bar = cotangents
    cov_bar = symmetrize(cov_bar)
    E_bar = matmul(matmul(inverse.T, cov_bar), inverse) + log_det_bar * matmul(inverse.T, J)
    J_bar = log_det_bar * cov - matmul(matmul(cov, cov_bar), cov)
    return E_bar, J_bar


_conditioned_excess.defvjp(_conditioned_excess_fwd, _conditioned_excess_bwd)


@jax.custom_vjp
def _excess_recursion(E0, moves, J, eta, shifts, jumps) -> Float[Array, " k"]:
    r"""The segments' terms, carrying $(D, E)$ from one segment to the next.

    Per segment: its `segment_term` with information $(J, \eta)$; then
    $D \leftarrow M (D + \Sigma_\delta c) - s$ and $E \leftarrow M \Sigma_\delta M^\top + K$
    with `moves` $M = F L^n$, `shifts` $s = G \tilde v_j$ and `jumps`
    $K = \bar S G G^\top$ (the identity and zeros where no gap follows). An empty
    segment has $J = 0$ exactly, so its factorisation is of $I$ and its term 0 (a branch
    to skip it saved nothing measurable). The reverse pass is written by hand:
    automatic differentiation of the scan cost about three times its forward pass.
    """
    return _excess_forward(E0, moves, J, eta, shifts, jumps)[0]


def _excess_forward(E0, moves, J, eta, shifts, jumps):
    d = E0.shape[-1]

    def step(carry, inputs):
        D, E = carry
        move, J_k, eta_k, shift, jump = inputs
        log_det, cov, inverse = _conditioned_excess_forward(E, J_k)
        term, c, shift_c = _quadratic_terms(log_det, cov, D, J_k, eta_k)
        mean = D + shift_c
        D_next = matvec(move, mean) - shift
        E_next = symmetrize(matmul(matmul(move, cov), move.T)) + jump
        return (D_next, E_next), (term, (D, c, shift_c, mean, cov, inverse))

    init = (jnp.zeros(d, E0.dtype), E0)
    _, (terms, saved) = jax.lax.scan(step, init, (moves, J, eta, shifts, jumps))
    return terms, saved


def _excess_fwd(E0, moves, J, eta, shifts, jumps):
    terms, saved = _excess_forward(E0, moves, J, eta, shifts, jumps)
    return terms, (moves, J, eta, saved)


def _excess_bwd(residuals, terms_bar):
    moves, J, eta, saved = residuals
    d = moves.shape[-1]

    def back(carry, inputs):
        D_next_bar, E_next_bar = carry
        move, J_k, eta_k, t, (D, c, shift_c, mean, cov, inverse) = inputs
        # E' = sym(M cov M^T) + K and D' = M mean - s
        X = symmetrize(E_next_bar)
        move_bar = 2.0 * matmul(matmul(X, move), cov) + jnp.outer(D_next_bar, mean)
        cov_bar = matmul(matmul(move.T, X), move)
        mean_bar = matvec(move.T, D_next_bar)
        # mean = D + shift_c, term = log_det + D J D - 2 D eta - c shift_c
        shift_c_bar = mean_bar - t * c
        D_bar = mean_bar + t * (2.0 * matvec(J_k, D) - 2.0 * eta_k)
        eta_bar = -2.0 * t * D
        J_bar = t * jnp.outer(D, D)
        # shift_c = cov c, c = eta - J D
        cov_bar = cov_bar + jnp.outer(shift_c_bar, c)
        c_bar = matvec(cov, shift_c_bar) - t * shift_c
        eta_bar = eta_bar + c_bar
        J_bar = J_bar - jnp.outer(c_bar, D)
        D_bar = D_bar - matvec(J_k, c_bar)
        # (log_det, cov) from (E, J): `_conditioned_excess_bwd` (an empty segment has
        # inverse I and J = 0, where the same formulas give E_bar = sym(cov_bar)).
        E_bar, J_from_cov = _conditioned_excess_bwd((J_k, cov, inverse), (t, cov_bar))
        return (D_bar, E_bar), (move_bar, J_bar + J_from_cov, eta_bar, -D_next_bar, E_next_bar)

    init = (jnp.zeros(d, moves.dtype), jnp.zeros((d, d), moves.dtype))
    (_, E0_bar), grads = jax.lax.scan(back, init, (moves, J, eta, terms_bar, saved), reverse=True)
    return (E0_bar, *grads)


_excess_recursion.defvjp(_excess_fwd, _excess_bwd)


def _few(mask, size: int, *arrays):
    """The positions where `mask` holds (at most `size`, static) and the arrays there.

    Spare room is filled with the out-of-range position `len(mask)`: updates scattered
    there with `mode="drop"` vanish, and the arrays' values read there (clipped to the
    last entry) are never used.
    """
    positions = jnp.nonzero(mask, size=size, fill_value=mask.shape[0])[0]
    return positions, *(jnp.take(a, positions, mode="clip") for a in arrays)


def _matrix_powers(M: Float[Array, "d d"], count: int) -> Float[Array, "n d d"]:
    """$M^i$ for $i <$ `count`, by doubling."""
    powers, step = jnp.eye(M.shape[0], dtype=M.dtype)[None], M
    while powers.shape[0] < count:
        powers = jnp.concatenate([powers, powers @ step])
        step = step @ step
    return powers[:count]


def gap_terms(
    F: Float[Array, "d d"],
    G: Float[Array, " d"],
    L: Float[Array, "d d"],
    S_bar: Float[Array, ""],
    rows: Float[Array, "T d"],
    v: Float[Array, " T"],
    missing: Bool[Array, " T"],
    end,
    initial_excess: Float[Array, "d d"],
    max_gaps: int,
) -> Float[Array, " k"]:
    r"""Each segment's bracketed terms that involve $D$ and $E$ (module docstring).

    Args:
        F: the transition matrix.
        G: the steady filter's gain.
        L: its closed loop, $F - G H$.
        S_bar: its innovation variance.
        rows: $w_t = H L^t$ for $t < T$.
        v: the steady innovations $\tilde v$ of the filled series, 0 from `end` on.
        missing: the gaps: missing steps before `end`.
        end: one past the last observed step (traced).
        initial_excess: $P_0 - \bar P$.
        max_gaps: the most gaps the scan has room for (static, at least 1).

    Returns:
        One term per segment (`max_gaps + 1`), 0 for the empty ones; NaN everywhere if
        there are more than `max_gaps` gaps.
    """
    T, d = rows.shape
    dtype = v.dtype
    steps = jnp.arange(T)
    present = jnp.where(~missing, steps, T)
    # The first step at or after t that is not missing, and the first that is.
    next_present = jax.lax.cummin(present, reverse=True)
    next_missing = jax.lax.cummin(jnp.where(missing, steps, end), reverse=True)
    run_offset = steps - jax.lax.cummax(jnp.where(~missing, steps, -1)) - 1
    heads = missing & (run_offset % RUN_PIECE == 0)
    count = jnp.sum(heads)
    pieces = jnp.nonzero(heads, size=max_gaps, fill_value=0)[0]
    real = jnp.arange(max_gaps) < count
    sizes = jnp.where(real, jnp.minimum(RUN_PIECE, next_present[pieces] - pieces), 0)
    pieces = jnp.where(real, pieces, end)  # the spare room: empty segments past the end
    starts = jnp.concatenate([jnp.zeros(1, pieces.dtype), pieces + sizes])
    ends = jnp.concatenate([pieces, jnp.reshape(end, (1,)).astype(pieces.dtype)])
    lengths = jnp.maximum(ends - starts, 0)

    B = block_length(T)
    num_blocks = -(-T // B)
    short = _matrix_powers(L, B + 1)  # L^i, i <= B
    long = _matrix_powers(short[B], num_blocks + 1)  # L^(B q), q <= T / B
    outer = rows[:B, :, None] * rows[:B, None, :]
    short_gram = jnp.concatenate([jnp.zeros((1, d, d), dtype), jnp.cumsum(outer, axis=0)])
    block_gram = jnp.einsum("qji,jk,qkl->qil", long[:-1], short_gram[B], long[:-1])
    long_gram = jnp.concatenate([jnp.zeros((1, d, d), dtype), jnp.cumsum(block_gram, axis=0)])
    # A segment of n = q B + r steps has L^n = L^r L^(qB) and Y_n = Y_(qB) + L^(qB)' Y_r
    # L^(qB). Segments of B steps or more are disjoint, so there are at most T // B of them:
    # only they take the products (taken for every segment, they and their gradients were
    # 7-16% of the value and gradient at 5% gaps of 10^4 steps, docs/benchmarks.md).
    q, rem = lengths // B, lengths % B
    longer, q_long, rem_long = _few(q > 0, T // B, q, rem)
    powers = short[rem].at[longer].set(short[rem_long] @ long[q_long], mode="drop")
    grams_long = long_gram[q_long] + jnp.einsum(
        "kji,kjl,klm->kim", long[q_long], short_gram[rem_long], long[q_long]
    )
    grams = short_gram[rem].at[longer].set(grams_long, mode="drop")

    # eta: sums cut at each segment's end, so that no long sum is differenced against
    # another (float32 lost 2e-5 of the log-likelihood that way). Per block, the sum from
    # its first step to the end of that step's segment, by a reverse scan over blocks;
    # then per segment a window up to the next block boundary, plus that boundary's sum.
    lags = jnp.arange(B)
    padded = jnp.concatenate([v, jnp.zeros(num_blocks * B - T + 2 * B, dtype)])
    block_starts = jnp.arange(num_blocks) * B
    block_ends = next_missing[jnp.minimum(block_starts, T - 1)]
    inside = lags[None, :] < (block_ends - block_starts)[:, None]
    block_sums = jnp.where(inside, padded[: num_blocks * B].reshape(num_blocks, B), 0.0)
    block_sums = block_sums @ rows[:B]
    continues = block_ends >= block_starts + B
    step_back = short[B].T

    def back(later, inputs):
        block_sum, go_on = inputs
        here = block_sum + jnp.where(go_on, step_back @ later, 0.0)
        return here, here

    _, boundary = jax.lax.scan(back, jnp.zeros(d, dtype), (block_sums, continues), reverse=True)
    boundary = jnp.concatenate([boundary, jnp.zeros((2, d), dtype)])
    next_boundary = (starts // B + 1) * B
    head = jnp.minimum(ends, next_boundary) - starts
    window = padded[jnp.minimum(starts, T)[:, None] + lags[None, :]]
    window = jnp.where(lags[None, :] < head[:, None], window, 0.0)
    # A segment that runs past its block's boundary adds that boundary's sum moved back to
    # its start. A boundary lies inside one segment at most, so at most T / B segments do.
    tailed, tail_starts, tail_boundaries = _few(
        ends > next_boundary, num_blocks, starts, next_boundary
    )
    tail = jnp.einsum(
        "kji,kj->ki", short[tail_boundaries - tail_starts], boundary[tail_starts // B + 1]
    )
    projections = (window @ rows[:B]).at[tailed].add(tail, mode="drop")

    # A piece of r gaps after a segment moves the state by F^r and adds its jump and
    # shift. After the last segment (and through the empty spare room) nothing moves, so
    # nothing grows there.
    followed = jnp.concatenate([real, jnp.zeros(1, bool)])
    sizes = jnp.concatenate([sizes, jnp.zeros(1, sizes.dtype)])
    eye = jnp.eye(d, dtype=dtype)
    F_powers = _matrix_powers(F, RUN_PIECE + 1)  # F^r, r <= RUN_PIECE
    F_G = F_powers[:RUN_PIECE] @ G  # F^i G
    inflow = jnp.cumsum(F_G[:, :, None] * F_G[:, None, :], axis=0)
    inflow = jnp.concatenate([jnp.zeros((1, d, d), dtype), inflow])  # sum_{i<r} F^i G G' F^i'
    moves = jnp.where(followed[:, None, None], F_powers[sizes] @ powers, eye)
    jumps = jnp.where(followed[:, None, None], S_bar * inflow[sizes], 0.0)
    # sum_{i<r} F^(r-1-i) G v_{j+i}: the filled steady filter's innovations in the piece.
    piece_lags = jnp.arange(RUN_PIECE)
    at_gaps = padded[jnp.minimum(ends, T)[:, None] + piece_lags[None, :]]
    at_gaps = jnp.where(piece_lags[None, :] < sizes[:, None], at_gaps, 0.0)
    weights = F_G[jnp.clip(sizes[:, None] - 1 - piece_lags[None, :], 0, RUN_PIECE - 1)]
    shifts = jnp.where(followed[:, None], jnp.einsum("ki,kid->kd", at_gaps, weights), 0.0)
    terms = _excess_recursion(
        initial_excess, moves, grams / S_bar, projections / S_bar, shifts, jumps
    )
    return jnp.where(count <= max_gaps, terms, jnp.nan)
