"""Shape validation of `StateSpace` and of the observations given to the filters."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bsts.kalman import StateSpace, kalman_filter, kalman_smoother, log_likelihood, sample_states

D = 3
T = 5


def _fields(time_varying: bool = True) -> dict:
    """Valid fields for a model with d = D (and T = T when time_varying)."""
    lead = (T,) if time_varying else ()
    return {
        "transition_matrix": np.broadcast_to(0.9 * np.eye(D), (*lead, D, D)),
        "transition_cov": np.broadcast_to(0.1 * np.eye(D), (*lead, D, D)),
        "observation_matrix": np.ones((*lead, D)),
        "observation_offset": np.zeros(lead),
        "observation_var": np.ones(lead),
        "initial_mean": np.zeros(D),
        "initial_cov": np.eye(D),
    }


def _build(**changes) -> StateSpace:
    fields = _fields()
    fields.update(changes)
    return StateSpace(**{k: jnp.asarray(v) for k, v in fields.items()})


def test_valid_fields_are_accepted():
    _build()
    StateSpace(**_fields(time_varying=False))
    # time-varying and constant fields can be mixed
    mixed = _fields(time_varying=False)
    mixed["observation_offset"] = np.zeros(T)
    mixed["transition_matrix"] = np.broadcast_to(np.eye(D), (T, D, D))
    StateSpace(**mixed)


BAD_FIELDS = {
    "transition_matrix-not-square": ("transition_matrix", np.zeros((T, D, D + 1))),
    "transition_matrix-too-many-axes": ("transition_matrix", np.zeros((2, T, D, D))),
    "transition_matrix-1d": ("transition_matrix", np.zeros(D)),
    "transition_cov-wrong-d": ("transition_cov", np.zeros((T, D + 1, D + 1))),
    "observation_matrix-wrong-d": ("observation_matrix", np.zeros((T, D + 1))),
    "observation_matrix-constant-wrong-d": ("observation_matrix", np.zeros(D - 1)),
    "observation_offset-2d": ("observation_offset", np.zeros((T, 1))),
    "observation_var-2d": ("observation_var", np.ones((T, 2))),
    "initial_mean-2d": ("initial_mean", np.zeros((D, 1))),
    "initial_cov-not-square": ("initial_cov", np.eye(D, D + 1)),
    "initial_cov-wrong-d": ("initial_cov", np.eye(D + 1)),
    "initial_cov-time-axis": ("initial_cov", np.broadcast_to(np.eye(D), (T, D, D))),
}


@pytest.mark.parametrize(("field", "value"), BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_bad_field_shape_names_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        _build(**{field: value})


@pytest.mark.parametrize(
    "field",
    ["transition_cov", "observation_matrix", "observation_offset", "observation_var"],
)
def test_mismatched_time_axis_raises(field):
    fields = _fields()
    value = fields[field]
    fields[field] = np.concatenate([value, value[:1]])  # T + 1 steps
    with pytest.raises(ValueError, match=field):
        StateSpace(**fields)


def test_error_message_mentions_expected_shape():
    with pytest.raises(ValueError) as info:
        _build(transition_cov=np.zeros((T, D, D + 1)))
    message = str(info.value)
    assert "transition_cov" in message
    assert str(D) in message


def _functions():
    key = jax.random.key(0)
    return {
        "kalman_filter": lambda ssm, y: kalman_filter(ssm, y),
        "kalman_filter-parallel": lambda ssm, y: kalman_filter(ssm, y, parallel=True),
        "log_likelihood": log_likelihood,
        "kalman_smoother": kalman_smoother,
        "sample_states": lambda ssm, y: sample_states(key, ssm, y, num_samples=2),
    }


@pytest.mark.parametrize("name", list(_functions()))
@pytest.mark.parametrize("length", [T - 1, T + 1])
def test_wrong_series_length_raises(name, length):
    with pytest.raises(ValueError):
        _functions()[name](_build(), jnp.zeros(length))


@pytest.mark.parametrize("name", list(_functions()))
@pytest.mark.parametrize("shape", [(T, 1), (1, T), ()])
def test_non_1d_series_raises(name, shape):
    ssm = StateSpace(**_fields(time_varying=False))
    with pytest.raises(ValueError):
        _functions()[name](ssm, jnp.zeros(shape))


def test_constant_model_accepts_any_length():
    ssm = StateSpace(**_fields(time_varying=False))
    for length in (1, 4, 9):
        res = kalman_filter(ssm, jnp.zeros(length))
        assert res.log_likelihood.shape == (length,)
        assert res.filtered_mean.shape == (length, D)
