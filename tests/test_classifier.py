"""`bsts.analysis.Classifier`: scikit-learn conventions, input forms, recovery, errors.

The two classes differ only in their dynamics: an AR(1) of coefficient 0.2 ("rough") or
0.9 ("smooth") around a common level, plus noise. Every evenly spaced series is 49-60
steps long with a few NaN inside, so that the MAP and scoring programs compile once, for
one bucket (64 steps) of gapped regular series, and are shared by every fit of the
module; the fitted classifiers are module fixtures. The template is chosen ("auto", the
default) by one fit; the other fits fix it (`FAST`), which runs one configuration instead
of four. Pooled ("shared") class fits compile programs of their own: they, and the full
defaults, run in a slow test (`-m slow`). Unevenly spaced series (another program group)
appear in one test only.
"""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest

import bsts
from bsts.analysis import Classifier

T = 60
PHI = {"rough": 0.2, "smooth": 0.9}
# Listed smooth first, so that the sorted classes_ differ from the order of appearance.
LABELS = ("smooth", "rough")
# One generative configuration (no choice by out-of-sample loss): quick fits.
FAST = {"method": "generative", "template": "members", "pooling": "members"}


def _ar(rng, phi: float, times: np.ndarray) -> np.ndarray:
    """A stationary AR(1) of unit innovations at `times` (exact OU steps), plus noise."""
    a = np.empty(times.size)
    a[0] = rng.normal() / np.sqrt(1 - phi**2)
    for t in range(1, times.size):
        decay = phi ** (times[t] - times[t - 1])
        a[t] = decay * a[t - 1] + rng.normal() * np.sqrt((1 - decay**2) / (1 - phi**2))
    return 5.0 + a + 0.3 * rng.normal(size=times.size)


def _with_gaps(rng, y: np.ndarray) -> np.ndarray:
    y = y.copy()
    y[rng.choice(np.arange(2, y.size - 2), size=3, replace=False)] = np.nan
    return y


