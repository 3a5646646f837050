r"""A small Equinox LSTM and the two ways `bsts.neural` runs it over a series.

The network reads the covariate sequence $x_{0:T-1}$ and emits a few outputs per step:

$$
(h_t, c_t) = \mathrm{LSTMCell}(x_t, (h_{t-1}, c_{t-1})), \qquad o_t = W h_t + b,
$$

starting from $h_{-1} = c_{-1} = 0$, so $o_t$ depends on $x_{0:t}$ (current and lagged
covariates).

- `run_sequence` runs it over the whole series (`lax.scan`): exact, and what every
  prediction uses.
- `run_windows` is the training layout for long series: the series is cut into $B$
  consecutive windows of $W$ steps, laid out as a batch `(B, W, features)` and run in
  lock-step, so the sequential depth is $W$ instead of $T$. Window $b$ starts from a carried
  state, the state window $b-1$ ended in *at the previous evaluation* (gradients do not flow
  through it: truncated back-propagation through time). With the weights held fixed the carry
  is exact after $B$ evaluations (the state moves on one window per evaluation), so the
  windowed outputs then equal `run_sequence`'s; while the weights move the starting states
  lag by one evaluation per window.
"""

from __future__ import annotations

import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float

__all__ = ["LSTMNetwork", "initial_carry", "num_windows", "run_sequence", "run_windows"]

State = tuple[Float[Array, "*B H"], Float[Array, "*B H"]]


class LSTMNetwork(eqx.Module):
    """An LSTM cell and a linear read-out.

    Args:
        num_inputs: features per step.
        hidden_size: size of the hidden state.
        num_outputs: outputs per step.
        key: PRNG key of the initial weights.
        output_scale: the read-out's initial weights are scaled by this, so an untrained
            network contributes little.
    """

    cell: eqx.nn.LSTMCell
    head: eqx.nn.Linear

    def __init__(self, num_inputs: int, hidden_size: int, num_outputs: int, key, output_scale=0.1):
        cell_key, head_key = jax.random.split(key)
        self.cell = eqx.nn.LSTMCell(num_inputs, hidden_size, key=cell_key)
        head = eqx.nn.Linear(hidden_size, num_outputs, key=head_key)
        self.head = eqx.tree_at(
            lambda m: (m.weight, m.bias), head, (head.weight * output_scale, head.bias * 0.0)
        )

    @property
    def hidden_size(self) -> int:
        """Size of the hidden state."""
        return self.cell.hidden_size

    def __bsts_save__(self) -> dict:
        """What a save file keeps (`bsts.savefile`): the sizes and every weight."""
        return {
            "num_inputs": self.cell.input_size,
            "hidden_size": self.hidden_size,
            "num_outputs": self.head.out_features,
            "leaves": [np.asarray(leaf) for leaf in jax.tree_util.tree_leaves(self)],
        }

    @classmethod
    def __bsts_load__(cls, state: dict) -> LSTMNetwork:
        """The network `__bsts_save__` described, with its weights."""
        sizes = (state["num_inputs"], state["hidden_size"], state["num_outputs"])
        skeleton = cls(*sizes, jax.random.PRNGKey(0))
        leaves = [jnp.asarray(leaf) for leaf in state["leaves"]]
        return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(skeleton), leaves)

    def step(self, state: State, x: Float[Array, " F"]) -> tuple[State, Float[Array, " O"]]:
        """One time step: the new state and the outputs."""
        state = self.cell(x, state)
        return state, self.head(state[0])


def _zeros(network: LSTMNetwork, *batch: int) -> State:
    zeros = jnp.zeros((*batch, network.hidden_size))
    return zeros, zeros


# Jitted so that eager calls (NumPyro traces the model eagerly while setting up SVI and
# NUTS) reuse one compilation per shape instead of compiling the scan each time.
@eqx.filter_jit
def run_sequence(network: LSTMNetwork, x: Float[Array, "T F"]) -> Float[Array, "T O"]:
    """Outputs for every step of the whole sequence, from a zero state."""
    # A closure, not the bound method: scan hashes its function, and a module holding
    # arrays is not hashable.
    _, outputs = jax.lax.scan(lambda s, xt: network.step(s, xt), _zeros(network), x)
    return outputs


def num_windows(num_timesteps: int, window: int) -> int:
    """B: how many windows of `window` steps cover the series (the last one padded)."""
    return math.ceil(num_timesteps / window)


def initial_carry(network: LSTMNetwork, num_timesteps: int, window: int) -> State:
    """Zero starting states for every window, `(B, H)` each."""
    return _zeros(network, num_windows(num_timesteps, window))


@eqx.filter_jit
def run_windows(
    network: LSTMNetwork, x: Float[Array, "T F"], window: int, carry: State
) -> tuple[Float[Array, "T O"], State]:
    """Outputs of the windowed layout, and the carry for the next evaluation.

    Args:
        network: the LSTM.
        x: the whole feature sequence.
        window: W, steps per window.
        carry: each window's starting state, `(B, H)` twice (from `initial_carry`, then from
            the previous call).

    Returns:
        `(outputs, next_carry)`: outputs `(T, O)`; `next_carry[b]` is the state window
        `b - 1` ended in (zero for the first window), with gradients stopped.
    """
    T, F = x.shape
    B = num_windows(T, window)
    # Padding goes at the end, so it never reaches an output that is kept.
    padded = jnp.concatenate([x, jnp.zeros((B * window - T, F), x.dtype)])
    batch = padded.reshape(B, window, F).swapaxes(0, 1)  # (W, B, F): scan over time
    step = jax.vmap(lambda s, xt: network.step(s, xt))
    final, outputs = jax.lax.scan(step, carry, batch)
    outputs = outputs.swapaxes(0, 1).reshape(B * window, -1)[:T]
    zero = _zeros(network, 1)
    next_carry = tuple(
        jax.lax.stop_gradient(jnp.concatenate([z, f[:-1]]))
        for z, f in zip(zero, final, strict=True)
    )
    return outputs, next_carry
