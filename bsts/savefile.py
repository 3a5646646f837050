"""Save files that cannot run code when they are read: JSON for structure, `.npy` for arrays.

A save file is a zip archive (NumPy's `.npz` layout): an entry `manifest` holds the JSON
description of the saved object, and every array is an `.npy` entry of its own, read back
with `allow_pickle=False`. Reading builds only what the description names from a closed
list: bsts's own classes (looked up in bsts's modules, created without running their
constructors), NumPyro distributions (rebuilt from their parameters), a few pandas types
(indexes, series, frames, timestamps) and plain values. Anything else is refused when the
file is written, with the name of the part that cannot be saved, so a file that reads back
is the whole object. A pickle is different in kind: reading one runs whatever code it names.
"""

from __future__ import annotations

import importlib
import io
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import jax
import numpy as np
import numpyro.distributions as dist
import pandas as pd

__all__ = ["SaveFileError", "Saveable", "read", "write"]

FORMAT = "bsts-save"
VERSION = 1
_MANIFEST = "manifest.json"


class SaveFileError(ValueError):
    """A save file that cannot be written or read, with the reason."""


class Saveable:
    """`save(path)` and `Class.load(path)` in this format, for a bsts result class."""

    def save(self, path) -> None:
        """Write to a file that `load` reads back exactly (no pickle: reading runs no code).

        Raises:
            SaveFileError: a part cannot be saved (a custom class or function in the
                model); the message names it.
        """
        write(path, self, type(self).__name__)

    @classmethod
    def load(cls, path):
        """Read an object written by `save`.

        Raises:
            SaveFileError: not a bsts save file of this class (a pickle written by an
                older bsts is refused: reading it could run code).
        """
        value = read(path, cls.__name__)
        if not isinstance(value, cls):
            raise SaveFileError(f"{path} does not hold a bsts {cls.__name__}")
        return value


def write(path, value, kind: str) -> None:
    """Write `value` (a `Posterior`, `Fits`, `Ensemble`, ...) to `path`.

    Args:
        path: the file to write (conventionally `.bsts`).
        value: the object.
        kind: its class name, checked by `read`.

    Raises:
        SaveFileError: a part of the object has a type this format cannot hold (a custom
            class, a function); the message names where it sits.
    """
    out = _Writer()
    body = _encode(value, out, kind)
    manifest = {"format": FORMAT, "version": VERSION, "kind": kind, "body": body}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(_MANIFEST, json.dumps(manifest))
        for name, array in out.arrays.items():
            entry = io.BytesIO()
            np.save(entry, array, allow_pickle=False)
            archive.writestr(f"{name}.npy", entry.getvalue())
    Path(path).write_bytes(buffer.getvalue())


def read(path, kind: str):
    """Read an object written by `write`, checking that it is a `kind`.

    Raises:
        SaveFileError: not a bsts save file (for example a pickle written by an older
            bsts, which is not read because reading it could run code), another kind of
            object, a newer format version, or a damaged file.
    """
    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise SaveFileError(
            f"{path} is not a bsts save file. Files written by bsts before save files were "
            "introduced are pickles, which bsts no longer reads because reading a pickle can "
            "run code; fit again and save with this version."
        )
    with zipfile.ZipFile(path) as archive:
        try:
            manifest = json.loads(archive.read(_MANIFEST))
        except (KeyError, json.JSONDecodeError) as error:
            raise SaveFileError(f"{path} is not a bsts save file ({error})") from error
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            raise SaveFileError(f"{path} is not a bsts save file")
        if manifest.get("version", 0) > VERSION:
            raise SaveFileError(
                f"{path} was written by a newer bsts (format version {manifest['version']}); "
                "upgrade bsts to read it"
            )
        if manifest.get("kind") != kind:
            raise SaveFileError(
                f"{path} holds a bsts {manifest.get('kind')}, not a {kind}; "
                f"read it with bsts.{manifest.get('kind')}.load"
            )

        def array(name: str) -> np.ndarray:
            with archive.open(f"{name}.npy") as entry:
                return np.load(io.BytesIO(entry.read()), allow_pickle=False)

        try:
            return _decode(manifest["body"], array, {})
        except (KeyError, TypeError, ValueError, AttributeError, ImportError) as error:
            raise SaveFileError(f"{path} is damaged or not a bsts save file: {error}") from error


# --- encoding -------------------------------------------------------------------------


