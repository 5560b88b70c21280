"""Chroma's on-disk HNSW index, checked before Chroma loads it.

Embedded Chroma (1.x) writes a collection's HNSW index in place, in five files, on every write
here (``sync_threshold`` 1). A process killed in the middle of that leaves them disagreeing (a
header counting more elements than ``data_level0.bin`` holds, a ``length.bin`` cut short), and
Chroma's native loader does not refuse such files: it crashes the whole process (SIGSEGV,
chroma-core/chroma#7238, #7069), which no Python handler sees. So the first time a process opens
a user's collection, the files are read here first, with numpy and without executing anything
(the pickle is read as plain data: it cannot name a class or function); files that disagree are
reported as torn, and the store drops that index and rebuilds it from the session store.

The layout is chroma-hnswlib's "persistence version 1": ``header.bin`` holds the index
parameters; ``data_level0.bin`` one fixed-size row per element (the level-0 neighbour list, the
vector, the label); ``length.bin`` each vector's norm (float32); and ``link_lists.bin``, element
after element, the byte size of its upper-level neighbour lists and then those lists. A version
this module does not know is not judged (Chroma is trusted with it).
"""

from __future__ import annotations

import logging
import pickle
import sqlite3
import struct
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger("tiered_memory")

FILES = ("header.bin", "data_level0.bin", "length.bin", "link_lists.bin", "index_metadata.pickle")
_HEADER = struct.Struct("=iQQQQQQiIQQQdQ")
_KNOWN_VERSION = 1
_MAX_LEVEL = 64


def vector_segment_dir(chroma_dir: Path, collection_id: str) -> Path | None:
    """The directory of the collection's HNSW files (None: Chroma's catalogue names none)."""
    return _segment_dir(chroma_dir, "collection = ?", collection_id)


def named_segment_dir(chroma_dir: Path, name: str) -> Path | None:
    """The directory of the HNSW files of the collection called ``name`` (None: none)."""
    return _segment_dir(
        chroma_dir, "collection = (SELECT id FROM collections WHERE name = ?)", name
    )


def _segment_dir(chroma_dir: Path, condition: str, value: str) -> Path | None:
    database = chroma_dir / "chroma.sqlite3"
    if not database.exists():
        return None
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=30.0)
    try:
        row = connection.execute(
            f"SELECT id FROM segments WHERE scope = 'VECTOR' AND {condition}", (value,)
        ).fetchone()
    except sqlite3.Error as exc:  # another Chroma layout: nothing to judge here
        logger.debug("cannot read Chroma's segment catalogue at %s: %r", database, exc)
        return None
    finally:
        connection.close()
    return chroma_dir / str(row[0]) if row else None


