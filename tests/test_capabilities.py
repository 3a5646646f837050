"""Component capabilities declared on `Component` (issue 21), and the CLI's term table."""

import numpy as np
import pandas as pd
import pytest

import bsts
from bsts.analysis import ChangePointTrend
from bsts.cli import TERMS, parse_components
from bsts.components import Component
from bsts.model import Model


def test_base_class_declares_defaults():
    component = Component()
    assert not component.is_level and not component.has_slope
    assert not component.drives_level and component.level is None
    assert not component.point_estimated
    assert component.param_sites("x") == [] and component.penalty_sites("x") == []
    params = {"a": 1.0}
    assert component.attach_network("x", params, {}) is params
    assert component.modulate(params, None, "block") == "block"


@pytest.mark.parametrize(
    "component, level, slope",
    [
        (bsts.LocalLevel(), True, False),
        (bsts.LocalLinearTrend(), True, True),
        (bsts.SemiLocalLinearTrend(), True, True),
        (ChangePointTrend(), True, False),
        (ChangePointTrend(slope=True), True, True),
        (bsts.Seasonal(4), False, False),
        (bsts.Autoregressive(1), False, False),
    ],
)
def test_levels_declare_themselves(component, level, slope):
    assert component.is_level is level
    assert component.has_slope is slope


def test_level_drivers_find_any_level_component():
    model = Model([ChangePointTrend(), bsts.LSTMTransition(["x"])])
    assert model.modulated_levels == {"lstm_transition": "change"}
    assert bsts.LSTMTransition(["x"]).drives_level
    assert model.network_param_sites() == ["lstm_transition.network$params"]
    assert Model([bsts.LocalLevel()]).network_param_sites() == []


def test_trend_accepts_a_change_point_trend():
    rng = np.random.default_rng(0)
    y = pd.Series(np.r_[np.zeros(20), np.full(20, 3.0)] + 0.1 * rng.normal(size=40))
    post = bsts.fit(ChangePointTrend(), y, method="map", num_steps=200, seed=0)
    table = bsts.analysis.trend(post, num_samples=20)
    assert list(table.index) == ["change", "rate"]
    assert table.loc["change", "mean"] > 1.0


def test_cli_terms_are_a_table_of_component_classes():
    assert all(issubclass(cls, Component) for cls, *_ in TERMS.values())
    _, component = parse_components("level+sparse_regression(x1,x2)").components
    assert isinstance(component, bsts.Regression) and component.sparse