@dataclass
class _Writer:
    """What encoding collects besides the manifest.

    Attributes:
        arrays: entry name to array, each written as its own `.npy` entry.
        shared: `id` of a bsts object already written to `(number, object)`; holding the
            object keeps its id from being reused while encoding runs.
    """

    arrays: dict = field(default_factory=dict)
    shared: dict = field(default_factory=dict)


def _store(array: np.ndarray, out: _Writer, where: str) -> dict:
    if array.dtype == object:
        # Text columns and labels only: other objects would not come back as they were.
        if not all(isinstance(item, str) for item in array.flat):
            raise SaveFileError(f"{where}: an array of Python objects cannot be saved")
        array = array.astype(str)
    name = f"a{len(out.arrays)}"
    out.arrays[name] = array
    return {"array": name}


def _encode(value, out: _Writer, where: str):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float):
        return {"float": repr(value)}  # JSON has no NaN or infinity
    if isinstance(value, (np.ndarray, jax.Array)):
        return _store(np.asarray(value), out, where)
    if isinstance(value, np.generic):
        return {"scalar": _store(np.asarray(value), out, where)}
    if isinstance(value, (list, tuple)):
        items = [_encode(v, out, f"{where}[{i}]") for i, v in enumerate(value)]
        return {"tuple" if isinstance(value, tuple) else "list": items}
    if isinstance(value, dict):
        return {
            "dict": [
                [_encode(k, out, f"{where} key"), _encode(v, out, f"{where}[{k!r}]")]
                for k, v in value.items()
            ]
        }
    if isinstance(value, pd.Timestamp):
        return {"timestamp": value.isoformat()}
    if isinstance(value, pd.Timedelta):
        return {"timedelta": int(value.value)}
    if isinstance(value, pd.offsets.BaseOffset):
        return {"offset": _offset_code(value, where)}
    if isinstance(value, pd.Index):
        return _encode_index(value, out, where)
    if isinstance(value, pd.Series):
        return {
            "series": _encode(value.to_numpy(), out, where),
            "index": _encode_index(value.index, out, where),
            "name": _encode(value.name, out, where),
        }
    if isinstance(value, pd.DataFrame):
        return {
            "frame": [
                [_encode(c, out, where), _encode(value[c].to_numpy(), out, f"{where}.{c}")]
                for c in value.columns
            ],
            "index": _encode_index(value.index, out, where),
        }
    if isinstance(value, dist.Distribution):
        return _encode_distribution(value, out, where)
    cls = type(value)
    if cls.__module__.split(".")[0] == "bsts" and hasattr(cls, "__bsts_load__"):
        # A class whose parts are not bsts types (a network's Equinox layers) says what to
        # keep, and rebuilds itself from that.
        state = _encode(value.__bsts_save__(), out, where)
        return {"custom": [cls.__module__, cls.__qualname__], "state": state}
    if cls.__module__.split(".")[0] == "bsts" and hasattr(value, "__dict__"):
        # An object met again (the model every posterior of a collection shares) is
        # written once and referred to.
        if id(value) in out.shared:
            return {"ref": out.shared[id(value)][0]}
        number = len(out.shared)
        out.shared[id(value)] = (number, value)
        state = {k: _encode(v, out, f"{where}.{k}") for k, v in vars(value).items()}
        return {"object": [cls.__module__, cls.__qualname__], "id": number, "state": state}
    raise SaveFileError(f"{where}: a {cls.__module__}.{cls.__qualname__} cannot be saved")


def _offset_code(offset: pd.offsets.BaseOffset, where: str) -> str:
    code = offset.freqstr
    try:
        same = pd.tseries.frequencies.to_offset(code) == offset
    except ValueError:
        same = False
    if not same:
        raise SaveFileError(f"{where}: the date offset {offset!r} cannot be saved")
    return code


def _encode_index(index: pd.Index, out: _Writer, where: str) -> dict:
    name = _encode(index.name, out, where)
    if isinstance(index, pd.RangeIndex):
        return {"range": [index.start, index.stop, index.step], "name": name}
    if isinstance(index, pd.DatetimeIndex):
        return {
            "datetime": _store(index.asi8, out, where),
            "unit": index.unit,
            "tz": None if index.tz is None else str(index.tz),
            "freq": None if index.freq is None else index.freqstr,
            "name": name,
        }
    if isinstance(index, pd.MultiIndex) or isinstance(index.dtype, pd.CategoricalDtype):
        raise SaveFileError(f"{where}: a {type(index).__name__} cannot be saved")
    return {"index": _encode(index.to_numpy(), out, where), "name": name}


