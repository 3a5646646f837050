"""bsts: Bayesian structural time series with neural parts, on NumPyro and JAX."""

from bsts import kalman

__all__ = ["kalman"]
__version__ = "0.1.0.dev0"