def _array_set(seed: int, per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """A 2-D array `(n, T)`, three NaN in every series, and string labels."""
    rng = np.random.default_rng(seed)
    rows, labels = [], []
    for label in LABELS:
        for _ in range(per_class):
            rows.append(_with_gaps(rng, _ar(rng, PHI[label], np.arange(T, dtype=float))))
            labels.append(label)
    return np.array(rows), np.array(labels)


def _uneven_set(seed: int, per_class: int) -> tuple[list[pd.Series], np.ndarray]:
    """Series of 49-60 points at uneven numeric times (steps 0.5-2), lengths differing."""
    rng = np.random.default_rng(seed)
    series, labels = [], []
    for label in LABELS:
        for _ in range(per_class):
            n = int(rng.integers(49, 61))
            times = 3.0 + np.cumsum(rng.choice([0.5, 1.0, 1.0, 1.5, 2.0], size=n))
            series.append(pd.Series(_ar(rng, PHI[label], times), index=times))
            labels.append(label)
    return series, np.array(labels)


def _log_loss(probabilities: np.ndarray, classes: np.ndarray, y: np.ndarray) -> float:
    columns = np.searchsorted(classes, y)
    return float(-np.mean(np.log(probabilities[np.arange(y.size), columns])))


def _frequency_log_loss(y_train: np.ndarray, y_test: np.ndarray) -> float:
    """The log loss of predicting the training class frequencies for every series."""
    classes, counts = np.unique(y_train, return_counts=True)
    frequencies = counts / counts.sum()
    return float(-np.mean(np.log(frequencies[np.searchsorted(classes, y_test)])))


@pytest.fixture(scope="module")
def train():
    return _array_set(0, per_class=10)


@pytest.fixture(scope="module")
def held_out():
    return _array_set(1, per_class=20)


@pytest.fixture(scope="module")
def generative(train):
    X, y = train
    X_before, y_before = X.copy(), y.copy()
    clf = Classifier(method="generative", pooling="members").fit(X, y)
    # fit leaves its input alone (NaN compare equal here)
    np.testing.assert_array_equal(X, X_before)
    np.testing.assert_array_equal(y, y_before)
    return clf


@pytest.fixture(scope="module")
def generative_proba(generative, held_out):
    X, _ = held_out
    X_before = X.copy()
    probabilities = generative.predict_proba(X)
    np.testing.assert_array_equal(X, X_before)
    return probabilities


@pytest.fixture(scope="module")
def members(train):
    """Member templates and member fits, fixed."""
    X, y = train
    return Classifier(**FAST).fit(X, y)


@pytest.fixture(scope="module")
def dynamics_only(train):
    """No template: only the dynamics tell the classes apart."""
    X, y = train
    return Classifier(**{**FAST, "template": None}).fit(X, y)


@pytest.fixture(scope="module")
def combined(train):
    pytest.importorskip("sklearn")
    X, y = train
    return Classifier(**{**FAST, "method": "combined"}).fit(X, y)


# -- recovery and probabilities -------------------------------------------------------


@pytest.mark.parametrize("fitted", ["generative", "members", "dynamics_only"])
def test_generative_recovers_dynamics(fitted, request, train, held_out):
    clf = request.getfixturevalue(fitted)
    X, y_test = held_out
    if fitted == "generative":
        probabilities = request.getfixturevalue("generative_proba")
    else:
        probabilities = clf.predict_proba(X)
    predicted = clf.classes_[np.argmax(probabilities, axis=1)]
    assert np.mean(predicted == y_test) >= 0.9
    log_loss = _log_loss(probabilities, clf.classes_, y_test)
    assert log_loss < _frequency_log_loss(train[1], y_test)
    assert log_loss < 0.3
    # Tempering only flattens the likelihood: tau >= 1.
    assert np.isfinite(clf.temperature_) and clf.temperature_ >= 1.0


def test_fitted_attributes(generative, members, dynamics_only):
    assert generative.template_ in ("members", "class", None)
    assert generative.pooling_ in ("members", "shared")
    assert (members.template_, members.pooling_) == ("members", "members")
    assert members.member_fit_ in ("nearest", "class")
    assert (dynamics_only.template_, dynamics_only.pooling_) == (None, "members")
    for clf in (generative, members, dynamics_only):
        units = clf.units_
        assert units.regular and not units.dates and units.step == 1.0
        assert units.location == pytest.approx(5.0, abs=1.0) and units.scale > 0


def test_probabilities_shape_sum_and_class_order(generative, generative_proba, held_out):
    X, y = held_out
    np.testing.assert_array_equal(generative.classes_, ["rough", "smooth"])
    assert generative_proba.shape == (len(X), 2)
    assert np.all((generative_proba >= 0) & (generative_proba <= 1))
    np.testing.assert_allclose(generative_proba.sum(axis=1), 1.0, rtol=1e-12)
    # Column k is the probability of classes_[k]: smooth series load on column 1.
    assert generative_proba[y == "smooth", 1].mean() > 0.8
    assert generative_proba[y == "rough", 0].mean() > 0.8
    predicted = generative.predict(X)
    assert predicted.dtype == generative.classes_.dtype
    np.testing.assert_array_equal(predicted, generative.classes_[generative_proba.argmax(1)])
    assert generative.score(X, y) == pytest.approx(np.mean(predicted == y))


def test_nan_gaps_are_scored(generative, generative_proba, held_out):
    X, _ = held_out
    assert np.isnan(X).any(axis=1).all()
    assert np.isfinite(generative_proba).all()


def test_input_forms_give_the_same_probabilities(generative, generative_proba, held_out):
    # A (n, 1, T) array, a DataFrame, a list of rows and a list of Series are the same.
    X, _ = held_out
    rows = slice(0, 40, 5)
    expected = generative_proba[rows]
    forms = (
        X[rows, None, :],
        pd.DataFrame(X[rows]),
        list(X[rows]),
        [pd.Series(x, index=np.arange(T) + 100) for x in X[rows]],
    )
    for form in forms:
        np.testing.assert_allclose(generative.predict_proba(form), expected, rtol=1e-9)


def _padded_and_shorter(held_out):
    X, _ = held_out
    padded = X[:4].copy()
    padded[:, 52:] = np.nan
    return padded, [row[:52] for row in X[:4]]


def test_trailing_nan_is_a_shorter_series(dynamics_only, held_out):
    # A row padded with NaN at its end scores as the shorter series it holds.
    padded, shorter = _padded_and_shorter(held_out)
    np.testing.assert_allclose(
        dynamics_only.predict_proba(padded),
        dynamics_only.predict_proba(shorter),
        rtol=1e-6,
        atol=1e-12,
    )


def test_trailing_nan_is_a_shorter_series_with_templates(members, held_out):
    padded, shorter = _padded_and_shorter(held_out)
    np.testing.assert_allclose(
        members.predict_proba(padded), members.predict_proba(shorter), rtol=1e-6, atol=1e-12
    )


def test_class_prior(train, held_out, members):
    X, y = train
    X_test = held_out[0][:10]
    expected = members.predict_proba(X_test)
    # The training frequencies (10 and 10) are the default prior.
    even = Classifier(**FAST, class_prior=[1.0, 1.0]).fit(X, y)
    np.testing.assert_allclose(even.predict_proba(X_test), expected, rtol=1e-9)
    assert even.temperature_ == pytest.approx(members.temperature_)
    # A prior for "rough" (classes_[0]) moves probability to it.
    skewed = Classifier(**FAST, class_prior=[0.95, 0.05]).fit(X, y)
    assert skewed.predict_proba(X_test)[:, 0].mean() > expected[:, 0].mean()


@pytest.mark.slow
@pytest.mark.parametrize(
    "settings",
    [{"method": "generative"}, {**FAST, "template": None, "pooling": "shared"}],
    ids=["defaults", "shared"],
)
def test_pooled_class_fits_recover_dynamics(settings, train, held_out):
    # Pooled ("shared") fits compile programs of their own: about 15 s (50 s for the
    # defaults, which try every template and pooling).
    X, y = train
    clf = Classifier(**settings).fit(X, y)
    if "pooling" in settings:
        assert clf.pooling_ == "shared"
    probabilities = clf.predict_proba(held_out[0])
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert clf.score(*held_out) >= 0.9
    assert _log_loss(probabilities, clf.classes_, held_out[1]) < 0.3


# -- unequal lengths and uneven sampling ----------------------------------------------


def test_unequal_lengths_list_of_arrays(train):
    # As many series as `train`: the fit reuses the programs compiled for its 20 members.
    rng = np.random.default_rng(5)
    X, y = [], []
    for label in LABELS:
        for _ in range(10):
            n = int(rng.integers(49, 61))
            X.append(_with_gaps(rng, _ar(rng, PHI[label], np.arange(n, dtype=float))))
            y.append(label)
    assert len({x.size for x in X}) > 3
    X_before = [x.copy() for x in X]
    clf = Classifier(**FAST).fit(X, y)
    assert clf.units_.regular
    np.testing.assert_array_equal(clf.classes_, ["rough", "smooth"])
    # Unequal training lengths, scored on the equal-length held-out array.
    X_test, y_test = train
    probabilities = clf.predict_proba(X_test)
    assert probabilities.shape == (len(X_test), 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert np.mean(clf.classes_[probabilities.argmax(1)] == y_test) >= 0.85
    for x, before in zip(X, X_before, strict=True):
        np.testing.assert_array_equal(x, before)


def test_dated_series(train, members):
    # Daily DatetimeIndex: the same series as the numeric rows, the same probabilities.
    X, y = train
    dated = [pd.Series(x, index=pd.date_range("2021-03-01", periods=T, freq="D")) for x in X]
    clf = Classifier(**FAST).fit(dated, y)
    assert clf.units_.dates and clf.units_.regular
    assert clf.units_.step == pd.Timedelta("1D").value
    np.testing.assert_allclose(
        clf.predict_proba(dated[::4]), members.predict_proba(X[::4]), rtol=1e-6, atol=1e-9
    )
    with pytest.raises(ValueError, match=r"X\[0\] is indexed by numbers, but the training"):
        clf.predict_proba(X[:1])


def test_uneven_pandas_series():
    X, y = _uneven_set(2, per_class=8)
    X_test, y_test = _uneven_set(3, per_class=8)
    before = [s.copy() for s in X + X_test]
    clf = Classifier(**FAST).fit(X, y)
    assert not clf.units_.regular and clf.units_.step == 1.0
    probabilities = clf.predict_proba(X_test)
    assert probabilities.shape == (len(X_test), 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    predicted = clf.classes_[probabilities.argmax(1)]
    assert np.mean(predicted == y_test) >= 0.85
    assert _log_loss(probabilities, clf.classes_, y_test) < _frequency_log_loss(y, y_test)
    for series, original in zip(X + X_test, before, strict=True):
        pd.testing.assert_series_equal(series, original)


def test_uneven_series_rejected_by_an_evenly_trained_classifier(generative):
    times = np.array([0.0, 1.0, 2.5, 3.0, 4.0, 6.0, 7.0])
    uneven = pd.Series(np.sin(times), index=times)
    with pytest.raises(ValueError, match=r"X\[0\] is not evenly spaced"):
        generative.predict_proba([uneven])


# -- scikit-learn conventions ---------------------------------------------------------

PARAMETERS = {
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
}


def test_get_params_set_params_round_trip():
    model = bsts.LocalLevel() + bsts.Autoregressive(1)
    clf = Classifier(model=model, method="generative", num_steps=500, seed=3)
    params = clf.get_params()
    assert set(params) == PARAMETERS
    assert params["model"] is model
    assert (params["method"], params["num_steps"], params["seed"]) == ("generative", 500, 3)
    assert params["inference"] == "map" and params["class_prior"] is None
    assert clf.set_params(method="features", seed=4, class_prior=[0.3, 0.7]) is clf
    expected = {**params, "method": "features", "seed": 4, "class_prior": [0.3, 0.7]}
    assert clf.get_params() == expected
    assert Classifier(**clf.get_params()).get_params() == clf.get_params()
    # The defaults are the constructor's (scikit-learn's convention: __init__ stores).
    signature = inspect.signature(Classifier.__init__).parameters
    assert Classifier().get_params() == {name: signature[name].default for name in PARAMETERS}


def test_clone_and_fitted_attributes(generative):
    sklearn = pytest.importorskip("sklearn")
    from sklearn.base import clone, is_classifier
    from sklearn.utils.validation import check_is_fitted

    assert is_classifier(generative)
    copy = clone(generative)
    assert copy.get_params() == generative.get_params()
    assert not hasattr(copy, "classes_") and not hasattr(copy, "temperature_")
    with pytest.raises(ValueError, match="not fitted"):
        copy.predict_proba(np.zeros((1, T)))
    check_is_fitted(generative)
    with pytest.raises(sklearn.exceptions.NotFittedError):
        check_is_fitted(copy)
    with pytest.raises(ValueError, match="Invalid parameter"):
        Classifier().set_params(alpha=1.0)


def test_pipeline_refit_is_deterministic(train, members, held_out):
    pytest.importorskip("sklearn")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = train
    pipeline = make_pipeline(FunctionTransformer(), Classifier(**FAST))
    pipeline.fit(X, y)
    np.testing.assert_array_equal(pipeline.classes_, members.classes_)
    np.testing.assert_allclose(
        pipeline.predict_proba(held_out[0]), members.predict_proba(held_out[0]), rtol=1e-9
    )
    assert pipeline.score(*held_out) == members.score(*held_out)


def test_cross_val_score_two_folds(held_out):
    pytest.importorskip("sklearn")
    from sklearn.model_selection import cross_val_score

    # Two folds of the 40 held-out series: each fold fits 20 members, as `train` does, and
    # reuses their compiled programs.
    X, y = held_out
    scores = cross_val_score(Classifier(**FAST), X, y, cv=2)
    assert scores.shape == (2,)
    assert np.all(scores >= 0.8)


def test_combined(combined, train, held_out):
    X, y = held_out
    probabilities = combined.predict_proba(X)
    assert probabilities.shape == (len(X), 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    np.testing.assert_array_equal(combined.classes_, ["rough", "smooth"])
    assert combined.score(X, y) >= 0.85
    assert _log_loss(probabilities, combined.classes_, y) < _frequency_log_loss(train[1], y)


# -- errors ---------------------------------------------------------------------------


def _labels(n: int) -> np.ndarray:
    return np.array(["a", "b"] * (n // 2))


def _noise(n: int = 6) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, T))


@pytest.mark.parametrize(
    ("X", "match"),
    [
        (np.arange(10.0), r"2-D array .*got shape \(10,\); for a single series pass X\[None, :\]"),
        (np.zeros((4, 2, T)), r"X has 2 channels .*pass one channel"),
        (np.zeros((4, 2, 3, T)), r"got shape \(4, 2, 3, 60\)"),
        (np.array([["a"] * T] * 4), "X must be numeric"),
        ([np.arange(10.0), ["x"] * 10, np.arange(10.0), np.arange(10.0)], r"X\[1\] is not numeric"),
        (
            [pd.Series(np.arange(10.0))] * 2 + [pd.Series(["x"] * 10), pd.Series(np.arange(10.0))],
            r"X\[2\] is not numeric",
        ),
        ([np.zeros((3, 3))] * 4, r"X\[0\] must be 1-D"),
        ([], "X holds no series"),
        (np.zeros((0, T)), "X holds no series"),
        ([np.arange(10.0)] * 3 + [np.array([])], r"X\[3\] is empty"),
        (np.zeros((4, 0)), r"X\[0\] is empty"),
        (
            [pd.Series(np.arange(10.0) ** 1.5, index=list("abcdefghij"))] * 4,
            r"X\[0\] is indexed by \w+ values; time stamps must be dates",
        ),
        (pd.DataFrame([["x"] * 10] * 4), "X must be numeric"),
    ],
    ids=[
        "1-D",
        "2-channels",
        "4-D",
        "strings",
        "list-strings",
        "series-strings",
        "2-D-item",
        "empty-list",
        "no-rows",
        "empty-series",
        "no-columns",
        "string-index",
        "string-frame",
    ],
)
def test_bad_shapes_and_values(X, match):
    with pytest.raises(ValueError, match=match):
        Classifier(method="generative").fit(X, _labels(len(X) if len(X) > 1 else 4))


def test_bad_series_are_named_by_position():
    X = _noise()
    X[4, 2:] = np.nan  # two observed values
    with pytest.raises(ValueError, match=r"X\[4\]: .* has 2 observed values; at least 3"):
        Classifier(method="generative").fit(X, _labels(6))
    X = _noise()
    X[3] = 1.0
    with pytest.raises(ValueError, match=r"X\[3\]: .* is constant"):
        Classifier(method="generative").fit(X, _labels(6))
    X = list(_noise())
    X[5] = np.r_[X[5][:-1], np.inf]
    with pytest.raises(ValueError, match=r"X\[5\]: .* infinite"):
        Classifier(method="generative").fit(X, _labels(6))
    X = [pd.Series(x) for x in _noise()]
    X[2] = X[2].iloc[::-1]
    with pytest.raises(ValueError, match=r"X\[2\]: the time index must be increasing"):
        Classifier(method="generative").fit(X, _labels(6))


def test_bad_series_at_prediction_are_named(generative):
    X = _noise(3)
    X[1, 1:] = np.nan
    with pytest.raises(ValueError, match=r"X\[1\]: .* has 1 observed values"):
        generative.predict_proba(X)
    with pytest.raises(ValueError, match="X must be a 2-D array"):
        generative.predict(X[0])


def test_mixed_index_kinds_are_rejected():
    values = np.arange(10.0) ** 1.5
    X = [pd.Series(values), pd.Series(values, index=pd.date_range("2020", periods=10))]
    with pytest.raises(ValueError, match="mixes series indexed by dates"):
        Classifier(method="generative").fit(X * 2, _labels(4))


def test_label_errors():
    X = _noise()
    clf = Classifier(method="generative")
    with pytest.raises(ValueError, match=r"y has a single class .*'a'.*; give at least two"):
        clf.fit(X, ["a"] * 6)
    with pytest.raises(ValueError, match=r"one label per series: 6 series, y of shape \(5,\)"):
        clf.fit(X, _labels(6)[:5])
    with pytest.raises(ValueError, match=r"one label per series: 6 series, y of shape \(6, 1\)"):
        clf.fit(X, np.zeros((6, 1)))
    with pytest.raises(ValueError, match="missing labels"):
        clf.fit(X, [1.0, 2.0, np.nan, 1.0, 2.0, 1.0])
    with pytest.raises(ValueError, match=r"class .*'c'.* has a single training series"):
        clf.fit(X, ["a", "b", "a", "b", "a", "c"])
    with pytest.raises(ValueError, match=r"class .*3.* has a single training series"):
        clf.fit(X, [1, 2, 1, 2, 1, 3])
    assert not hasattr(clf, "temperature_")


@pytest.mark.parametrize(
    ("settings", "match"),
    [
        ({"method": "knn"}, "unknown method 'knn'; choose one of .*generative"),
        ({"inference": "svi"}, "unknown inference 'svi'"),
        ({"template": "yes"}, "template must be one of"),
        ({"pooling": "class"}, "pooling must be one of"),
        ({"pooling": "shared", "inference": "nuts"}, 'pooling="shared" .* use inference="map"'),
        ({"class_prior": [1.0, 0.0]}, r"class_prior must hold 2 positive numbers"),
        (
            {"class_prior": [0.5, 0.3, 0.2]},
            r"class_prior must hold 2 positive .* order of classes_",
        ),
        ({"model": "local level"}, "model must be a bsts Model or component"),
        (
            {"model": bsts.Model([bsts.LocalLevel()], observation="student_t")},
            "needs Gaussian observations",
        ),
        ({"model": bsts.LocalLevel() + bsts.Regression(["x"])}, "takes no covariates"),
    ],
    ids=[
        "method",
        "inference",
        "template",
        "pooling",
        "shared-nuts",
        "prior-zero",
        "prior-size",
        "model",
        "t",
        "cov",
    ],
)
def test_bad_settings(settings, match):
    with pytest.raises(ValueError, match=match):
        Classifier(method="generative").set_params(**settings).fit(_noise(), _labels(6))


# -- compilation ------------------------------------------------------------------------


def test_prediction_compiles_nothing_new_within_a_bucket(members, held_out):
    """Series of other lengths in the same bucket reuse the scoring programs."""
    from bsts.batch import trace_counts

    X, _ = held_out
    members.predict_proba(X[:4])
    before = dict(trace_counts)
    shorter = [row[: T - k] for k, row in enumerate(X[4:12])]
    members.predict_proba(shorter)
    assert dict(trace_counts) == before


@pytest.mark.slow
def test_nuts_members_recover_dynamics(train, held_out):
    """Posterior draws instead of modes: each member contributes `draws_per_series` sets."""
    X, y = train
    clf = Classifier(
        **FAST, inference="nuts", num_warmup=150, num_samples=100, draws_per_series=4
    ).fit(X, y)
    X_test, y_test = held_out
    probabilities = clf.predict_proba(X_test)
    assert np.mean(clf.classes_[probabilities.argmax(axis=1)] == y_test) >= 0.9
    assert _log_loss(probabilities, clf.classes_, y_test) < _frequency_log_loss(y, y_test)