def _encode_distribution(value: dist.Distribution, out: _Writer, where: str) -> dict:
    cls = type(value)
    if getattr(dist, cls.__name__, None) is not cls:
        raise SaveFileError(f"{where}: the prior {cls.__qualname__} cannot be saved")
    if isinstance(value, dist.TransformedDistribution):
        raise SaveFileError(f"{where}: a transformed prior ({cls.__name__}) cannot be saved")
    args = {
        k: _encode(getattr(value, k), out, f"{where}.{k}")
        for k in value.arg_constraints
        if hasattr(value, k)
    }
    return {"distribution": cls.__name__, "args": args}


# --- decoding -------------------------------------------------------------------------


def _decode(node, array, shared: dict):
    if node is None or isinstance(node, (bool, int, str)):
        return node
    if not isinstance(node, dict) or len(node) == 0:
        raise ValueError(f"unexpected entry {node!r}")
    tag = next(iter(node))
    if tag == "float":
        return float(node["float"])
    if tag == "array":
        return array(node["array"])
    if tag == "scalar":
        return _decode(node["scalar"], array, shared)[()]
    if tag == "list":
        return [_decode(v, array, shared) for v in node["list"]]
    if tag == "tuple":
        return tuple(_decode(v, array, shared) for v in node["tuple"])
    if tag == "dict":
        return {_decode(k, array, shared): _decode(v, array, shared) for k, v in node["dict"]}
    if tag == "timestamp":
        return pd.Timestamp(node["timestamp"])
    if tag == "offset":
        return pd.tseries.frequencies.to_offset(node["offset"])
    if tag == "timedelta":
        return pd.Timedelta(int(node["timedelta"]))
    if tag in ("range", "datetime", "index"):
        return _decode_index(node, array, shared)
    if tag == "series":
        index = _decode_index(node["index"], array, shared)
        return pd.Series(
            _decode(node["series"], array, shared),
            index=index,
            name=_decode(node["name"], array, shared),
        )
    if tag == "frame":
        columns = {_decode(c, array, shared): _decode(v, array, shared) for c, v in node["frame"]}
        return pd.DataFrame(columns, index=_decode_index(node["index"], array, shared))
    if tag == "distribution":
        cls = getattr(dist, node["distribution"])
        if not (isinstance(cls, type) and issubclass(cls, dist.Distribution)):
            raise ValueError(f"{node['distribution']} is not a NumPyro distribution")
        return cls(**{k: _decode(v, array, shared) for k, v in node["args"].items()})
    if tag == "object":
        return _decode_object(node, array, shared)
    if tag == "custom":
        cls = _bsts_class(*node["custom"])
        return cls.__bsts_load__(_decode(node["state"], array, shared))
    if tag == "ref":
        return shared[node["ref"]]
    raise ValueError(f"unknown entry {tag!r}")


def _decode_index(node: dict, array, shared: dict) -> pd.Index:
    name = _decode(node["name"], array, shared)
    if "range" in node:
        return pd.RangeIndex(*node["range"], name=name)
    if "datetime" in node:
        values = array(node["datetime"]["array"]).astype(f"datetime64[{node['unit']}]")
        index = pd.DatetimeIndex(values, name=name)
        if node["tz"] is not None:
            index = index.tz_localize("UTC").tz_convert(node["tz"])
        if node["freq"] is not None:
            index.freq = node["freq"]
        return index
    return pd.Index(_decode(node["index"], array, shared), name=name)


def _bsts_class(module_name: str, qualname: str) -> type:
    if module_name.split(".")[0] != "bsts":
        raise ValueError(f"{module_name}.{qualname} is not a bsts class")
    target = importlib.import_module(module_name)
    for part in qualname.split("."):
        target = getattr(target, part)
    if not isinstance(target, type) or target.__module__ != module_name:
        raise ValueError(f"{module_name}.{qualname} is not a bsts class")
    return target


def _decode_object(node: dict, array, shared: dict):
    target = _bsts_class(*node["object"])
    # Not through the constructor: the saved state is the object's state after it ran.
    instance = object.__new__(target)
    shared[node["id"]] = instance
    for key, value in node["state"].items():
        object.__setattr__(instance, key, _decode(value, array, shared))
    return instance