def torn_reason(segment_dir: Path) -> str | None:
    """Why the HNSW files in ``segment_dir`` cannot be loaded safely; None when they agree (or
    there are none yet, or their version is not one this module knows)."""
    if not (segment_dir / "header.bin").exists():
        present = [name for name in FILES if (segment_dir / name).exists()]
        return f"header.bin is missing beside {present}" if present else None
    header = (segment_dir / "header.bin").read_bytes()
    if len(header) < _HEADER.size:
        return f"header.bin is {len(header)} bytes, not {_HEADER.size}"
    (
        version, offset_level0, max_elements, count, row_size, label_offset, data_offset,
        max_level, entry_point, max_m, max_m0, m, _mult, _ef_construction,
    ) = _HEADER.unpack_from(header)  # fmt: skip
    if version != _KNOWN_VERSION:
        logger.debug("HNSW files at %s have version %r: not checked", segment_dir, version)
        return None
    links_level0 = 4 + 4 * max_m0
    links_upper = 4 + 4 * max_m
    if not (
        offset_level0 == 0
        and 0 < m <= max_m <= max_m0 <= 4096
        and count <= max_elements
        and data_offset == links_level0
        and data_offset < label_offset
        and label_offset + 8 == row_size
        and -1 <= max_level < _MAX_LEVEL  # -1: no element yet
    ):
        return "header.bin holds impossible parameters"
    if count == 0:  # as Chroma makes an index: its records wait in Chroma's log
        return None
    missing = [name for name in FILES if not (segment_dir / name).exists()]
    if missing:
        return f"{count} elements, but {missing} missing"
    if entry_point >= count:
        return f"the entry point {entry_point} is not one of the {count} elements"
    reason = _check_sizes(segment_dir, count, max_elements, row_size)
    if reason:
        return reason
    levels, upper = _upper_lists(segment_dir / "link_lists.bin", count, links_upper)
    if levels is None:
        return upper
    if int(levels.max()) > max_level or int(levels[entry_point]) != max_level:
        return "link_lists.bin disagrees with the header's top level"
    rows = np.memmap(segment_dir / "data_level0.bin", dtype=np.uint32, mode="r")
    level0 = np.asarray(
        rows[: count * row_size // 4].reshape(count, row_size // 4)[:, : 1 + max_m0]
    )
    del rows
    reason = _check_lists(level0, max_m0, count, "data_level0.bin")
    if reason is None and len(upper):
        reason = _check_lists(upper, max_m, count, "link_lists.bin")
    if reason:
        return reason
    return _check_pickle(segment_dir / "index_metadata.pickle", count)


def _upper_lists(path: Path, count: int, list_size: int) -> tuple[np.ndarray | None, Any]:
    """Each element's level and all upper-level neighbour lists (rows of ``list_size`` bytes),
    or ``(None, why)``: the file is, element after element, a byte size then that many bytes."""
    data = path.read_bytes()
    levels = np.zeros(count, dtype=np.int64)
    blocks: list[bytes] = []
    at = 0
    for element in range(count):
        if at + 4 > len(data):
            return None, f"link_lists.bin ends at element {element} of {count}"
        (size,) = struct.unpack_from("=I", data, at)
        at += 4
        if size % list_size or at + size > len(data):
            return None, f"link_lists.bin holds a broken entry for element {element}"
        if size:
            levels[element] = size // list_size
            blocks.append(data[at : at + size])
            at += size
    upper = np.frombuffer(b"".join(blocks), dtype=np.uint32).reshape(-1, list_size // 4)
    return levels, upper


def _check_sizes(segment_dir: Path, count: int, capacity: int, row_size: int) -> str | None:
    """A fresh index is written whole (``capacity`` rows), a grown one up to its last element:
    either way the files hold at least ``count`` rows and at most ``capacity``."""
    data = (segment_dir / "data_level0.bin").stat().st_size
    if row_size % 4 or data % row_size or not count * row_size <= data <= capacity * row_size:
        return f"data_level0.bin holds {data / row_size:.1f} elements, the header {count}"
    lengths = (segment_dir / "length.bin").stat().st_size
    if lengths % 4 or not 4 * count <= lengths <= 4 * capacity:
        return f"length.bin holds {lengths / 4:.1f} elements, the header {count}"
    return None


def _check_lists(lists: np.ndarray, capacity: int, count: int, where: str) -> str | None:
    """Each row: a neighbour count (low 16 bits; the rest are flags), then ``capacity`` ids."""
    sizes = (lists[:, 0] & 0xFFFF).astype(np.int64)
    if np.any(sizes > capacity):
        return f"{where} holds a neighbour list longer than {capacity}"
    used = np.arange(capacity)[None, :] < sizes[:, None]
    if np.any(lists[:, 1:][used] >= count):
        return f"{where} names a neighbour that is not one of the {count} elements"
    return None


class _DataOnly(pickle.Unpickler):
    """Loads plain data only: no class or function can be named, so nothing in it can run."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"index_metadata.pickle names {module}.{name}")


def _check_pickle(path: Path, count: int) -> str | None:
    """Chroma's id <-> label maps: whole, plain data, no more ids than elements (Chroma 1.x
    writes ``dimensionality`` as None, so it is not compared)."""
    try:
        with path.open("rb") as file:
            meta = _DataOnly(file).load()
    except Exception as exc:  # a cut file: EOF, a truncated opcode
        return f"index_metadata.pickle is unreadable ({exc})"
    if not isinstance(meta, dict):
        return "index_metadata.pickle holds no mapping"
    labels, ids = meta.get("id_to_label"), meta.get("label_to_id")
    if not (isinstance(labels, dict) and isinstance(ids, dict) and len(labels) == len(ids)):
        return "index_metadata.pickle holds broken id maps"
    if len(ids) > count:
        return f"index_metadata.pickle maps {len(ids)} ids onto {count} elements"
    return None


__all__ = ["named_segment_dir", "torn_reason", "vector_segment_dir"]
