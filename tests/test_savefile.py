"""Save files (`bsts.savefile`): exact round trips, and nothing but bsts's own types is built."""

import io
import json
import pickle
import zipfile

import numpy as np
import numpyro.distributions as dist
import pandas as pd
import pytest

import bsts
from bsts import savefile
from bsts.savefile import SaveFileError

MODEL = bsts.LocalLevel() + bsts.Seasonal(4)


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(11)
    rows = []
    for key, n in {"a": 26, "b": 30}.items():
        y = 20 + np.cumsum(rng.normal(scale=0.4, size=n)) + 2 * np.sin(np.arange(n) * np.pi / 2)
        ds = pd.date_range("2001-01", periods=n, freq="MS")
        rows.append(pd.DataFrame({"unique_id": key, "ds": ds, "y": y}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture(scope="module")
def fits(frame):
    return bsts.fit_many(MODEL, frame, method="map", seed=2)


def _round_trip(value, tmp_path, kind="Thing"):
    path = tmp_path / "value.bsts"
    savefile.write(path, value, kind)
    return savefile.read(path, kind)


def test_plain_values_and_pandas_come_back_exactly(tmp_path):
    value = {
        1: (np.float32(2.5), np.arange(6.0).reshape(2, 3), [True, None, "x"]),
        "nan": float("nan"),
        "inf": -float("inf"),
        "stamp": pd.Timestamp("2020-03-01 12:00", tz="Europe/Paris"),
        "step": pd.Timedelta(days=1),
        "month": pd.offsets.MonthBegin(),
        "quarter": pd.offsets.QuarterEnd(startingMonth=3),
        "monthly": pd.date_range("2000-01", periods=5, freq="MS", name="ds"),
        "zoned": pd.date_range("2000-01-01", periods=3, freq="h", tz="UTC"),
        "range": pd.RangeIndex(3, 9, 2),
        "floats": pd.Index([0.0, 1.5, 4.0]),
        "weights": pd.Series([0.25, 0.75], index=["llt", "damped"], name="weight"),
        "table": pd.DataFrame({"name": ["a", "b"], "elpd": [-1.0, np.nan]}, index=[3, 4]),
        "prior": dist.HalfNormal(0.5),
    }
    back = _round_trip(value, tmp_path)
    assert back[1][0] == np.float32(2.5) and back[1][0].dtype == np.float32
    np.testing.assert_array_equal(back[1][1], value[1][1])
    assert back[1][2] == [True, None, "x"]
    assert np.isnan(back["nan"]) and back["inf"] == -np.inf
    assert back["stamp"] == value["stamp"] and back["step"] == value["step"]
    assert back["month"] == value["month"] and back["quarter"] == value["quarter"]
    for name in ("monthly", "zoned", "range", "floats"):
        pd.testing.assert_index_equal(back[name], value[name])
    assert back["monthly"].freq == value["monthly"].freq
    pd.testing.assert_series_equal(back["weights"], value["weights"])
    pd.testing.assert_frame_equal(back["table"], value["table"])
    assert isinstance(back["prior"], dist.HalfNormal)
    assert float(back["prior"].scale) == 0.5


def test_posterior_round_trip_forecasts_the_same(fits, tmp_path):
    post = fits["a"]
    path = tmp_path / "a.bsts"
    post.save(path)
    loaded = bsts.Posterior.load(path)
    assert repr(loaded.model) == repr(post.model)
    for name, value in post.draws.items():
        np.testing.assert_array_equal(loaded.draws[name], value)
    pd.testing.assert_index_equal(loaded.series.index, post.series.index)
    before = bsts.forecast(post, horizon=4, seed=1).to_pandas()
    after = bsts.forecast(loaded, horizon=4, seed=1).to_pandas()
    pd.testing.assert_frame_equal(after, before)


def test_student_t_posterior_round_trip(frame, tmp_path):
    rows = frame[frame["unique_id"] == "b"]
    y = pd.Series(rows["y"].to_numpy(), index=pd.DatetimeIndex(rows["ds"]))
    model = bsts.Model([bsts.LocalLevel()], observation="student_t")
    post = bsts.fit(model, y, method="map", seed=0)
    path = tmp_path / "t.bsts"
    post.save(path)
    loaded = bsts.Posterior.load(path)
    assert type(loaded.model.observation) is type(post.model.observation)
    before = bsts.forecast(post, horizon=3, seed=4).draws
    np.testing.assert_array_equal(bsts.forecast(loaded, horizon=3, seed=4).draws, before)


def test_fits_round_trip_shares_one_model(fits, tmp_path):
    path = tmp_path / "fits.bsts"
    fits.save(path)
    loaded = bsts.Fits.load(path)
    assert loaded.ids == fits.ids
    assert loaded["a"].model is loaded["b"].model is loaded.model
    before = bsts.forecast(fits, horizon=3, seed=0).to_pandas()
    after = bsts.forecast(loaded, horizon=3, seed=0).to_pandas()
    pd.testing.assert_frame_equal(after, before)


def test_a_file_of_another_kind_is_named(fits, tmp_path):
    path = tmp_path / "fits.bsts"
    fits.save(path)
    with pytest.raises(SaveFileError, match="holds a bsts Fits, not a Posterior"):
        bsts.Posterior.load(path)


class _Marker:
    """Unpickling this would create a file: the test checks that it never happens."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


def test_a_pickle_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "old.posterior"
    path.write_bytes(pickle.dumps(_Marker(marker)))
    with pytest.raises(SaveFileError, match="not a bsts save file"):
        bsts.Posterior.load(path)
    assert not marker.exists()


def _crafted(tmp_path, body, kind="Posterior"):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        manifest = {"format": "bsts-save", "version": 1, "kind": kind, "body": body}
        archive.writestr("manifest.json", json.dumps(manifest))
    path = tmp_path / "crafted.bsts"
    path.write_bytes(buffer.getvalue())
    return path


@pytest.mark.parametrize(
    "body",
    [
        {"object": ["os", "system"], "id": 0, "state": {}},
        {"object": ["bsts.savefile", "write"], "id": 0, "state": {}},
        {"object": ["bsts.nothing_here", "Posterior"], "id": 0, "state": {}},
        {"distribution": "constraints", "args": {}},
        {"eval": "1 + 1"},
    ],
)
def test_a_crafted_file_builds_only_bsts_types(tmp_path, body):
    with pytest.raises(SaveFileError, match="damaged or not a bsts save file"):
        bsts.Posterior.load(_crafted(tmp_path, body))


def test_what_cannot_be_saved_is_named_when_writing(fits, tmp_path):
    class Custom:
        pass

    with pytest.raises(SaveFileError, match=r"Thing\[0\]: a .*Custom cannot be saved"):
        savefile.write(tmp_path / "x.bsts", [Custom()], "Thing")
    with pytest.raises(SaveFileError, match="array of Python objects"):
        savefile.write(tmp_path / "x.bsts", np.array([object()]), "Thing")
    assert not (tmp_path / "x.bsts").exists()


def test_a_newer_format_asks_for_an_upgrade(tmp_path):
    path = _crafted(tmp_path, None)
    with zipfile.ZipFile(path, "w") as archive:
        manifest = {"format": "bsts-save", "version": 99, "kind": "Posterior", "body": None}
        archive.writestr("manifest.json", json.dumps(manifest))
    with pytest.raises(SaveFileError, match="upgrade bsts"):
        bsts.Posterior.load(path)
