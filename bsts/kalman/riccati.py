"""The steady state of the Kalman filter: the fixed point of the Riccati recursion."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from bsts.kalman.steps import symmetrize

__all__ = ["riccati_fixed_point", "riccati_step", "steady_state_holds"]

# A Riccati step may move a steady state's entries by this many eps of its largest.
_ACCEPTED = 1e3


def riccati_step(P, F, Q, H, r):
    r"""One predicted-covariance step: $F (P - P H^\top H P / (H P H^\top + r)) F^\top + Q$."""
    s = P @ H
    return symmetrize(F @ (P - jnp.outer(s, s) / (H @ s + r)) @ F.T + Q)


@jax.custom_vjp
def riccati_fixed_point(F, Q, H, r) -> Float[Array, "d d"]:
    r"""The steady-state predicted covariance $\bar P = \mathcal R(\bar P)$.

    Solved by the structure-preserving doubling algorithm (Chu, Fan & Lin, 2005), whose
    k-th iterate equals $2^k$ Riccati steps from $P = 0$, with r floored where it is tiny
    next to the process variance, and finished by Newton's method where the result fails
    `steady_state_holds` (Hewer's iteration). Differentiated implicitly: with
    $L = F(I - \bar K H)$ the derivative of the Riccati map at $\bar P$ is
    $X \mapsto L X L^\top$, so the cotangent is pulled back through
    $W = \sum_k (L^\top)^k \bar P^* L^k$ (Smith doubling). Returns non-finite values when
    no stabilising solution exists; callers must then not use it.
    """
    return _solve_riccati(F, Q, H, r)


def _solve_riccati(F, Q, H, r, max_iterations: int = 100):
    dim = F.shape[0]
    eye = jnp.eye(dim, dtype=F.dtype)
    eps = jnp.finfo(F.dtype).eps
    tolerance = 16 * eps
    # The doubling starts from H H' / r, whose round-off relative to the solution grows as
    # 1 / r: at a nearly exact observation (the half-hourly electricity series' MAP has
    # r = 6.5e-13 in float32) its solution failed `steady_state_holds`. It runs with r
    # floored at sqrt(eps) of the process variance the observation sees, and Newton steps
    # below take the solution to the true r.
    r_doubling = jnp.maximum(r, jnp.sqrt(eps) * (H @ Q @ H))

    def body(state):
        A, G, X, _, k = state
        # One inverse, not two solves: independent LAPACK calls have hung XLA's CPU runtime.
        W_inv = jnp.linalg.inv(eye + G @ X)
        A_W = A @ W_inv
        X_next = symmetrize(X + A.T @ X @ W_inv @ A)
        G_next = symmetrize(G + A_W @ G @ A.T)
        change = _relative_change(X_next, X)
        return A_W @ A, G_next, X_next, change, k + 1

    def keep_going(state):
        *_, change, k = state
        return (change > tolerance) & (k < max_iterations)  # NaN compares False: stop

    init = (F.T, jnp.outer(H, H) / r_doubling, symmetrize(Q), jnp.array(jnp.inf, F.dtype), 0)
    A, _, X, _, _ = jax.lax.while_loop(keep_going, body, init)
    # A is (L^T)^(2^k): it vanishes exactly when the solution is stabilising. A fixed point
    # that is not (deterministic modes, Q singular) is a valid steady state, but its
    # derivative diverges, so the implicit gradient would be round-off times infinity.
    # Entries below 1 / (2d) bound the spectral norm of L^(2^k) by 1/2, so rho(L) < 1: a
    # certificate that holds wherever the loop stopped. The loop stops once X stops
    # changing, at |A|^2 near the tolerance (|A| near 4 sqrt(eps)), so demanding
    # |A| < sqrt(eps) rejected slowly contracting but stabilising solutions (a slope with
    # a small variance): in float32 one gradient in ten fell back to the sequential filter.
    stabilising = jnp.max(jnp.abs(A)) < 0.5 / dim
    # The implicit gradient sums powers of L computed from X in working precision. Where
    # a mode contracts by less than the precision resolves (1 - 1e-8 is 1 in float32), the
    # doubling above still certifies X while those powers never vanish, and the gradient
    # would come out non-finite (zeroed). Such an X is not used.
    X = _newton_steps(X, F, Q, H, r)
    _, vanishing = _powers_of(_closed_loop(X, F, H, r).T)
    return jnp.where(stabilising & vanishing, X, jnp.nan)


def steady_state_holds(P_bar, F, Q, H, r):
    r"""Whether $\bar P$ is a fixed point of the Riccati step to working precision.

    The test every steady-state path applies before using $\bar P$: the step moves no
    entry by more than $10^3 \epsilon$ of the largest. NaN (no solution) fails it.
    """
    return _residual(P_bar, F, Q, H, r) <= _ACCEPTED * _scale(P_bar)


def _residual(P, F, Q, H, r):
    return jnp.max(jnp.abs(riccati_step(P, F, Q, H, r) - P))


def _scale(P):
    return jnp.finfo(P.dtype).eps * jnp.max(jnp.abs(P))


def _newton_steps(P, F, Q, H, r, max_steps: int = 6):
    r"""Newton's method on the Riccati equation (Hewer's iteration), where `P` fails it.

    With the gain $K$ of the current $P$ and $L = F - K H$, the next iterate solves the
    Stein equation $P' = L P' L^\top + Q + r K K^\top$ (Smith doubling). From a
    stabilising gain the iterates converge quadratically to the stabilising solution, and
    nothing divides by r. A solution that passes `steady_state_holds` takes no step; one
    found with a floored r takes one to three (measured on the electricity series).
    """

    def step(state):
        P, k = state
        s = P @ H
        gain = F @ s / (H @ s + r)
        loop = F - jnp.outer(gain, H)
        P_next, _ = _powers_of(loop, Q + r * jnp.outer(gain, gain))
        return symmetrize(P_next), k + 1

    def keep_going(state):
        P, k = state
        # In only where the acceptance test fails; once in, on to a tenth of it (Newton's
        # limit is about a thousandth). NaN compares False: stop.
        limit = jnp.where(k == 0, _ACCEPTED, 0.1 * _ACCEPTED) * _scale(P)
        return (_residual(P, F, Q, H, r) > limit) & (k < max_steps)

    P, _ = jax.lax.while_loop(keep_going, step, (P, 0))
    return P


def _closed_loop(P_bar, F, H, r):
    r"""$L = F (I - \bar K H)$, the steady filter's transition."""
    s = P_bar @ H
    return F - jnp.outer(F @ s, H) / (H @ s + r)


