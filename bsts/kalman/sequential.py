"""The sequential Kalman filter: one `lax.scan` step per observation (see `steps`)."""

from __future__ import annotations

import jax
from jaxtyping import Array, Bool, Float

from bsts.kalman.state_space import StateSpace, split_time_varying
from bsts.kalman.steps import FilterResult, predict, symmetrize, update

__all__ = ["sequential_filter"]


def sequential_filter(
    ssm: StateSpace, y: Float[Array, " T"], observed: Bool[Array, " T"]
) -> FilterResult:
    """Filter step by step; `y` must already be NaN-free with `observed` as its mask."""
    varying, constant = split_time_varying(ssm)

    def step(carry, inputs):
        m, P = carry
        y_t, observed_t, per_step = inputs
        p = {**constant, **per_step}
        m_f, P_f, ll, _ = update(
            m,
            P,
            y_t,
            observed_t,
            p["observation_matrix"],
            p["observation_offset"],
            p["observation_var"],
        )
        m_next, P_next = predict(m_f, P_f, p["transition_matrix"], p["transition_cov"])
        return (m_next, P_next), (ll, m_f, P_f, m, P)

    init = (ssm.initial_mean, symmetrize(ssm.initial_cov))
    _, outputs = jax.lax.scan(step, init, (y, observed, varying))
    return FilterResult(*outputs)
