r"""Neural components: LSTM networks for what the structural part cannot say linearly.

Both components keep the model linear-Gaussian *given the network outputs* (the DeepState
pattern), so the Kalman likelihood stays exact and the structural states are still
integrated out.

- `LSTMEmission` adds a nonlinear, lagged covariate effect $g_t$ to the observation.
- `LSTMTransition` drives the level: a drift $u_t$ and a multiplier $s_t$ on the level's
  innovation scale.

**Weights.** By default the weights are point estimates: registered with
`numpyro.contrib.module.eqx_module` (a `numpyro.param` site `"{name}.network$params"`), learned
by SVI together with the structural posterior, and regularised by a Gaussian weight prior
(weight decay) that enters the objective as a `numpyro.factor` site. With `bayesian=True` the
weights are random (`random_eqx_module`, sites `"{name}.network.<leaf>"`) with that prior, and
every method infers them like any other parameter; this is meant for tiny networks.

**Fitting.** `fit(method="svi")` (or "map") learns point-estimated weights and the
structural posterior together. `fit(method="nuts")` runs two stages: SVI first, for the
weights, then NUTS on the structural parameters with the network frozen at those weights
(`numpyro.handlers.substitute` on the module's param site). The `Posterior` keeps the
learned weights (`Posterior.network_params`), so forecasts, decompositions and saved files
use them.

**Long series.** With `window=W` the SVI objective runs the LSTM on the windowed layout of
`bsts._lstm.run_windows` (batch of windows × W steps × features, starting states carried
across windows from one SVI step to the next); the Kalman likelihood always runs over the
whole series, so the structural states are carried exactly. Everything after training
(NUTS, forecasts, decompositions) runs the network over the whole sequence.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jaxtyping import Array, Float
from numpyro.contrib.module import eqx_from_dict, eqx_module, random_eqx_module

from bsts._lstm import LSTMNetwork, initial_carry, run_sequence, run_windows
from bsts.components import Block, Component, ModelInputs, check_columns

__all__ = ["LSTMEmission", "LSTMTransition", "NeuralComponent"]

# Site names: the weights live under "{name}.network", the window states carried between
# SVI steps (a mutable site, not a parameter) under "{name}.carry".
_CARRY = "carry"
_NETWORK = "network"
# The drift and log-multiplier are bounded so that a wild network cannot make the
# filter's covariances overflow: |log s_t| <= 2, |u_t| <= 1 standardised unit per step.
_LOG_MULTIPLIER_BOUND = 2.0
_DRIFT_BOUND = 1.0


def _weights(module):
    """The module's float arrays (its trainable weights), other leaves None."""
    return eqx.filter(module, eqx.is_inexact_array)


def _with_weights(weights, template):
    """Weights put back into the template's structure."""
    _, static = eqx.partition(template, eqx.is_inexact_array)
    return eqx.combine(weights, static)


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{what} must be a positive integer, got {value!r}")
    return int(value)


