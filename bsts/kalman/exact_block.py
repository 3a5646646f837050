r"""One block of exact Kalman steps, with a hand-written reverse-mode adjoint.

The forward step is the filter of `bsts.kalman.steps` with the covariance update written
as $P - s s^\top / S$, $s = P H^\top$ (symmetrised after the prediction). The adjoint is
the transcription of that step in reverse; it is checked against automatic
differentiation of the exact filter in the tests.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float

from bsts.kalman.state_space import StateSpace
from bsts.kalman.steps import LOG_2PI, symmetrize
from bsts.kalman.transition import Transition

__all__ = ["exact_block", "exact_log_likelihood"]


def _exact_step(transition, m, P, u_t, observed_t, F, Q, H, r):
    r"""One exact filter step with the covariance update $P - s s^\top / S$.

    `observed_t` is 0.0 or 1.0; multiplying by it (rather than selecting) keeps the
    hand-written adjoint below a plain transcription of this function.
    """
    s = P @ H
    S = H @ s + r
    v = u_t - H @ m
    ll = observed_t * (-0.5) * (LOG_2PI + jnp.log(S) + v * v / S)
    m_f = m + observed_t * s * (v / S)
    P_f = P - observed_t * jnp.outer(s, s / S)
    m_next = transition.apply(F, m_f)
    return m_next, symmetrize(transition.sandwich(F, P_f) + Q), ll, (s, S, v, m_f, P_f)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def exact_block(transition: Transition, m, P, u_block, mask_block, F, Q, H, r):
    """Run `_exact_step` over one block; returns `(log_likelihood, m_end, P_end)`.

    Reverse mode uses a hand-written adjoint (below) that recomputes the block's forward
    pass and then runs the reverse recursion: about a third of the cost of differentiating
    the scan automatically, and nothing stored between blocks but their inputs.
    """
    return _exact_block_forward(transition, m, P, u_block, mask_block, F, Q, H, r)[:3]


def _exact_block_forward(transition, m, P, u_block, mask_block, F, Q, H, r):
    def step(carry, inputs):
        m, P = carry
        m_next, P_next, ll, _ = _exact_step(transition, m, P, *inputs, F, Q, H, r)
        return (m_next, P_next), (ll, m, P)

    (m_end, P_end), (ll, means, covs) = jax.lax.scan(
        step, (m, P), (u_block, mask_block.astype(u_block.dtype))
    )
    return ll, m_end, P_end, means, covs


def _exact_block_fwd(transition, m, P, u_block, mask_block, F, Q, H, r):
    out = exact_block(transition, m, P, u_block, mask_block, F, Q, H, r)
    return out, (m, P, u_block, mask_block, F, Q, H, r)


def _exact_block_bwd(transition, residuals, cotangents):
    m, P, u_block, mask_block, F, Q, H, r = residuals
    ll_bar, m_end_bar, P_end_bar = cotangents
    *_, means, covs = _exact_block_forward(transition, m, P, u_block, mask_block, F, Q, H, r)
    observed = mask_block.astype(u_block.dtype)

    def step_back(carry, inputs):
        m_next_bar, P_next_bar, F_bar, Q_bar, H_bar, r_bar = carry
        m, P, u_t, o, g = inputs
        _, _, _, (s, S, v, m_f, P_f) = _exact_step(transition, m, P, u_t, o, F, Q, H, r)
        # P_next = sym(F P_f F^T + Q), m_next = F m_f
        P_next_bar = symmetrize(P_next_bar)
        Q_bar = Q_bar + P_next_bar
        if not transition.is_static:  # a concrete F needs no cotangent
            F_bar = F_bar + 2.0 * (P_next_bar @ F) @ P_f + jnp.outer(m_next_bar, m_f)
        P_f_bar = transition.sandwich_transposed(F, P_next_bar)
        m_f_bar = transition.apply_transposed(F, m_next_bar)
        # m_f = m + o s v / S and P_f = P - o s s^T / S
        gain_dot = m_f_bar @ s
        P_f_s = P_f_bar @ s
        s_bar = o * (m_f_bar * (v / S) - 2.0 * P_f_s / S)
        v_bar = o * (gain_dot / S - g * v / S)
        S_bar = o * ((s @ P_f_s - gain_dot * v) / (S * S) - 0.5 * g * (1.0 / S - v * v / (S * S)))
        # v = u - H m, S = H s + r, s = P H
        s_bar = s_bar + S_bar * H
        m_bar = m_f_bar - v_bar * H
        P_bar = P_f_bar + jnp.outer(s_bar, H)
        H_bar = H_bar - v_bar * m + S_bar * s + P @ s_bar
        return (m_bar, P_bar, F_bar, Q_bar, H_bar, r_bar + S_bar), v_bar

    init = (
        m_end_bar,
        P_end_bar,
        jnp.zeros_like(F),
        jnp.zeros_like(Q),
        jnp.zeros_like(H),
        jnp.zeros_like(r),
    )
    (m_bar, P_bar, F_bar, Q_bar, H_bar, r_bar), u_bar = jax.lax.scan(
        step_back, init, (means, covs, u_block, observed, ll_bar), reverse=True
    )
    mask_bar = np.zeros(mask_block.shape, jax.dtypes.float0)
    return m_bar, P_bar, u_bar, mask_bar, F_bar, Q_bar, H_bar, r_bar


exact_block.defvjp(_exact_block_fwd, _exact_block_bwd)


def exact_log_likelihood(
    ssm: StateSpace, y: Float[Array, " T"], observed: Bool[Array, " T"]
) -> Float[Array, ""]:
    """The total log-likelihood by the exact filter, as one block: constant dynamics only.

    Equal to the sequential filter's sum, but its gradient runs the hand-written adjoint:
    2-3x faster than differentiating the scan, and only the inputs are stored. Used where
    the closed form cannot run (gaps not known at trace time, no stabilising steady state).

    Args:
        ssm: the model; `ssm.has_constant_dynamics` must be true.
        y: NaN-free observations.
        observed: the mask of observed steps.
    """
    F = ssm.transition_matrix
    u = jnp.broadcast_to(y - ssm.observation_offset, y.shape)
    ll, _, _ = exact_block(
        Transition(F),
        ssm.initial_mean,
        symmetrize(ssm.initial_cov),
        u,
        observed,
        F,
        ssm.transition_cov,
        ssm.observation_matrix,
        ssm.observation_var,
    )
    return jnp.sum(ll)
