"""What makes the bundled MiniLM fast keeps its vectors: batching by length, the cut before
tokenizing. Behaviour only; the turns/s figures come from ``tiered-memory bench embedding``."""

from __future__ import annotations

import tracemalloc
from typing import Any

import numpy as np
import pytest

from tiered_memory.embeddings import minilm as minilm_module
from tiered_memory.embeddings.minilm import BATCH_TOKENS, MiniLMEmbedder, shared_minilm_embedder

TEXTS = [
    "ok",
    "I adopted a puppy last week and named her Biscuit.",
    "Can you give me a recipe for a vegan lasagna that feeds six? " * 6,
    "Where did Caroline move from?",
    "The deadline for the first demo is March 3rd; the API runs on port 8080. " * 12,
    "Ångström, naïve café, 東京 and an emoji 😀",
    "",
    "memory " * 400,  # past 256 word pieces
]


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return shared_minilm_embedder().load()


def _padded_to_256(embedder: MiniLMEmbedder, texts: list[str]) -> np.ndarray:
    """The plain pipeline: each text alone, padded to 256 tokens (no sorting, no batching)."""
    loaded = embedder._load()
    rows = []
    for text in texts:
        ids = loaded.tokenizer.encode(text).ids
        input_ids = np.zeros((1, 256), dtype=np.int64)
        mask = np.zeros((1, 256), dtype=np.int64)
        input_ids[0, : len(ids)] = ids
        mask[0, : len(ids)] = 1
        rows.append(embedder._run(loaded, input_ids, mask)[0])
    return np.array(rows)


def test_length_batches_give_the_vectors_of_the_plain_pipeline(minilm: MiniLMEmbedder) -> None:
    reference = _padded_to_256(minilm, TEXTS)
    for batch_size in (1, 3, 64):
        vectors = MiniLMEmbedder(batch_size=batch_size).encode(TEXTS * 3)
        cosines = (vectors * np.tile(reference, (3, 1))).sum(axis=1)
        assert cosines.min() > 1 - 1e-3, batch_size


def test_batches_stay_within_the_token_budget(
    minilm: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    shapes: list[tuple[int, int]] = []
    run = MiniLMEmbedder._run

    def recording(loaded: Any, input_ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        shapes.append(input_ids.shape)
        return run(loaded, input_ids, mask)

    monkeypatch.setattr(MiniLMEmbedder, "_run", staticmethod(recording))
    texts = ["word " * n for n in (300, 250, 3, 40, 120, 2, 500, 60)] * 10
    vectors = minilm.encode(texts)
    assert vectors.shape == (80, 384)
    assert sum(rows for rows, _ in shapes) == 80
    assert all(rows * width <= BATCH_TOKENS or rows == 1 for rows, width in shapes)
    widths = [width for _, width in shapes]
    assert widths == sorted(widths, reverse=True)  # longest first, each padded to its own max
    assert widths[0] == 256 and widths[-1] < 100  # not every batch padded to 256


def test_a_huge_text_is_cut_before_the_tokenizer_sees_it(
    minilm: MiniLMEmbedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    huge = "lorem ipsum dolor sit amet " * 400_000  # 10.8 MB
    seen: list[int] = []
    loaded = minilm._load()
    tokenizer = loaded.tokenizer

    class Recording:
        def encode(self, text: str) -> Any:
            seen.append(len(text))
            return tokenizer.encode(text)

    monkeypatch.setattr(loaded, "tokenizer", Recording())
    tracemalloc.start()
    try:
        vector = minilm.encode([huge])[0]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == [minilm_module.MAX_CHARS]
    assert peak < 5_000_000  # the cut prefix and the batch arrays, never a copy of the text
    monkeypatch.undo()
    assert float(vector @ minilm.encode([huge[:30_000]])[0]) > 1 - 1e-5


def test_the_cut_never_changes_a_vector() -> None:
    """Past the cut the tokenizer would have truncated anyway, also with the longest words."""
    embedder = MiniLMEmbedder().load()
    long_words = " ".join("x" * 99 for _ in range(300))  # 300 pieces of 99 characters
    for text in (long_words, "memory " * 5000, "東" * 30_000):
        loaded = embedder._load()
        assert loaded.tokenizer.encode(text[: minilm_module.MAX_CHARS]).ids == (
            loaded.tokenizer.encode(text).ids
        )
