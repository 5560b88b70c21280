"""Shared plumbing of the benchmark commands: embedders, output files, progress, token counts."""

from __future__ import annotations

import argparse
import importlib
import json
import re
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from tiered_memory.embeddings import Embedder, HashEmbedder
from tiered_memory.messages import Message
from tiered_memory.tokens import TokenCounter, token_counter

from . import _env  # noqa: F401  (no telemetry: before anything imports Mem0 or Chroma)

T = TypeVar("T")
RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"
MODEL = "gpt-4o-mini"


def note(text: str) -> None:
    """A line for the person running the benchmark (stderr, so --json - stays clean)."""
    print(text, file=sys.stderr, flush=True)


def loud(text: str) -> None:
    bar = "!" * min(100, max(20, len(text)))
    note(f"{bar}\n{text}\n{bar}")


def progress(items: Iterable[T], desc: str, total: int | None = None) -> Iterator[T]:
    """A tqdm bar on stderr (plain iteration if tqdm is missing)."""
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is in the bench extra
        yield from items
        return
    yield from tqdm(items, desc=desc, total=total, file=sys.stderr, leave=False, dynamic_ncols=True)


def counter() -> TokenCounter:
    """The one token counter of every benchmark (the core's, for gpt-4o-mini)."""
    return token_counter(MODEL)


def count_prompt(messages: Sequence[Mapping[str, Any]]) -> int:
    """Tokens of an OpenAI-format prompt (role/content dicts) with the core's counter."""
    if not messages:
        return 0
    built = [
        Message(role=m["role"], content=str(m.get("content") or " "), name=m.get("name"))
        for m in messages
    ]
    return counter().count_messages(built)


