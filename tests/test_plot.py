"""Plots: each draws on the Axes it is given (or a new figure) and returns it."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

import bsts
from bsts import plot


@pytest.fixture(scope="module")
def fitted():
    data = bsts.datasets.load("nile")
    train, test = data.iloc[:-10], data["volume"].iloc[-10:]
    post = bsts.fit(bsts.LocalLevel(), train, "volume", num_warmup=60, num_samples=40, seed=0)
    return post, bsts.forecast(post, horizon=10, seed=0), test


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_forecast_fan_chart_on_given_axes(fitted):
    post, prediction, test = fitted
    _, ax = plt.subplots()
    out = plot.plot_forecast(post, prediction, actual=test, intervals=(0.5, 0.9), ax=ax)
    assert out is ax
    assert len(ax.collections) == 2  # one band per interval
    labels = [line.get_label() for line in ax.get_lines()]
    assert labels == ["observed", "forecast mean", "actual"]
    observed = ax.get_lines()[0].get_ydata()
    np.testing.assert_allclose(observed, post.series.to_original(post.series.y))


def test_forecast_alone_as_in_the_contract(fitted):
    post, prediction, _ = fitted
    ax = bsts.plot_forecast(prediction)
    np.testing.assert_allclose(
        ax.get_lines()[0].get_ydata(), post.series.to_original(post.series.y)
    )
    with pytest.raises(TypeError, match="Forecast"):
        bsts.plot_forecast(post)


def test_forecast_history_window(fitted):
    post, prediction, _ = fitted
    ax = plot.plot_forecast(post, prediction, history=20)
    assert isinstance(ax, Axes)
    assert len(ax.get_lines()[0].get_xdata()) == 20


def test_components_one_panel_each(fitted):
    post, _, _ = fitted
    decomposition = bsts.decompose(post, num_samples=40)
    figure = plot.plot_components(decomposition)
    assert isinstance(figure, Figure)
    assert [ax.get_ylabel() for ax in figure.axes] == ["level", "fitted"]
    with pytest.raises(ValueError, match="axes must hold 2 Axes"):
        plot.plot_components(decomposition, axes=[plt.subplots()[1]])


def test_residuals_flag_outliers(fitted):
    post, _, _ = fitted
    ax = plot.plot_residuals(post, threshold=1.0)
    table = bsts.one_step_predictions(post)
    flagged = ax.get_lines()[1]
    assert len(flagged.get_ydata()) == int((table["residual"].abs() > 1.0).sum()) > 0


@pytest.mark.parametrize("kind", ["trace", "rank"])
def test_diagnostics_figure(fitted, kind):
    post, _, _ = fitted
    figure = plot.plot_diagnostics(post, kind)
    assert isinstance(figure, Figure)
    assert figure.axes


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda p, f: plot.plot_forecast(p, f, intervals=(0.5, 1.2)), "intervals must lie"),
        (lambda p, f: plot.plot_residuals(p, threshold=0), "threshold must be positive"),
        (lambda p, f: plot.plot_diagnostics(p, "pair"), "kind must be"),
    ],
)
def test_bad_arguments(fitted, call, message):
    post, prediction, _ = fitted
    with pytest.raises(ValueError, match=message):
        call(post, prediction)
