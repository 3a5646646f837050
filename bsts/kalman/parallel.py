r"""The parallel Kalman filter: an associative scan of O(log T) depth.

Following Särkkä & García-Fernández (2021), each step $t$ is summarised by an element
$(A, b, C, \eta, J)$ that represents the Gaussian $p(x_t \mid x_{t-1}, y_t)$ together with
the information $y_t$ carries about $x_{t-1}$. With $S = H Q H^\top + r$ and
$K = Q H^\top / S$ (where $F, Q$ are the transition into step $t$), an observed step has

$$
A = (I - K H) F, \quad b = K u, \quad C = (I - K H) Q (I - K H)^\top + r K K^\top,
\quad \eta = F^\top H^\top u / S, \quad J = F^\top H^\top H F / S,
$$

with $u = y_t - d_t$; a missing step has $A = F$, $b = 0$, $C = Q$, $\eta = 0$, $J = 0$.
The first step folds in the prior: $A = 0$ and $(b, C)$ are the filtered moments of $x_0$.
Two elements combine as

$$
\begin{aligned}
A_{ij} &= A_j M A_i, & b_{ij} &= A_j M (b_i + C_i \eta_j) + b_j, &
C_{ij} &= A_j M C_i A_j^\top + C_j, \\
\eta_{ij} &= A_i^\top N (\eta_j - J_j b_i) + \eta_i, & J_{ij} &= A_i^\top N J_j A_i + J_i,
\end{aligned}
$$

where $M = (I + C_i J_j)^{-1}$ and $N = (I + J_j C_i)^{-1} = M^\top$. The prefix
combinations give the filtered moments; the predicted moments and the per-step
log-likelihood then follow for all steps at once.

The scan runs on deviations from the prior mean path $\bar m_t = F_{t-1} \bar m_{t-1}$,
$\bar m_0 = m_0$ (exact: $d_t$ absorbs $H \bar m_t$), because $b = K u$ carries the size of
$u$ and the combinations cancel terms of that size: on a series far from zero float32 lost
too many digits (the CO2 float32 test failed by 1.2e-3 relative).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float

from bsts.kalman.state_space import StateSpace, split_time_varying
from bsts.kalman.steps import LOG_2PI, FilterResult, power_rows, symmetrize, update

__all__ = ["parallel_filter"]


def _step_element(F, Q, H, d, r, y_t, observed_t):
    """The element of one step after the first (transition from the previous step)."""
    dim = F.shape[-1]
    eye = jnp.eye(dim, dtype=F.dtype)
    u = y_t - d
    HF = H @ F
    S = H @ Q @ H + r
    K = Q @ H / S
    I_KH = eye - jnp.outer(K, H)
    element = (
        I_KH @ F,
        K * u,
        symmetrize(I_KH @ Q @ I_KH.T + r * jnp.outer(K, K)),
        HF * (u / S),
        jnp.outer(HF, HF) / S,
    )
    missing = (F, jnp.zeros(dim, F.dtype), Q, jnp.zeros(dim, F.dtype), jnp.zeros_like(F))
    return tuple(jnp.where(observed_t, e, z) for e, z in zip(element, missing, strict=True))


def _combine(first, second):
    """Combine element `first` (earlier steps) with `second` (later steps)."""
    A_i, b_i, C_i, eta_i, J_i = first
    A_j, b_j, C_j, eta_j, J_j = second
    eye = jnp.eye(A_i.shape[-1], dtype=A_i.dtype)
    # M = (I + C_i J_j)^{-1}, and N = (I + J_j C_i)^{-1} = M^T since C, J are symmetric. One
    # small inverse shares the factorisation; two batched solves here also hung XLA's CPU
    # runtime on repeated calls for T >= ~500, d = 13 (jax 0.10.2).
    M = jnp.linalg.inv(eye + C_i @ J_j)
    AjM = A_j @ M
    A = AjM @ A_i
    b = AjM @ (b_i + C_i @ eta_j) + b_j
    C = symmetrize(AjM @ C_i @ A_j.T + C_j)
    AiT_N = (M @ A_i).T
    eta = AiT_N @ (eta_j - J_j @ b_i) + eta_i
    J = symmetrize(AiT_N @ J_j @ A_i + J_i)
    return A, b, C, eta, J


def _prior_mean_path(m0, F_steps, time_varying: bool):
    r"""$F_{t-1} \cdots F_0 m_0$ for every step, in O(log T) depth.

    A constant F needs only its powers, by doubling (matrix-vector work); a time-varying
    one the prefix products, by an associative scan.
    """
    T = F_steps.shape[0] + 1
    if T == 1:
        return m0[None]
    if not time_varying:
        return power_rows(m0, F_steps[0].T, T)  # rows m0^T (F^T)^t
    products = jax.lax.associative_scan(lambda earlier, later: later @ earlier, F_steps)
    return jnp.concatenate([m0[None], jnp.einsum("tij,j->ti", products, m0)])


def parallel_filter(
    ssm: StateSpace, y: Float[Array, " T"], observed: Bool[Array, " T"]
) -> FilterResult:
    """Filter with an associative scan; `y` must be NaN-free with `observed` as its mask."""
    T = y.shape[0]
    dim = ssm.state_dim
    varying, constant = split_time_varying(ssm)

    def field(name, index):
        return varying[name][index] if name in varying else constant[name]

    def broadcast(name, index):
        value = field(name, index)
        return value if name in varying else jnp.broadcast_to(value, (T - 1, *value.shape))

    F_steps = broadcast("transition_matrix", slice(0, T - 1))
    # Filter deviations from the prior mean path m̄_t = F_{t-1} m̄_{t-1}, m̄_0 = m_0. Each
    # element carries K u; with raw u (a 300 ppm level, say) the scan cancels terms of that
    # size, which float32 cannot afford. Deviations are of the size of the data's variation.
    prior_path = _prior_mean_path(ssm.initial_mean, F_steps, "transition_matrix" in varying)

    def all_steps(name):
        value = field(name, slice(None))
        return value if name in varying else jnp.broadcast_to(value, (T, *value.shape))

    H = all_steps("observation_matrix")
    offset = all_steps("observation_offset") + jnp.einsum("ti,ti->t", H, prior_path)

    later = slice(1, None)
    elements = jax.vmap(_step_element)(
        F_steps,
        broadcast("transition_cov", slice(0, T - 1)),
        broadcast("observation_matrix", later),
        offset[1:],
        broadcast("observation_var", later),
        y[1:],
        observed[1:],
    )
    zero_mean = jnp.zeros_like(ssm.initial_mean)
    m0, P0, _, _ = update(
        zero_mean,
        symmetrize(ssm.initial_cov),
        y[0],
        observed[0],
        field("observation_matrix", 0),
        offset[0],
        field("observation_var", 0),
    )
    first = (
        jnp.zeros((1, dim, dim), m0.dtype),
        m0[None],
        P0[None],
        jnp.zeros((1, dim), m0.dtype),
        jnp.zeros((1, dim, dim), m0.dtype),
    )
    elements = tuple(jnp.concatenate([f, e], axis=0) for f, e in zip(first, elements, strict=True))
    prefix = jax.lax.associative_scan(jax.vmap(_combine), elements)
    filtered_deviation, filtered_cov = prefix[1], prefix[2]

    Q = broadcast("transition_cov", slice(0, T - 1))
    predicted_deviation = jnp.concatenate(
        [zero_mean[None], jnp.einsum("tij,tj->ti", F_steps, filtered_deviation[:-1])]
    )
    predicted_cov = jnp.concatenate(
        [
            symmetrize(ssm.initial_cov)[None],
            symmetrize(jnp.einsum("tij,tjk,tlk->til", F_steps, filtered_cov[:-1], F_steps) + Q),
        ]
    )

    v = y - jnp.einsum("ti,ti->t", H, predicted_deviation) - offset
    S = jnp.einsum("ti,tij,tj->t", H, predicted_cov, H) + all_steps("observation_var")
    log_likelihood = jnp.where(observed, -0.5 * (LOG_2PI + jnp.log(S) + v * v / S), 0.0)
    return FilterResult(
        log_likelihood,
        filtered_deviation + prior_path,
        filtered_cov,
        predicted_deviation + prior_path,
        predicted_cov,
    )