class CachingEmbedder:
    """Memoizes document vectors by text so peers sharing one embedder embed each turn once.

    Queries are never cached (``embed_query`` always runs the model), so recall latency still
    includes embedding the query. :meth:`lookup` serves a cached document vector for frameworks
    that embed documents through their query method (Mem0's LangChain provider).
    """

    def __init__(self, inner: Embedder, name: str, cache: bool = True) -> None:
        self.inner = inner
        self.name = name
        self.cache = cache
        self._documents: dict[str, list[float]] = {}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if not self.cache:
            return [[float(x) for x in v] for v in self.inner.embed_documents(texts)]
        missing = list(dict.fromkeys(t for t in texts if t not in self._documents))
        for start in range(0, len(missing), 64):
            batch = missing[start : start + 64]
            for text, vector in zip(batch, self.inner.embed_documents(batch), strict=True):
                self._documents[text] = [float(x) for x in vector]
        return [list(self._documents[t]) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return [float(x) for x in self.inner.embed_query(text)]

    def lookup(self, text: str) -> list[float]:
        """The cached document vector of ``text`` or, if none, its query vector."""
        cached = self._documents.get(text)
        return list(cached) if cached is not None else self.embed_query(text)

    def warm(self, texts: Iterable[str], desc: str = "embedding turns") -> None:
        todo = [t for t in dict.fromkeys(texts) if t not in self._documents]
        for start in progress(range(0, len(todo), 64), desc, total=(len(todo) + 63) // 64):
            self.embed_documents(todo[start : start + 64])


#: ``--embedder onnx:PATH``: another BERT-family ONNX export with MiniLM's tokenizer
ONNX_PREFIX = "onnx:"
#: ``--embedder sentence-transformers:PATH``: any sentence-transformers model (needs torch)
SENTENCE_TRANSFORMERS_PREFIX = "sentence-transformers:"


def embedder_kind(value: str) -> str:
    """argparse type of ``--embedder``: default, hash, onnx:PATH, sentence-transformers:PATH."""
    if value in ("default", "hash"):
        return value
    for prefix in (ONNX_PREFIX, SENTENCE_TRANSFORMERS_PREFIX):
        if value.startswith(prefix) and value[len(prefix) :]:
            return value
    raise argparse.ArgumentTypeError(
        f"{value!r}: expected default, hash, {ONNX_PREFIX}PATH "
        f"or {SENTENCE_TRANSFORMERS_PREFIX}PATH-OR-NAME"
    )


def benchmark_embedder(
    kind: str = "default", disk_cache: str | Path | None = None
) -> CachingEmbedder:
    """The embedder every peer shares: the core default (MiniLM) or, failing that, HashEmbedder.

    ``disk_cache``: a folder whose ``embeddings.sqlite`` keeps document vectors across runs
    (:mod:`tiered_memory_bench.embedding_cache`); None computes every vector in this run.
    """
    if kind == "hash":
        return CachingEmbedder(HashEmbedder(), "HashEmbedder(256)")
    inner: Embedder
    if kind.startswith((ONNX_PREFIX, SENTENCE_TRANSFORMERS_PREFIX)):
        # an explicit model is never replaced by a fallback: a failure here ends the run
        from tiered_memory.embeddings.minilm import MiniLMEmbedder, SentenceTransformerEmbedder

        prefix, model = kind.split(":", 1)
        if prefix + ":" == ONNX_PREFIX:
            inner = MiniLMEmbedder(model_path=model)
        else:
            inner = SentenceTransformerEmbedder(model)
        inner.embed_query("warm up")
        name = f"{type(inner).__name__}({inner.name})"
    else:
        try:
            from tiered_memory.embeddings import default_embedder

            inner = default_embedder()
            inner.embed_query("warm up")
        except Exception as exc:
            loud(
                f"NOTE: the core default embedder is unavailable ({type(exc).__name__}: {exc}); "
                "falling back to HashEmbedder: retrieval figures are NOT semantic and not "
                "comparable."
            )
            return CachingEmbedder(HashEmbedder(), "HashEmbedder(256) [fallback]")
        name = f"default_embedder() = {type(inner).__name__}"
    if disk_cache is not None:
        from .embedding_cache import DiskCachedEmbedder

        cached = DiskCachedEmbedder(inner, Path(disk_cache) / "embeddings.sqlite")
        note(f"embedding cache: {cached.path} ({len(cached)} vectors of {cached.model})")
        inner = cached
    return CachingEmbedder(inner, name)


def output_path(command: str, given: str | None) -> Path:
    return Path(given) if given else RESULTS_DIR / f"{command}.json"


_NUMBER_LIST = re.compile(r"\[\s*(-?[\d.eE+-]+(?:,\s*-?[\d.eE+-]+)*)\s*\]")


def dump_json(data: Mapping[str, Any]) -> str:
    """Indented JSON with lists of numbers kept on one line (per-turn series stay compact)."""
    text = json.dumps(data, indent=2)
    return _NUMBER_LIST.sub(
        lambda m: "[" + ", ".join(part.strip() for part in m.group(1).split(",")) + "]", text
    )


def write_json(data: Mapping[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(dump_json(data) + "\n", encoding="utf-8")
    note(f"wrote {path}")


def plot_path(json_path: Path) -> Path:
    return json_path.with_suffix(".png")


@contextmanager
def timer() -> Iterator[list[float]]:
    """``with timer() as t: ...`` then ``t[0]`` is the elapsed milliseconds."""
    box: list[float] = []
    start = time.perf_counter()
    try:
        yield box
    finally:
        box.append((time.perf_counter() - start) * 1000.0)


def fixed_text(tokens: int) -> str:
    """A deterministic text of exactly ``tokens`` tokens (the fake summarizers' output)."""
    words = (
        "Summary notes: the user and the assistant discussed plans, family, work, hobbies, "
        "dates and places; decisions and preferences were recorded for later turns. "
    )
    count = counter()
    text = words
    while count.count_text(text) < tokens:
        text += words
    return count.truncate(text, tokens).strip()


Factory = TypeVar("Factory")


def runnable_systems(
    names: Sequence[str], registry: Mapping[str, tuple[Factory, str]], skipped: dict[str, str]
) -> Iterator[tuple[str, Factory]]:
    """The requested systems whose package imports; the others go to ``skipped`` with why."""
    for name in names:
        if name not in registry:
            skipped[name] = f"unknown system (known: {', '.join(registry)})"
            continue
        factory, package = registry[name]
        try:
            importlib.import_module(package)
        except ImportError as exc:
            skipped[name] = f"package {package!r} not importable: {exc}"
            note(f"SKIPPED {name}: {skipped[name]}")
            continue
        yield name, factory
