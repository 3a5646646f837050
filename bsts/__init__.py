"""bsts: Bayesian structural time series with neural parts, on NumPyro and JAX."""

from bsts import analysis, counts, datasets, kalman, metrics, mixture, observation, plot
from bsts.auto import Auto, Ensemble, Ensembles
from bsts.components import (
    Autoregressive,
    DynamicRegression,
    FourierSeasonal,
    LocalLevel,
    LocalLinearTrend,
    Regression,
    Seasonal,
    SemiLocalLinearTrend,
)
from bsts.counts import Binomial
from bsts.forecast import decompose, forecast, one_step_predictions
from bsts.inference import Posterior, fit
from bsts.many import Fits, ManyForecast, fit_many
from bsts.model import Model
from bsts.neural import LSTMEmission, LSTMTransition
from bsts.plot import plot_components, plot_forecast

__all__ = [
    "Auto",
    "Autoregressive",
    "Binomial",
    "DynamicRegression",
    "Ensemble",
    "Ensembles",
    "Fits",
    "FourierSeasonal",
    "LSTMEmission",
    "LSTMTransition",
    "LocalLevel",
    "LocalLinearTrend",
    "ManyForecast",
    "Model",
    "Posterior",
    "Regression",
    "Seasonal",
    "SemiLocalLinearTrend",
    "analysis",
    "counts",
    "datasets",
    "decompose",
    "fit",
    "fit_many",
    "forecast",
    "kalman",
    "metrics",
    "mixture",
    "observation",
    "one_step_predictions",
    "plot",
    "plot_components",
    "plot_forecast",
]
__version__ = "0.1.0.dev0"
