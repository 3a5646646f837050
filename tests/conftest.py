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


# Longest files first (`-n 2 --dist loadfile` hands out files in this order), so that the
# short ones fill the end and neither worker idles while the other finishes a long file.
# The user paths come first: subprocesses of about two minutes. After each name: its
# seconds of one worker in the default suite (`--durations=0`, 2-core machine).
_LONGEST_FIRST = (
    "test_user_paths.py",  # 134
    "test_analysis.py",  # 87
    "test_kalman_fast_paths.py",  # 76
    "test_many.py",  # 65
    "test_counts.py",  # 64
    "test_kalman_properties.py",  # 52
    "test_auto.py",  # 46
    "test_kalman_laplace.py",  # 42
    "test_classifier.py",  # 40
)


def pytest_collection_modifyitems(config, items):
    """Put the longest test files at the front of the queue, longest first."""
    rank = {name: position for position, name in enumerate(_LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
