"""bsts's compiler options: its own programs only, top level and nested."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from bsts import _compile


def _filter_like(x, scale):
    # A loop and a few fusions, as in the Kalman programs.
    def step(carry, value):
        carry = 0.9 * carry + scale * value
        return carry, jnp.tanh(carry)

    return jax.lax.scan(step, 0.0, x)[1].sum()


def test_cpu_programs_get_the_options():
    assert jax.default_backend() == "cpu"
    assert _compile.compiler_options() == _compile.CPU_OPTIONS
    # A copy: a caller cannot change what the next program gets.
    _compile.compiler_options()["xla_cpu_use_fusion_emitters"] = True
    assert _compile.compiler_options() == _compile.CPU_OPTIONS


def test_same_values_as_xla_defaults():
    x = jnp.asarray(np.random.default_rng(0).normal(size=200), jnp.float32)
    expected = jax.jit(jax.value_and_grad(_filter_like, argnums=1))(x, 0.3)
    lowered = jax.jit(jax.value_and_grad(_filter_like, argnums=1)).lower(x, 0.3)
    compiled = _compile.compile_lowered(lowered)
    wrapped = _compile.jit(jax.value_and_grad(_filter_like, argnums=1))
    for got in (compiled(x, 0.3), wrapped(x, 0.3)):
        np.testing.assert_allclose(got, expected, rtol=1e-6)


def test_nested_inside_another_program():
    # JAX refuses compiler options on a nested jit: inside a trace the wrapper is plain.
    inner = _compile.jit(_filter_like, static_argnames=())
    x = jnp.linspace(-1.0, 1.0, 50)

    @jax.jit
    def outer(x):
        return inner(x, 0.5) + 1.0

    np.testing.assert_allclose(outer(x), _filter_like(x, 0.5) + 1.0, rtol=1e-6)
    np.testing.assert_allclose(inner(x, 0.5), _filter_like(x, 0.5), rtol=1e-6)


def test_unknown_option_compiles_without_it(monkeypatch):
    monkeypatch.setattr(_compile, "CPU_OPTIONS", {"xla_cpu_no_such_option_here": True})
    _compile._accepted.cache_clear()
    try:
        assert _compile.compiler_options() is None
        wrapped = _compile.jit(lambda x: 2.0 * x)
        np.testing.assert_allclose(wrapped(jnp.ones(3)), 2.0)
    finally:
        _compile._accepted.cache_clear()


def test_environment_variable_restores_xla_defaults(monkeypatch):
    monkeypatch.setenv("BSTS_XLA_DEFAULTS", "1")
    assert _compile.compiler_options() is None
    monkeypatch.setenv("BSTS_XLA_DEFAULTS", "0")
    assert _compile.compiler_options() == _compile.CPU_OPTIONS


@pytest.mark.parametrize("decorated", [True, False])
def test_static_arguments_pass_through(decorated):
    def power(x, n):
        return x**n

    if decorated:
        wrapped = _compile.jit(static_argnums=1)(power)
    else:
        wrapped = _compile.jit(power, static_argnums=1)
    assert float(wrapped(jnp.float32(2.0), 3)) == 8.0
