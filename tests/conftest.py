"""Shared pytest configuration.

Numerical tests run JAX in float64 so that comparisons against dense and statsmodels
references can be tight; float32 behaviour is tested explicitly by casting inputs. Long
runs carry the `slow` marker and are deselected by default (`pytest -m slow` runs them).
"""

import os

# Compilation dominates this suite (short series, many distinct programs), and LLVM's
# backend optimisations cost more compile time than they save in run time: the default
# suite took 705 s with them and 607 s without on the 2-core machine. XLA's results agree
# to round-off either way (no fast-math in both). The user paths (test_user_paths.py)
# run in fresh interpreters with XLA's defaults. Set before JAX starts its backend.
os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", ""), "--xla_backend_optimization_level=0"]
).strip()

import jax
import numpy as np
import pytest

jax.config.update("jax_enable_x64", True)


@pytest.fixture
def rng():
    """A fresh, seeded NumPy generator per test."""
    return np.random.default_rng(20261126)


# Run first, on a worker of its own: one subprocess of about two minutes, which would
# otherwise start last and leave the other worker idle (`-n 2 --dist loadfile`).
_LONGEST_FIRST = ("test_user_paths.py",)


def pytest_collection_modifyitems(config, items):
    """Put the longest test files at the front of the queue."""
    items.sort(key=lambda item: item.path.name not in _LONGEST_FIRST)
