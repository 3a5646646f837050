r"""`Classifier`: which kind of series is this? Structural models as class descriptions.

Two ways of classifying with fitted structural models, and their combination:

- **Generative** (the default). A structural model per class, fitted to its training
  members with `fit_many`'s batched programs, the members' shapes as templates and the
  hyperparameters pooled per member or per class; a new series is classified by its exact
  Kalman marginal likelihood under each class, tempered for calibration
  (`bsts.analysis._generative` has the model and the choices it makes by out-of-sample log
  loss).
- **Features.** Each series is fitted on its own by the structural model (without a
  template), and the posterior of its parameters in the unconstrained space (log scales,
  logit partial autocorrelations, ...) plus the series' location, log scale and number of
  observations go into an $L_2$-penalised multinomial logistic regression, its penalty
  chosen by cross-validated log loss (scikit-learn).
- **Combined**: the features plus the generative class probabilities
  (leave-one-out on the training series, so the regression learns how far to trust them).

`docs/classification.md` compares the three on the UCR sets and on uneven series.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from numpyro import handlers
from numpyro.distributions.transforms import biject_to

from bsts.analysis._generative import (
    POOLINGS,
    TEMPLATES,
    class_probabilities,
    fit_class_models,
)
from bsts.analysis._series_sets import as_series_list, prepared, shared_units
from bsts.components import Autoregressive, LocalLevel
from bsts.inference import as_model, checked_options
from bsts.many import fit_prepared
from bsts.model import Model
from bsts.observation import Gaussian

__all__ = ["METHODS", "Classifier"]

METHODS = ("generative", "combined", "features")
INFERENCES = ("map", "nuts")

try:  # scikit-learn's estimator protocol when it is installed (`bsts[classify]`)
    from sklearn.base import BaseEstimator, ClassifierMixin

    _BASES: tuple = (ClassifierMixin, BaseEstimator)
except ImportError:  # pragma: no cover - exercised only without scikit-learn
    _BASES = ()

_PARAMETERS = (
    "model",
    "method",
    "template",
    "pooling",
    "inference",
    "num_warmup",
    "num_samples",
    "draws_per_series",
    "num_steps",
    "class_prior",
    "seed",
)


class _ParamsMixin:
    """`get_params` / `set_params` / `score` for use without scikit-learn installed."""

    def get_params(self, deep: bool = True) -> dict:
        return {name: getattr(self, name) for name in _PARAMETERS}

    def set_params(self, **params):
        for name, value in params.items():
            if name not in _PARAMETERS:
                raise ValueError(f"unknown parameter {name!r}; the parameters are {_PARAMETERS}")
            setattr(self, name, value)
        return self

    def score(self, X, y) -> float:
        return float(np.mean(self.predict(X) == np.asarray(y)))


def default_model() -> Model:
    """The default class structure: a local level plus an AR(1) (an OU process if uneven)."""
    return Model([LocalLevel(), Autoregressive(1)])


class Classifier(*(_BASES or (_ParamsMixin,))):
    r"""Classify series by fitted Bayesian structural models (scikit-learn conventions).

    Args:
        model: the structural model of a class (a `Model` or a component, Gaussian
            observation, no covariates); default `LocalLevel() + Autoregressive(1)`.
        method: "generative" (default), "combined" or "features"; see the module notes.
            "combined" and "features" need scikit-learn (`pip install "bsts[classify]"`).
        template: the generative models' offset: "members" (each member's own values),
            "class" (the class's mean shape), None (dynamics only) or "auto" (default: the
            one with the lowest out-of-sample log loss).
        pooling: the generative hyperparameters: "members" (one fit per training series,
            the class their mixture), "shared" (one pooled fit per class; MAP only) or
            "auto" (default: the one with the lower out-of-sample log loss).
        inference: how each training series is fitted, "map" (default) or "nuts" (one
            chain per series; the generative mixture then uses `draws_per_series` draws of
            each).
        num_warmup: NUTS warm-up iterations.
        num_samples: NUTS draws.
        draws_per_series: posterior draws per training series in the generative mixture
            (NUTS only).
        num_steps: most objective evaluations of the MAP optimiser.
        class_prior: prior class probabilities $\pi_c$ in the order of `classes_`, or
            None for the training frequencies.
        seed: random seed of the fits.

    Attributes:
        classes_: the class labels, sorted.
        temperature_: the generative temperature $\tau$ (methods that use it).
        template_: the generative template in use, "members", "class" or None.
        pooling_: the generative pooling in use, "members" or "shared".
        member_fit_: what the training members were fitted against, "nearest" (their
            nearest class member) or "class" (their class's mean shape).
        units_: the shared units (time step, value location and scale) of the series.
    """

    def __init__(
        self,
        model=None,
        method: str = "generative",
        template: str | None = "auto",
        pooling: str = "auto",
        inference: str = "map",
        num_warmup: int = 300,
        num_samples: int = 300,
        draws_per_series: int = 8,
        num_steps: int = 2000,
        class_prior=None,
        seed: int = 0,
    ):
        self.model = model
        self.method = method
        self.template = template
        self.pooling = pooling
        self.inference = inference
        self.num_warmup = num_warmup
        self.num_samples = num_samples
        self.draws_per_series = draws_per_series
        self.num_steps = num_steps
        self.class_prior = class_prior
        self.seed = seed

    # -- fitting ---------------------------------------------------------------------

    def fit(self, X, y) -> Classifier:
        """Fit the class models (and the feature regression) to labelled series.

        Args:
            X: the series (see `bsts.analysis._series_sets.as_series_list`).
            y: one label per series.

        Returns:
            The fitted classifier.

        Raises:
            ValueError: bad settings or input, fewer than two classes, a class with a single
                series (the generative method needs two to validate it), or a bad series
                (named by its position).
        """
        self._check_settings()
        series = as_series_list(X)
        labels = np.asarray(y)
        if labels.ndim != 1 or labels.shape[0] != len(series):
            raise ValueError(
                f"y must hold one label per series: {len(series)} series, y of shape {labels.shape}"
            )
        if pd.isna(labels).any():
            raise ValueError("y has missing labels")
        self.classes_, codes = np.unique(labels, return_inverse=True)
        counts = np.bincount(codes, minlength=len(self.classes_))
        if len(self.classes_) < 2:
            raise ValueError(
                f"y has a single class ({self.classes_[0].item()!r}); give at least two"
            )
        if self.method != "features" and counts.min() < 2:
            lonely = self.classes_[int(np.argmin(counts))].item()
            raise ValueError(
                f"class {lonely!r} has a single training series; the generative method needs "
                "at least two per class (or use method='features')"
            )
        self._log_prior = self._class_log_prior(counts)
        self.units_ = shared_units(series)
        data = [prepared(s, self.units_, i) for i, s in enumerate(series)]
        self._base = self._checked_model()
        generative = None
        if self.method != "features":
            self._class_models, generative = fit_class_models(
                self._base,
                series,
                data,
                codes,
                self.units_,
                self._log_prior,
                template=self.template,
                pooling=self.pooling,
                inference=self.inference,
                options=self._options(),
                draws_per_series=self.draws_per_series,
                seed=self.seed,
            )
            self.temperature_ = self._class_models.temperature
            self.template_ = self._class_models.template
            self.pooling_ = self._class_models.pooling
            self.member_fit_ = self._class_models.member_fit
        if self.method != "generative":
            features = self._features(data, generative)
            self._regression = _feature_regression(features, codes, counts, self.seed)
        return self

    def _check_settings(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; choose one of {', '.join(METHODS)}")
        if self.inference not in INFERENCES:
            raise ValueError(
                f"unknown inference {self.inference!r}; choose one of {', '.join(INFERENCES)}"
            )
        if self.template not in TEMPLATES:
            raise ValueError(f"template must be one of {TEMPLATES}, got {self.template!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if self.pooling == "shared" and self.inference != "map":
            raise ValueError(
                'pooling="shared" finds one posterior mode per class: use inference="map", '
                'or pooling="members" with NUTS'
            )
        if self.method != "generative":
            _require_sklearn(self.method)

    def _checked_model(self) -> Model:
        model = default_model() if self.model is None else as_model(self.model)
        if model.observation != Gaussian():
            raise ValueError(
                f"the Classifier's model needs Gaussian observations, got {model.observation!r}"
            )
        if model.covariate_columns:
            raise ValueError(
                "the Classifier's model takes no covariates (its components name "
                f"{model.covariate_columns}); the template is added by the template option"
            )
        return model

    def _class_log_prior(self, counts: np.ndarray) -> np.ndarray:
        if self.class_prior is None:
            return np.log(counts / counts.sum())
        prior = np.asarray(self.class_prior, dtype=float)
        if prior.shape != counts.shape or (prior <= 0).any() or not np.isfinite(prior).all():
            raise ValueError(
                f"class_prior must hold {counts.size} positive numbers, one per class in the "
                f"order of classes_ {self.classes_.tolist()}"
            )
        return np.log(prior / prior.sum())

    def _options(self) -> dict:
        return checked_options(
            method=self.inference,
            num_warmup=self.num_warmup,
            num_samples=self.num_samples,
            num_chains=1,
            num_steps=self.num_steps,
            guide="normal",
            learning_rate=0.01,
            target_accept_prob=0.8,
            max_tree_depth=10,
            dense_mass=False,
        )

    def _features(self, data, generative: np.ndarray | None) -> np.ndarray:
        """Each series' features, `(n, features)`.

        Per series: the unconstrained posterior means of the base model's parameters, the
        series' location, log scale and log number of observations, and (combined) the
        generative class probabilities.
        """
        fits = fit_prepared(
            self._base, dict(enumerate(data)), self.inference, self._options(), seed=self.seed
        )
        supports = _site_supports(self._base, data[0])
        rows = []
        for i, d in enumerate(data):
            flat = fits[i].flat_draws()
            parts = []
            for name in sorted(supports):
                unconstrained = biject_to(supports[name]).inv(np.asarray(flat[name]))
                parts.append(np.ravel(np.mean(np.asarray(unconstrained), axis=0)))
            observed = np.sum(~np.isnan(d.y))
            spread = max(float(np.nanstd(d.y)), 1e-12)
            parts.append(np.array([np.nanmean(d.y), math.log(spread), math.log(observed)]))
            rows.append(np.concatenate(parts))
        features = np.stack(rows)
        if generative is not None:
            # Probabilities, not log probabilities: bounded, where the log of a confident
            # loser runs to -100s and a linear model on it follows those outliers.
            features = np.hstack([features, np.exp(self._log_probabilities(generative))])
        return features

    def _log_probabilities(self, scores: np.ndarray) -> np.ndarray:
        return class_probabilities(scores, self._log_prior, self.temperature_)

    # -- prediction ------------------------------------------------------------------

    def predict_proba(self, X) -> np.ndarray:
        """Posterior class probabilities, `(n_series, n_classes)` in the order of `classes_`."""
        if not hasattr(self, "classes_"):
            raise ValueError("this Classifier is not fitted yet: call fit(X, y) first")
        series = as_series_list(X)
        data = [prepared(s, self.units_, i) for i, s in enumerate(series)]
        generative = None
        if self.method != "features":
            generative = self._class_models.scores(series, data, self.units_)
            if self.method == "generative":
                return np.exp(self._log_probabilities(generative))
        features = self._features(data, generative)
        return self._regression.predict_proba(features)

    def predict(self, X) -> np.ndarray:
        """The most probable class of each series."""
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


def _require_sklearn(method: str) -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError as error:
        raise ImportError(
            f"method={method!r} fits a logistic regression with scikit-learn: "
            'pip install "bsts[classify]" (or use method="generative")'
        ) from error


def _site_supports(model: Model, data) -> dict:
    """The support of each sampled parameter site of a model (one trace, no density)."""
    inputs = model.inputs(data)
    traced = handlers.trace(handlers.seed(model, 0)).get_trace(inputs, y=data.y)
    return {
        name: site["fn"].support
        for name, site in traced.items()
        if site["type"] == "sample" and not site["is_observed"]
    }


def _feature_regression(features: np.ndarray, codes: np.ndarray, counts: np.ndarray, seed: int):
    """Standardised features into a multinomial logistic regression, penalty by CV log loss."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pipeline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    folds = int(min(5, counts.min()))
    if folds >= 2:
        pipeline = GridSearchCV(
            pipeline,
            {"logisticregression__C": np.logspace(-3, 3, 13)},
            scoring="neg_log_loss",
            cv=StratifiedKFold(folds, shuffle=True, random_state=seed),
        )
    return pipeline.fit(np.nan_to_num(features), codes)
