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
    return jax.lax.while_loop(keep_going, body, init)[2]


def _riccati_fixed_point_fwd(F, Q, H, r):
    P_bar = _solve_riccati(F, Q, H, r)
    return P_bar, (F, Q, H, r, P_bar)


def _riccati_fixed_point_bwd(residuals, cotangent):
    F, Q, H, r, P_bar = residuals
    s = P_bar @ H
    L = F - jnp.outer(F @ s, H) / (H @ s + r)

    def smith(_, state):
        X, A = state
        return X + A @ X @ A.T, A @ A

    W, _ = jax.lax.fori_loop(0, 64, smith, (cotangent, L.T))
    _, pullback = jax.vjp(lambda *args: riccati_step(P_bar, *args), F, Q, H, r)
    grads = pullback(W)
    # No stabilising solution: the steady path was never taken, so no gradient flows here.
    usable = jnp.all(jnp.isfinite(W))
    return tuple(jnp.where(usable, g, 0.0) for g in grads)


riccati_fixed_point.defvjp(_riccati_fixed_point_fwd, _riccati_fixed_point_bwd)