class NeuralComponent(Component):
    """Shared machinery: the network, its parameter sites and how it runs.

    Subclasses set `num_outputs` and turn the raw outputs `(T, num_outputs)` into their
    contribution.
    """

    num_outputs = 1

    def __init__(
        self,
        columns,
        hidden_size: int = 4,
        *,
        weight_prior_scale: float = 0.5,
        bayesian: bool = False,
        window: int | None = None,
        seed: int = 0,
        name: str | None = None,
    ):
        super().__init__(name)
        what = type(self).__name__
        self._columns = check_columns(columns, what)
        self.hidden_size = _positive_int(hidden_size, f"{what} hidden_size")
        if (
            isinstance(weight_prior_scale, bool)
            or not isinstance(weight_prior_scale, (int, float, np.number))
            or not weight_prior_scale > 0
            or not np.isfinite(weight_prior_scale)
        ):
            raise ValueError(
                f"{what} weight_prior_scale must be a positive number, got {weight_prior_scale!r}"
            )
        self.weight_prior_scale = float(weight_prior_scale)
        self.bayesian = bool(bayesian)
        self.window = None if window is None else _positive_int(window, f"{what} window")
        if self.window is not None and self.window < 2:
            raise ValueError(f"{what} window must be at least 2 steps, got {window!r}")
        self.template = LSTMNetwork(
            len(self._columns), self.hidden_size, self.num_outputs, jax.random.PRNGKey(seed)
        )

    @property
    def columns(self):
        """Covariate columns the network reads."""
        return list(self._columns)

    @property
    def point_estimated(self) -> bool:
        """Whether the weights are a `numpyro.param` (learned by SVI) rather than random."""
        return not self.bayesian

    def param_sites(self, prefix: str) -> list[str]:
        """The `numpyro.param` site of point-estimated weights, if they are."""
        return [self.param_site(prefix)] if self.point_estimated else []

    def penalty_sites(self, prefix: str) -> list[str]:
        """The weight-prior `numpyro.factor` site of point-estimated weights, if they are."""
        return [self.penalty_site(prefix)] if self.point_estimated else []

    def param_site(self, prefix: str) -> str:
        """The name of the module's `numpyro.param` site."""
        return f"{prefix}.{_NETWORK}$params"

    def penalty_site(self, prefix: str) -> str:
        """The `numpyro.factor` site of the weight prior of point-estimated weights."""
        return f"{prefix}.weight_prior"

    def features(self, inputs: ModelInputs) -> Float[Array, "T F"]:
        """The network's input sequence: the standardised covariates."""
        return jnp.stack([jnp.asarray(inputs.covariates[c]) for c in self._columns], axis=-1)

    def _weight_prior(self):
        return dist.Normal(0.0, self.weight_prior_scale)

    def sample(self, prefix, inputs):
        """Register the network (param or sample sites) and run it over the inputs."""
        site = f"{prefix}.{_NETWORK}"
        if self.bayesian:
            network = random_eqx_module(site, self.template, self._weight_prior(), ".")
        else:
            network = eqx_module(site, self.template)
            # The weight prior at its mode: weight decay in the SVI objective.
            leaves = jax.tree_util.tree_leaves(_weights(network))
            penalty = sum(self._weight_prior().log_prob(leaf).sum() for leaf in leaves)
            numpyro.factor(self.penalty_site(prefix), penalty)
        x = self.features(inputs)
        T = inputs.num_timesteps
        if inputs.training and self.window is not None and T > self.window:
            holder = numpyro.primitives.mutable(
                f"{prefix}.{_CARRY}", {"state": initial_carry(network, T, self.window)}
            )
            outputs, holder["state"] = run_windows(network, x, self.window, holder["state"])
        else:
            outputs = run_sequence(network, x)
        return {_NETWORK: network, "outputs": outputs}

    def attach_network(self, prefix: str, params: dict, network_params: dict) -> dict:
        """Parameters with the network put back, outside a NumPyro trace.

        Args:
            prefix: the component's name in the model.
            params: this component's parameters from posterior draws (for a Bayesian network
                they include the weight leaves `network.<leaf>`).
            network_params: learned point-estimated weights, keyed by param site.
        """
        if _NETWORK in params:
            return params
        params = dict(params)
        if self.point_estimated:
            site = self.param_site(prefix)
            if site not in network_params:
                raise ValueError(
                    f"no learned weights for {site!r}: the posterior was not fitted with this "
                    "network; refit the model with bsts.fit"
                )
            weights = network_params[site]
        else:
            start = f"{_NETWORK}."
            leaves = {k[len(start) :]: v for k, v in params.items() if k.startswith(start)}
            weights = eqx_from_dict(leaves, _weights(self.template))
        params[_NETWORK] = _with_weights(weights, self.template)
        return params

    def raw_outputs(self, params: dict, inputs: ModelInputs) -> Float[Array, "T O"]:
        """The network's outputs over `inputs` (precomputed ones when they fit)."""
        outputs = params.get("outputs")
        if outputs is not None and outputs.shape[0] == inputs.num_timesteps:
            return outputs
        return run_sequence(params[_NETWORK], self.features(inputs))

    def block(self, params, inputs):
        """No states of its own."""
        return None


