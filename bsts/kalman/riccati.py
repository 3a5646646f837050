"""The steady state of the Kalman filter: the fixed point of the Riccati recursion."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from bsts.kalman.steps import symmetrize

__all__ = ["riccati_fixed_point", "riccati_step"]


def riccati_step(P, F, Q, H, r):
    r"""One predicted-covariance step: $F (P - P H^\top H P / (H P H^\top + r)) F^\top + Q$."""
    s = P @ H
    return symmetrize(F @ (P - jnp.outer(s, s) / (H @ s + r)) @ F.T + Q)


@jax.custom_vjp
def riccati_fixed_point(F, Q, H, r) -> Float[Array, "d d"]:
    r"""The steady-state predicted covariance $\bar P = \mathcal R(\bar P)$.

    Solved by the structure-preserving doubling algorithm (Chu, Fan & Lin, 2005), whose
    k-th iterate equals $2^k$ Riccati steps from $P = 0$. Differentiated implicitly: with
    $L = F(I - \bar K H)$ the derivative of the Riccati map at $\bar P$ is
    $X \mapsto L X L^\top$, so the cotangent is pulled back through
    $W = \sum_k (L^\top)^k \bar P^* L^k$ (Smith doubling). Returns non-finite values when
    no stabilising solution exists; callers must then not use it.
    """
    return _solve_riccati(F, Q, H, r)


def _solve_riccati(F, Q, H, r, max_iterations: int = 100):
    dim = F.shape[0]
    eye = jnp.eye(dim, dtype=F.dtype)
    tolerance = 16 * jnp.finfo(F.dtype).eps

    def body(state):
        A, G, X, _, k = state
        # One inverse, not two solves: independent LAPACK calls have hung XLA's CPU runtime.
        W_inv = jnp.linalg.inv(eye + G @ X)
        A_W = A @ W_inv
        X_next = symmetrize(X + A.T @ X @ W_inv @ A)
        G_next = symmetrize(G + A_W @ G @ A.T)
        change = jnp.max(jnp.abs(X_next - X)) / jnp.maximum(jnp.max(jnp.abs(X_next)), 1e-300)
        return A_W @ A, G_next, X_next, change, k + 1

    def keep_going(state):
        *_, change, k = state
        return (change > tolerance) & (k < max_iterations)  # NaN compares False: stop

    init = (F.T, jnp.outer(H, H) / r, symmetrize(Q), jnp.array(jnp.inf, F.dtype), 0)
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
    return jnp.where(stabilising, X, jnp.nan)


def _riccati_fixed_point_fwd(F, Q, H, r):
    P_bar = _solve_riccati(F, Q, H, r)
    return P_bar, (F, Q, H, r, P_bar)


def _riccati_fixed_point_bwd(residuals, cotangent):
    F, Q, H, r, P_bar = residuals
    s = P_bar @ H
    L = F - jnp.outer(F @ s, H) / (H @ s + r)

    # After k doublings A = (L^T)^(2^k); once its entries are below sqrt(eps) the terms still
    # to come are below eps relative. L is stable here, so this takes about
    # log2(log(eps) / log(rho(L))) iterations (14 for a spectral radius of 0.997), not 64.
    small = jnp.sqrt(jnp.finfo(L.dtype).eps)

    def smith(state):
        X, A, k = state
        return X + A @ X @ A.T, A @ A, k + 1

    def keep_going(state):
        _, A, k = state
        return (jnp.max(jnp.abs(A)) > small) & (k < 64)  # NaN compares False: stop

    W, _, _ = jax.lax.while_loop(keep_going, smith, (cotangent, L.T, 0))
    _, pullback = jax.vjp(lambda *args: riccati_step(P_bar, *args), F, Q, H, r)
    grads = pullback(W)
    # No stabilising solution: the steady path was never taken, so no gradient flows here.
    usable = jnp.all(jnp.isfinite(W)) & jnp.all(jnp.isfinite(P_bar))
    return tuple(jnp.where(usable, g, 0.0) for g in grads)


riccati_fixed_point.defvjp(_riccati_fixed_point_fwd, _riccati_fixed_point_bwd)
