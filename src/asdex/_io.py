"""The `.npz` file codec: index arrays plus one JSON header, read without pickle.

Index arrays are stored as arrays; everything else (shape, argnums, the input
structure, the coloring's scalars) goes into one JSON header, so that a file can be
loaded with `allow_pickle=False`. Input structures may nest tuples, lists, dicts and
`None` around `jax.ShapeDtypeStruct` leaves. This module knows no asdex class: the
classes in `asdex._pattern` split themselves into metadata and arrays and back.
"""

from __future__ import annotations

import json
import os
import zipfile
from typing import Any

import jax
import numpy as np

_FORMAT = "asdex"
VERSION = 2
"""The file version written; version 1 files hold no decompression plan."""


# --- input structure <-> JSON ----------------------------------------------------------


def encode_tree(tree: Any) -> Any:
    """Encode an input structure as JSON-ready nested lists and dicts.

    Raises:
        ValueError: If the structure holds anything but tuples, lists, dicts with string
            keys, `None` and `jax.ShapeDtypeStruct` leaves.

    Examples:
        >>> encode_tree((jax.ShapeDtypeStruct((2,), np.float32), None))
        {'tuple': [{'aval': [[2], '<f4']}, None]}
    """
    if tree is None:
        return None
    if isinstance(tree, jax.ShapeDtypeStruct):
        return {"aval": [list(tree.shape), np.dtype(tree.dtype).str]}
    if isinstance(tree, tuple) and not hasattr(tree, "_fields"):
        return {"tuple": [encode_tree(x) for x in tree]}
    if isinstance(tree, list):
        return {"list": [encode_tree(x) for x in tree]}
    if isinstance(tree, dict) and all(isinstance(k, str) for k in tree):
        return {"dict": {k: encode_tree(v) for k, v in tree.items()}}
    raise ValueError(
        f"Cannot save an input structure containing {type(tree).__name__}: only tuples, "
        "lists, dicts with string keys, None and jax.ShapeDtypeStruct leaves can be saved."
    )


def decode_tree(data: Any) -> Any:
    """Decode what `encode_tree` produced.

    Raises:
        ValueError: On a malformed entry.

    Examples:
        >>> decode_tree({"tuple": [None]})
        (None,)
    """
    if data is None:
        return None
    if not isinstance(data, dict) or len(data) != 1:
        raise ValueError(f"malformed input structure entry {data!r}")
    ((kind, value),) = data.items()
    if kind == "aval":
        shape, dtype = value
        return jax.ShapeDtypeStruct(tuple(int(d) for d in shape), np.dtype(dtype))
    if kind == "tuple":
        return tuple(decode_tree(x) for x in value)
    if kind == "list":
        return [decode_tree(x) for x in value]
    if kind == "dict":
        return {k: decode_tree(v) for k, v in value.items()}
    raise ValueError(f"unknown input structure node {kind!r}")


# --- file access -----------------------------------------------------------------------


def write(path: str | os.PathLike[str], kind: str, meta: dict, arrays: dict) -> None:
    """Write `arrays` and a JSON header (`kind` and `meta`) to an `.npz` file.

    Examples:
        >>> import tempfile, pathlib
        >>> file = pathlib.Path(tempfile.mkdtemp()) / "a.npz"
        >>> write(file, "Thing", {"size": 2}, {"values": np.arange(2)})
        >>> header, arrays = read(file, "Thing")
        >>> header["size"], arrays["values"].tolist()
        (2, [0, 1])
    """
    header = {"format": _FORMAT, "version": VERSION, "kind": kind, **meta}
    with open(path, "wb") as file:
        np.savez_compressed(file, header=np.array(json.dumps(header)), **arrays)


def read(
    path: str | os.PathLike[str], kind: str, versions: tuple[int, ...] = (VERSION,),
    old_version: str = "",
) -> tuple[dict, dict[str, np.ndarray]]:
    """Read the header and arrays of an `.npz` file written by `write` for `kind`.

    Args:
        path: The file.
        kind: The class name the file must hold.
        versions: The file versions that can be read for this kind.
        old_version: What to do with a file of an older, unreadable version.

    Raises:
        FileNotFoundError: If there is no such file.
        ValueError: If the file is not an asdex `.npz` file, holds another kind, or has
            a version not in `versions`.
    """
    name = repr(os.fspath(path))
    try:
        with np.load(path, allow_pickle=False) as data:
            if not hasattr(data, "files"):
                raise ValueError("it holds a single array, not an .npz archive")
            arrays = {key: data[key] for key in data.files}
    except FileNotFoundError:
        raise
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise ValueError(f"{name} is not a readable asdex .npz file: {error}") from None
    try:
        header = json.loads(str(arrays.pop("header")[()]))
    except (KeyError, ValueError, TypeError):
        header = None
    if not isinstance(header, dict) or header.get("format") != _FORMAT:
        raise ValueError(f"{name} is an .npz file, but not one saved by asdex.")
    if header.get("kind") != kind:
        raise ValueError(
            f"{name} holds a {header.get('kind')}, not a {kind}; load it with "
            f"{header.get('kind')}.load."
        )
    version = header.get("version")
    if version not in versions:
        older = isinstance(version, int) and version < min(versions)
        raise ValueError(
            f"{name} has asdex file version {version!r}; this version of asdex reads a "
            f"{kind} from version(s) {list(versions)}. "
            + (old_version if older else "It was saved by a newer asdex: upgrade asdex.")
        )
    return header, arrays