class LSTMEmission(NeuralComponent):
    r"""A nonlinear, lagged covariate effect on the observation, from an LSTM.

    $$
    y_t = Z a_t + g_t + \varepsilon_t, \qquad g_t = w^\top h_t + b, \qquad
    h_t = \mathrm{LSTM}(x_{0:t}),
    $$

    where $x_t$ are the standardised covariates. Given the weights $g_t$ is a known
    offset, so the likelihood is the exact Kalman likelihood of the structural part. The
    weights have a Normal(0, `weight_prior_scale`) prior (weight decay for point estimates).

    Args:
        columns: covariate column names the network reads.
        hidden_size: LSTM hidden size (default 4: small on purpose).
        weight_prior_scale: scale of the Gaussian weight prior (default 0.5).
        bayesian: sample the weights instead of point-estimating them (tiny networks).
        window: train on windows of this many steps (long series); None runs the whole
            sequence.
        seed: seed of the initial weights.
        name: site prefix; default "lstm_emission".
    """

    kind = "lstm_emission"

    def offset(self, params, inputs):
        """$g_t$, added to the observation."""
        return self.raw_outputs(params, inputs)[:, 0]


class LSTMTransition(NeuralComponent):
    r"""Covariate-driven dynamics of the level, from an LSTM.

    The network's two outputs at step t give a drift $u_t$ and an innovation multiplier
    $s_t$ for the transition out of step t of the model's level $\mu$ (the first state of a
    `LocalLevel`, `LocalLinearTrend` or `SemiLocalLinearTrend`):

    $$
    \mu_{t+1} = \mu_t + \delta_t + u_t + \eta_t, \qquad
    \eta_t \sim \mathcal N\!\left(0, (s_t \sigma_\mu)^2\right),
    $$

    with $u_t = \tanh(o_{t,1})$ and $\log s_t = 2 \tanh(o_{t,2} / 2)$ (bounded, so 0 weights
    give $u_t = 0$, $s_t = 1$). Given the network the drift is deterministic; since the level
    loads on the observation with weight 1 and feeds no other state, its effect on $y_t$ is
    exactly the offset $U_t = \sum_{s<t} u_s$, which `decompose` shows as this component's
    contribution. The multiplier makes the level's noise covariance time-varying.

    Args:
        columns: covariate column names the network reads.
        hidden_size: LSTM hidden size (default 4).
        level: name of the level component it drives; default the model's first
            `LocalLevel`, `LocalLinearTrend` or `SemiLocalLinearTrend`.
        **kwargs: as `NeuralComponent`: `weight_prior_scale` (scale of the Gaussian weight
            prior, default 0.5), `bayesian` (sample the weights instead of
            point-estimating them: tiny networks), `window` (train on windows of this many
            steps: long series), `seed` (of the initial weights) and `name` (site prefix;
            default "lstm_transition").
    """

    kind = "lstm_transition"
    num_outputs = 2
    drives_level = True

    def __init__(self, columns, hidden_size: int = 4, *, level: str | None = None, **kwargs):
        super().__init__(columns, hidden_size, **kwargs)
        if level is not None and (not isinstance(level, str) or not level):
            raise ValueError(f"LSTMTransition level must be a component name, got {level!r}")
        self.level = level

    def drift_and_multiplier(
        self, params: dict, inputs: ModelInputs
    ) -> tuple[Float[Array, " T"], Float[Array, " T"]]:
        """$u_t$ and $s_t$ for every step."""
        raw = self.raw_outputs(params, inputs)
        drift = _DRIFT_BOUND * jnp.tanh(raw[:, 0])
        log_multiplier = _LOG_MULTIPLIER_BOUND * jnp.tanh(raw[:, 1] / _LOG_MULTIPLIER_BOUND)
        return drift, jnp.exp(log_multiplier)

    def offset(self, params, inputs):
        r"""The accumulated drift $U_t = \sum_{s<t} u_s$: the drift's exact effect on $y_t$."""
        drift, _ = self.drift_and_multiplier(params, inputs)
        return jnp.concatenate([jnp.zeros(1, drift.dtype), jnp.cumsum(drift)[:-1]])

    def modulate(self, params: dict, inputs: ModelInputs, level: Block) -> Block:
        """The level component's block with its level innovation scaled by $s_t$."""
        _, multiplier = self.drift_and_multiplier(params, inputs)
        T = inputs.num_timesteps
        d = level.initial_mean.shape[0]
        noise = jnp.broadcast_to(jnp.asarray(level.noise_cov), (T, d, d))
        noise = noise.at[:, 0, 0].multiply(multiplier**2)
        return Block(level.transition, noise, level.loading, level.initial_mean, level.initial_cov)
