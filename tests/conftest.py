"""Shared pytest configuration.

Numerical tests run JAX in float64 so that comparisons against dense and statsmodels
references can be tight; float32 behaviour is tested explicitly by casting inputs. Long
runs carry the `slow` marker and are deselected by default (`pytest -m slow` runs them).
"""

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)


@pytest.fixture
def rng():
    """A fresh, seeded NumPy generator per test."""
    return np.random.default_rng(20261126)