def _powers_of(L_T, cotangent=None):
    r"""$\sum_k (L^\top)^k X L^k$ by Smith doubling, and whether the powers vanished.

    After k doublings the power is $(L^\top)^{2^k}$; once its entries are below
    $\sqrt{\epsilon}$ the terms still to come are below $\epsilon$ relative. For a stable
    L this takes about $\log_2(\log \epsilon / \log \rho(L))$ iterations (14 for a
    spectral radius of 0.997), and never more than 64.
    """
    small = jnp.sqrt(jnp.finfo(L_T.dtype).eps)
    X = jnp.zeros_like(L_T) if cotangent is None else cotangent

    def smith(state):
        X, A, k = state
        if cotangent is not None:
            X = X + A @ X @ A.T
        return X, A @ A, k + 1

    def keep_going(state):
        _, A, k = state
        return (jnp.max(jnp.abs(A)) > small) & (k < 64)  # NaN compares False: stop

    X, A, _ = jax.lax.while_loop(keep_going, smith, (X, L_T, 0))
    return X, jnp.max(jnp.abs(A)) <= small


def _relative_change(X_next, X):
    r"""Largest change of an entry relative to its own scale, $\sqrt{X_{ii} X_{jj}}$.

    Relative to the largest entry instead, the loop stopped once the well-determined states
    had converged, long before a nearly deterministic block (a seasonal or slope variance
    near zero, whose steady state takes about $\sigma_\varepsilon / \sigma$ steps to
    reach) had: its modes then failed the certificate and every such evaluation fell back
    to the exact filter (about 60x slower at T = 10^4: `benchmarks/long_series.py
    --gradients`).
    """
    scale = jnp.sqrt(jnp.abs(jnp.diagonal(X_next)))
    scale = jnp.outer(scale, scale)
    change = jnp.abs(X_next - X)
    tiny = jnp.finfo(X.dtype).tiny
    return jnp.max(jnp.where(scale > tiny, change / jnp.maximum(scale, tiny), change))


def _riccati_fixed_point_fwd(F, Q, H, r):
    P_bar = _solve_riccati(F, Q, H, r)
    return P_bar, (F, Q, H, r, P_bar)


def _riccati_fixed_point_bwd(residuals, cotangent):
    F, Q, H, r, P_bar = residuals
    W, _ = _powers_of(_closed_loop(P_bar, F, H, r).T, cotangent)
    _, pullback = jax.vjp(lambda *args: riccati_step(P_bar, *args), F, Q, H, r)
    grads = pullback(W)
    # No stabilising solution: the steady path was never taken, so no gradient flows here.
    usable = jnp.all(jnp.isfinite(W)) & jnp.all(jnp.isfinite(P_bar))
    return tuple(jnp.where(usable, g, 0.0) for g in grads)


riccati_fixed_point.defvjp(_riccati_fixed_point_fwd, _riccati_fixed_point_bwd)
