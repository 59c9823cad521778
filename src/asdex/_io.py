"""Saving and loading patterns as `.npz` files, without pickle.

Index arrays are stored as arrays; everything else (shape, argnums, the input
structure, the coloring's scalars) goes into one JSON string, so that a file can be
loaded with `allow_pickle=False`. Input structures may nest tuples, lists, dicts and
`None` around `jax.ShapeDtypeStruct` leaves.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

import jax
import numpy as np

from asdex._pattern import ColoredPattern, SparsityPattern, StarSet

_FORMAT = "asdex"
_VERSION = 1
_STAR_FIELDS = ("edge_rows", "edge_cols", "hubs", "star_ids")


# --- input structure <-> JSON ----------------------------------------------------------


def _encode_tree(tree: Any) -> Any:
    if tree is None:
        return None
    if isinstance(tree, jax.ShapeDtypeStruct):
        return {"aval": [list(tree.shape), np.dtype(tree.dtype).str]}
    if isinstance(tree, tuple) and not hasattr(tree, "_fields"):
        return {"tuple": [_encode_tree(x) for x in tree]}
    if isinstance(tree, list):
        return {"list": [_encode_tree(x) for x in tree]}
    if isinstance(tree, dict) and all(isinstance(k, str) for k in tree):
        return {"dict": {k: _encode_tree(v) for k, v in tree.items()}}
    raise ValueError(
        f"Cannot save an input structure containing {type(tree).__name__}: only tuples, "
        "lists, dicts with string keys, None and jax.ShapeDtypeStruct leaves can be saved."
    )


def _decode_tree(data: Any) -> Any:
    if data is None:
        return None
    if not isinstance(data, dict) or len(data) != 1:
        raise ValueError(f"malformed input structure entry {data!r}")
    ((kind, value),) = data.items()
    if kind == "aval":
        shape, dtype = value
        return jax.ShapeDtypeStruct(tuple(int(d) for d in shape), np.dtype(dtype))
    if kind == "tuple":
        return tuple(_decode_tree(x) for x in value)
    if kind == "list":
        return [_decode_tree(x) for x in value]
    if kind == "dict":
        return {k: _decode_tree(v) for k, v in value.items()}
    raise ValueError(f"unknown input structure node {kind!r}")


# --- file access -----------------------------------------------------------------------


def _write(path: str | os.PathLike[str], kind: str, meta: dict, arrays: dict) -> None:
    header = {"format": _FORMAT, "version": _VERSION, "kind": kind, **meta}
    with open(path, "wb") as file:
        np.savez_compressed(file, header=np.array(json.dumps(header)), **arrays)


def _read(path: str | os.PathLike[str], kind: str) -> tuple[dict, dict[str, np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise ValueError("it holds a single array, not an .npz archive")
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(
            f"{os.fspath(path)!r} is not a readable asdex .npz file: {error}"
        ) from None
    try:
        header = json.loads(str(arrays.pop("header")[()]))
    except (KeyError, ValueError, TypeError):
        header = None
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise ValueError(f"{os.fspath(path)!r} is an .npz file, but not one saved by asdex.")
    if header.get("version") != _VERSION:
        raise ValueError(
            f"{os.fspath(path)!r} has asdex file version {header.get('version')!r}; this "
            f"version of asdex reads version {_VERSION}."
        )
    if header.get("kind") != kind:
        raise ValueError(
            f"{os.fspath(path)!r} holds a {header.get('kind')}, not a {kind}; load it with "
            f"{header.get('kind')}.load."
        )
    return header, arrays


def _sparsity_parts(pattern: SparsityPattern) -> tuple[dict, dict]:
    argnums = pattern.argnums
    meta = {
        "shape": list(pattern.shape),
        "argnums": argnums if isinstance(argnums, int) else list(argnums),
        "input_avals": _encode_tree(tuple(pattern.input_avals)),
    }
    return meta, {"rows": pattern.rows, "cols": pattern.cols}


def _sparsity_from_parts(meta: dict, arrays: dict, path: Any) -> SparsityPattern:
    try:
        argnums = meta["argnums"]
        return SparsityPattern(
            arrays["rows"],
            arrays["cols"],
            tuple(meta["shape"]),
            _decode_tree(meta["input_avals"]),
            argnums if isinstance(argnums, int) else tuple(argnums),
        )
    except (KeyError, ValueError, TypeError) as error:
        raise ValueError(f"{os.fspath(path)!r} holds a malformed pattern: {error}") from None


# --- public entry points (called by the classes' save/load) -----------------------------


def save_sparsity(pattern: SparsityPattern, path: str | os.PathLike[str]) -> None:
    """Save a `SparsityPattern` to an `.npz` file.

    Examples:
        >>> import tempfile, pathlib
        >>> p = SparsityPattern.from_coo([0], [1], (1, 2))
        >>> file = pathlib.Path(tempfile.mkdtemp()) / "p.npz"
        >>> save_sparsity(p, file)
        >>> load_sparsity(file) == p
        True
    """
    meta, arrays = _sparsity_parts(pattern)
    _write(path, "SparsityPattern", meta, arrays)


def load_sparsity(path: str | os.PathLike[str]) -> SparsityPattern:
    """Load a `SparsityPattern` saved by `save_sparsity`; a foreign file is a `ValueError`."""
    header, arrays = _read(path, "SparsityPattern")
    return _sparsity_from_parts(header, arrays, path)


def save_coloring(colored: ColoredPattern, path: str | os.PathLike[str]) -> None:
    """Save a `ColoredPattern` (with its pattern and star set) to an `.npz` file.

    Examples:
        >>> import tempfile, pathlib
        >>> p = SparsityPattern.from_coo([0], [1], (1, 2))
        >>> c = ColoredPattern(p, np.array([0, 0]), 1, False, "fwd")
        >>> file = pathlib.Path(tempfile.mkdtemp()) / "c.npz"
        >>> save_coloring(c, file)
        >>> load_coloring(file).num_colors
        1
    """
    meta, arrays = _sparsity_parts(colored.sparsity)
    meta["coloring"] = {
        "num_colors": int(colored.num_colors),
        "symmetric": bool(colored.symmetric),
        "mode": colored.mode,
        "method": colored.method,
        "order": colored.order,
    }
    arrays["colors"] = np.asarray(colored.colors, dtype=np.int32)
    if colored.star_set is not None:
        for name in _STAR_FIELDS:
            arrays[f"star_{name}"] = np.asarray(getattr(colored.star_set, name))
    _write(path, "ColoredPattern", meta, arrays)


def load_coloring(path: str | os.PathLike[str]) -> ColoredPattern:
    """Load a `ColoredPattern` saved by `save_coloring`; a foreign file is a `ValueError`."""
    header, arrays = _read(path, "ColoredPattern")
    sparsity = _sparsity_from_parts(header, arrays, path)
    try:
        coloring = header["coloring"]
        star_set = None
        if "star_hubs" in arrays:
            star_set = StarSet(*(arrays[f"star_{name}"] for name in _STAR_FIELDS))
        return ColoredPattern(
            sparsity,
            arrays["colors"].astype(np.int32),
            int(coloring["num_colors"]),
            bool(coloring["symmetric"]),
            coloring["mode"],
            star_set,
            coloring.get("method"),
            coloring.get("order"),
        )
    except (KeyError, ValueError, TypeError) as error:
        raise ValueError(f"{os.fspath(path)!r} holds a malformed coloring: {error}") from None
