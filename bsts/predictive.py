r"""One posterior draw's predictive of future steps, from any point of a padded series.

The data are the steps before `start`; from there on the series is missing, so the Kalman
filter's predicted moments at the next `horizon` steps are the exact Normal predictive of
the signal plus observation noise given the data. A path of the signal there is drawn by
filtering to the end and simulating forward: the state at `start` from the filter's
predictive $p(x_{start} \mid y_{<start})$, then the transition equation over the horizon,
which is the joint law of the future states given the data (no backward pass over the
history is needed). `start` may be traced, so one compiled program serves series of any
length within a padded bucket (`bsts.batch`).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from bsts.kalman import StateSpace, kalman_filter, simulate

__all__ = ["future_predictive", "program_prng"]


def program_prng():
    """The PRNG setting every compiled bsts program is traced under (a context manager).

    Threefry's partitionable form (JAX's default since 0.5) made XLA spend about 2 s more
    on every program that draws a few thousand normals (a forecast's shocks: 2.3 s against
    0.36 s for 600 x 18 x 13 on the 2-core CPU). It only matters for arrays sharded across
    devices, which these programs never are. Code that must reproduce a program's draws
    outside it (a single series' forecast) splits its keys under the same setting.
    """
    return jax.threefry_partitionable(False)


def future_predictive(
    key: PRNGKeyArray,
    ssm: StateSpace,
    y: Float[Array, " T"],
    start: Int[Array, ""] | int,
    horizon: int,
) -> tuple[Float[Array, " h"], Float[Array, " h"], Float[Array, " h"]]:
    """Predictive of steps `start, ..., start + horizon - 1` for one draw.

    Args:
        key: PRNG key of the simulation smoother.
        ssm: the draw's state-space model over the whole (extended) series.
        y: the series, NaN from `start` on.
        start: the first future step.
        horizon: the number of future steps.

    Returns:
        `(signal, mean, var)`, each `(horizon,)`: a simulated path of the signal
        (everything but observation noise), and the predictive mean and variance of the
        observations (noise included).
    """
    T = y.shape[0]
    filtered = kalman_filter(ssm, y)
    H = jnp.broadcast_to(ssm.observation_matrix, (T, ssm.state_dim))
    offset = jnp.broadcast_to(ssm.observation_offset, (T,))
    noise_var = jnp.broadcast_to(ssm.observation_var, (T,))

    def ahead(values):
        return jax.lax.dynamic_slice_in_dim(values, start, horizon, axis=0)

    H, offset, noise_var = ahead(H), ahead(offset), ahead(noise_var)
    state_mean, state_cov = ahead(filtered.predicted_mean), ahead(filtered.predicted_cov)
    future = ssm.replace(
        transition_matrix=_ahead_if_varying(ssm.transition_matrix, 3, start, horizon),
        transition_cov=_ahead_if_varying(ssm.transition_cov, 3, start, horizon),
        observation_matrix=H,
        observation_offset=offset,
        observation_var=noise_var,
        initial_mean=state_mean[0],
        initial_cov=state_cov[0],
    )
    states, _ = simulate(key, future, horizon)
    signal = jnp.einsum("ti,ti->t", states, H) + offset
    mean = jnp.einsum("ti,ti->t", H, state_mean) + offset
    var = jnp.einsum("ti,tij,tj->t", H, state_cov, H) + noise_var
    return signal, mean, var


def _ahead_if_varying(values, varying_ndim: int, start, horizon: int):
    """The horizon's slice of a time-varying field; a constant field as it is."""
    if jnp.ndim(values) < varying_ndim:
        return values
    return jax.lax.dynamic_slice_in_dim(values, start, horizon, axis=0)
