"""The secrets vault (``secrets="vault"``): stable placeholders at rest, values back for their owner.

A detected secret is replaced, in the log, the summary and Tier 3, by a placeholder that names
its kind and identifies its value, ``[SECRET_API_KEY_3f2a9c1b04de]``: an HMAC of ``(user, value)``
under a key derived from the vault key, so the same value of the same user always gets the same
placeholder and nobody without the key can test a guess against it. The value itself is stored
Fernet-encrypted (AES-128-CBC + HMAC-SHA256, ``cryptography``) in the session store's
``tm_vault`` table. Recall and ``history()`` of the owning user put the values back.

Pure part: :func:`placeholder`, :func:`seal_text`, :func:`reveal_text`. Store part:
:class:`Vault` (one user, one store), :func:`load_vault_key` and :func:`rotate_vault_key`
(``tiered-memory vault rotate``: every entry re-encrypted under a new key in one transaction).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy.engine import Connection, Engine

from .errors import ConfigError, StoreError
from .messages import Message, ToolCall
from .redact import SecretDetector, redact
from .state import StoredMessage
from .steps import Call, Steps
from .store.schema import insert_ignore, messages_table, meta_table, vault_table

logger = logging.getLogger("tiered_memory")

KEY_ENV = "TIERED_MEMORY_VAULT_KEY"
KEY_FILE = "vault.key"
DIGEST_CHARS = 12  # 48 bits: a collision among one user's secrets is ~n^2 / 2^49
PLACEHOLDER = re.compile(r"\[SECRET_(?P<kind>[A-Z][A-Z_]{0,30}?)_(?P<digest>[0-9a-f]{12})\]")
_CHECK_KEY = "vault_key_check"


# --- pure: placeholders ----------------------------------------------------------------------


@dataclass(frozen=True)
class Sealed:
    """A text with its secrets replaced, and the values behind the new placeholders."""

    text: str
    entries: Mapping[str, str]


def placeholder(hmac_key: bytes, user_id: str, kind: str, value: str) -> str:
    """The stable placeholder of ``value`` for ``user_id`` (same inputs, same placeholder)."""
    digest = hmac.new(hmac_key, f"{user_id}\x1f{value}".encode(), hashlib.sha256).hexdigest()
    return f"[SECRET_{kind.upper()}_{digest[:DIGEST_CHARS]}]"


def _masked(text: str) -> str:
    """``text`` with each vault placeholder turned into a ``[REDACTED_…]`` run of the same length:
    the detector never takes a placeholder for a value, and spans stay those of ``text``."""
    return PLACEHOLDER.sub(lambda m: "[REDACTED_" + "_" * (len(m.group()) - 11) + "]", text)


def seal_text(
    text: str,
    hmac_key: bytes,
    user_id: str,
    *,
    previous: str | None = None,
    detector: SecretDetector | None = None,
) -> Sealed:
    """Replace every secret of ``text`` by its placeholder (placeholders already there stay)."""
    found = redact(
        _masked(text), previous=_masked(previous) if previous else None, detector=detector
    )
    if not found.changed:
        return Sealed(text, {})
    taken = [m.span() for m in PLACEHOLDER.finditer(text)]
    parts: list[str] = []
    entries: dict[str, str] = {}
    pos = 0
    for finding in found.findings:
        if any(finding.start < end and start < finding.end for start, end in taken):
            continue
        value = text[finding.start : finding.end]
        name = placeholder(hmac_key, user_id, finding.kind, value)
        entries[name] = value
        parts += [text[pos : finding.start], name]
        pos = finding.end
    if not entries:
        return Sealed(text, {})
    parts.append(text[pos:])
    return Sealed("".join(parts), entries)


def placeholders_in(text: str) -> set[str]:
    return {m.group() for m in PLACEHOLDER.finditer(text)}


def reveal_text(text: str, values: Mapping[str, str]) -> str:
    """``text`` with every placeholder found in ``values`` replaced by its value."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(), m.group()), text)


# --- the key ---------------------------------------------------------------------------------


def load_vault_key(configured: str | None, path: Path) -> bytes:
    """The Fernet key: ``MemoryConfig.vault_key``, else ``$TIERED_MEMORY_VAULT_KEY``, else the
    key file ``path/vault.key`` (created with mode 0600 on first use).

    Raises:
        ConfigError: the key is not a Fernet key, or the key file cannot be read or created.
    """
    if configured is not None:
        return _checked_key(configured, "MemoryConfig.vault_key")
    from_env = os.environ.get(KEY_ENV)
    if from_env:
        return _checked_key(from_env, f"${KEY_ENV}")
    file = path / KEY_FILE
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        try:
            mode = stat.S_IMODE(file.stat().st_mode)
            text = file.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the vault key file {file}: {exc}") from exc
        if mode & 0o077:
            logger.warning("the vault key file %s is readable by others (mode %o)", file, mode)
        return _checked_key(text, f"the vault key file {file}")
    except OSError as exc:
        raise ConfigError(
            f"cannot create the vault key file {file}: {exc}; set MemoryConfig.vault_key or "
            f"${KEY_ENV}"
        ) from exc
    key = Fernet.generate_key()
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    return key


def _checked_key(text: str, where: str) -> bytes:
    key = text.strip().encode("ascii", "replace")
    try:
        Fernet(key)
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"{where} is not a vault key (expected 32 url-safe base64-encoded bytes, as made by "
            "cryptography.fernet.Fernet.generate_key())"
        ) from exc
    return key


# --- the store-facing part -------------------------------------------------------------------


class Vault:
    """The vault of one user on one session store: seal messages, store, reveal, erase.

    Args:
        engine: the session store's SQLAlchemy engine (the ``tm_vault`` table lives there).
        user_id: the owner; every read and write is scoped to them.
        key: the Fernet key (:func:`load_vault_key`).
        detector: what finds secrets (None: the built-in detector).

    Raises:
        ConfigError: ``key`` is not the key this store's secrets were encrypted with.
    """

    def __init__(
        self, engine: Engine, user_id: str, key: bytes, detector: SecretDetector | None = None
    ) -> None:
        self.engine = engine
        self.user_id = user_id
        self._fernet = Fernet(key)
        self._hmac_key = hmac.new(key, b"tiered-memory placeholder", hashlib.sha256).digest()
        self.detector = detector
        self._check_key(hmac.new(key, b"tiered-memory key check", hashlib.sha256).hexdigest())

    def _check_key(self, check: str) -> None:
        mt = meta_table.c
        query = sa.select(mt.value).where(mt.key == _CHECK_KEY)
        with self._read() as conn:
            known = conn.execute(query).scalar_one_or_none()
        if known is None:  # the first vault of this store: record which key it uses
            with self._write() as conn:
                held = conn.execute(sa.select(sa.func.count()).select_from(vault_table))
                if held.scalar_one():  # secrets, but no record of their key
                    raise ConfigError(_WRONG_KEY)
                conn.execute(insert_ignore(conn, meta_table).values(key=_CHECK_KEY, value=check))
                known = conn.execute(query).scalar_one()
        if not hmac.compare_digest(known, check):
            raise ConfigError(_WRONG_KEY)

    # --- sealing (pure given the key) ------------------------------------------------------

    def seal(
        self, message: Message, previous: Message | None = None
    ) -> tuple[Message, dict[str, str]]:
        """``message`` with its secrets (content and tool arguments) as placeholders."""
        before = previous.content if previous is not None else None
        sealed = seal_text(
            message.content, self._hmac_key, self.user_id, previous=before, detector=self.detector
        )
        entries = dict(sealed.entries)
        calls = []
        for call in message.tool_calls:
            arguments = seal_text(
                call.arguments, self._hmac_key, self.user_id, detector=self.detector
            )
            entries.update(arguments.entries)
            calls.append(ToolCall(call.id, call.name, arguments.text))
        metadata = _map_strings(message.metadata, lambda text: self._seal_leaf(text, entries))
        if not entries:
            return message, {}
        changed = replace(message, content=sealed.text, tool_calls=tuple(calls))
        return replace(changed, metadata=metadata), entries

    def _seal_leaf(self, text: str, entries: dict[str, str]) -> str:
        """A string of the metadata (an adapter's raw copy of an item) sealed like the content."""
        sealed = seal_text(text, self._hmac_key, self.user_id, detector=self.detector)
        entries.update(sealed.entries)
        return sealed.text

    def seal_steps(
        self, batch: Sequence[StoredMessage], count: Callable[[Message], int]
    ) -> Steps[list[StoredMessage]]:
        """Seal a batch for the log: the values are stored (encrypted) before the messages."""
        out: list[StoredMessage] = []
        entries: dict[str, str] = {}
        for n, item in enumerate(batch):
            message, found = self.seal(item.message, batch[n - 1].message if n else None)
            entries.update(found)
            out.append(item if not found else StoredMessage(message, count(message), item.seq))
        if entries:
            yield Call(self.put, (entries,))
        return out

    def prepare(self, message: Message, previous: Message | None = None) -> Message:
        """The filter before the summary and Tier 3: a secret the log still holds in the clear
        (written under another policy) is sealed and its value stored now."""
        sealed, entries = self.seal(message, previous)
        if entries:
            self.put(entries)
        return sealed

    # --- storing and revealing ---------------------------------------------------------------

    def put(self, entries: Mapping[str, str]) -> None:
        """Store values under their placeholders (a placeholder already stored is kept)."""
        if not entries:
            return
        now = time.time()
        rows = [
            {
                "user_id": self.user_id,
                "placeholder": name,
                "ciphertext": self._fernet.encrypt(value.encode()).decode("ascii"),
                "created_at": now,
            }
            for name, value in entries.items()
        ]
        with self._write() as conn:
            conn.execute(insert_ignore(conn, vault_table), rows)

    def values(self, names: Iterable[str]) -> dict[str, str]:
        """The stored values of ``names`` (this user's only); unknown placeholders are left out.

        Raises:
            ConfigError: a value cannot be decrypted with this key (the wrong key).
        """
        wanted = sorted(set(names))
        if not wanted:
            return {}
        v = vault_table.c
        with self._read() as conn:
            rows = conn.execute(
                sa.select(v.placeholder, v.ciphertext).where(
                    v.user_id == self.user_id, v.placeholder.in_(wanted)
                )
            ).all()
        out = {}
        for name, token in rows:
            try:
                out[name] = self._fernet.decrypt(token.encode("ascii")).decode()
            except InvalidToken as exc:
                raise ConfigError(_WRONG_KEY) from exc
        return out

    def reveal(self, text: str) -> str:
        return reveal_text(text, self.values(placeholders_in(text)))

    def reveal_messages(self, messages: Sequence[Message]) -> list[Message]:
        """Messages of this user with their secrets back (content and tool arguments)."""
        names: set[str] = set()
        for m in messages:
            names |= placeholders_in(m.content)
            for call in m.tool_calls:
                names |= placeholders_in(call.arguments)
            for text in _strings(m.metadata):
                names |= placeholders_in(text)
        values = self.values(names)
        if not values:
            return list(messages)
        return [
            replace(
                m,
                content=reveal_text(m.content, values),
                tool_calls=tuple(
                    ToolCall(c.id, c.name, reveal_text(c.arguments, values)) for c in m.tool_calls
                ),
                metadata=_map_strings(m.metadata, lambda text: reveal_text(text, values)),
            )
            for m in messages
        ]

    def reveal_hits(self, hits: Sequence[Any]) -> list[Any]:
        """Recall hits of this user with their secrets back; another user's hit is left as is."""
        mine = [h for h in hits if h.user_id == self.user_id]
        values = self.values(set().union(*(placeholders_in(h.text) for h in mine)))
        if not values:
            return list(hits)
        return [
            replace(h, text=reveal_text(h.text, values)) if h.user_id == self.user_id else h
            for h in hits
        ]

    # --- erasing ---------------------------------------------------------------------------

    def referenced(
        self, *, session_id: str | None = None, message_id: str | None = None
    ) -> set[str]:
        """Placeholders held by this user's messages (of one session, or with one id)."""
        m = messages_table.c
        query = sa.select(m.content, m.tool_calls, m.metadata).where(m.user_id == self.user_id)
        if session_id is not None:
            query = query.where(m.session_id == session_id)
        if message_id is not None:
            query = query.where(m.message_id == message_id)
        with self._read() as conn:
            rows = conn.execute(query).all()
        names: set[str] = set()
        for content, calls, metadata in rows:
            names |= placeholders_in(content) | placeholders_in(calls or "")
            names |= placeholders_in(metadata or "")
        return names

    def erase_unreferenced(self, names: Iterable[str]) -> int:
        """Delete the entries of ``names`` that no remaining message of this user holds."""
        wanted = sorted(set(names))
        if not wanted:
            return 0
        m, v = messages_table.c, vault_table.c
        erased = 0
        with self._write() as conn:
            for name in wanted:
                pattern = "%" + name.replace("\\", "\\\\").replace("_", "\\_") + "%"
                held = conn.execute(
                    sa.select(sa.func.count()).where(
                        m.user_id == self.user_id,
                        sa.or_(
                            m.content.like(pattern, escape="\\"),
                            m.tool_calls.like(pattern, escape="\\"),
                            m.metadata.like(pattern, escape="\\"),
                        ),
                    )
                ).scalar_one()
                if not held:
                    result = conn.execute(
                        sa.delete(vault_table).where(
                            v.user_id == self.user_id, v.placeholder == name
                        )
                    )
                    erased += result.rowcount or 0
        return erased

    def erase_user(self) -> int:
        """Delete every entry of this user."""
        with self._write() as conn:
            result = conn.execute(
                sa.delete(vault_table).where(vault_table.c.user_id == self.user_id)
            )
        return result.rowcount or 0

    def rotate(self, new_key: bytes | str) -> int:
        """Re-encrypt every entry of this store (all users: the key is the store's) under
        ``new_key``, in one transaction, and record it as the store's key; returns how many.

        This vault's own key is the old one (its construction checked it). Placeholders keep
        their names; a secret stored after the rotation gets a placeholder under the new key.
        Afterwards every worker must use ``new_key`` (:func:`rotate_vault_key` with the CLI
        ``tiered-memory vault rotate`` also replaces the key file).

        Raises:
            ConfigError: ``new_key`` is no Fernet key, or an entry does not decrypt with the old
                key (nothing is changed then).
        """
        key = _checked_key(new_key.decode("ascii", "replace") if isinstance(new_key, bytes)
                           else new_key, "the new vault key")  # fmt: skip
        fresh = Fernet(key)
        check = hmac.new(key, b"tiered-memory key check", hashlib.sha256).hexdigest()
        v, mt = vault_table.c, meta_table.c
        rotated = 0
        with self._write() as conn:
            rows = conn.execute(sa.select(v.user_id, v.placeholder, v.ciphertext)).all()
            for user_id, name, token in rows:
                try:
                    value = self._fernet.decrypt(token.encode("ascii"))
                except InvalidToken as exc:
                    raise ConfigError(_WRONG_KEY) from exc
                conn.execute(
                    sa.update(vault_table)
                    .where(v.user_id == user_id, v.placeholder == name)
                    .values(ciphertext=fresh.encrypt(value).decode("ascii"))
                )
                rotated += 1
            conn.execute(insert_ignore(conn, meta_table).values(key=_CHECK_KEY, value=check))
            conn.execute(sa.update(meta_table).where(mt.key == _CHECK_KEY).values(value=check))
        self._fernet = fresh
        self._hmac_key = hmac.new(key, b"tiered-memory placeholder", hashlib.sha256).digest()
        return rotated

    def count(self) -> int:
        with self._read() as conn:
            return int(
                conn.execute(
                    sa.select(sa.func.count()).where(vault_table.c.user_id == self.user_id)
                ).scalar_one()
            )

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"vault write failed: {exc}") from exc

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect().execution_options(tm_read_only=True) as conn, conn.begin():
                yield conn
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"vault read failed: {exc}") from exc


def _strings(value: Any) -> Iterator[str]:
    """Every string leaf of ``value`` (JSON data)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def _map_strings(value: Any, function: Callable[[str], str]) -> Any:
    """``value`` (JSON data) with ``function`` applied to every string leaf."""
    if isinstance(value, str):
        return function(value)
    if isinstance(value, Mapping):
        return {k: _map_strings(v, function) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_map_strings(v, function) for v in value]
    return value


_WRONG_KEY = (
    "the vault key does not decrypt this store's secrets (a wrong, rotated or lost key: the key "
    f"comes from MemoryConfig.vault_key, ${KEY_ENV} or the {KEY_FILE} file under path; restore "
    "the one the secrets were stored with)"
)


def rotate_vault_key(
    engine: Engine, path: Path, old_key: str | None = None, new_key: str | None = None
) -> tuple[int, bytes]:
    """Rotate the vault key of the store behind ``engine``: returns (entries, the new key).

    The old key comes from ``old_key``, else ``$TIERED_MEMORY_VAULT_KEY``, else the key file
    under ``path``; ``new_key`` None makes one. When the old key came from the key file, the
    file is replaced by the new key after the store's transaction (the new key is first written
    beside it as ``vault.key.new``, so a crash in between loses neither).

    Raises:
        ConfigError: no old key is set or found, it is not this store's key, or ``new_key`` is
            no Fernet key; nothing is changed then.
    """
    file = path / KEY_FILE
    from_file = old_key is None and not os.environ.get(KEY_ENV)
    if from_file and not file.exists():
        raise ConfigError(
            f"no vault key to rotate from: pass the old key, set ${KEY_ENV}, or point to the "
            f"directory holding {KEY_FILE} (looked in {path})"
        )
    old = load_vault_key(old_key, path)
    fresh = _checked_key(new_key, "the new vault key") if new_key else Fernet.generate_key()
    vault = Vault(engine, "", old)  # checks the old key against the store
    staged = file.with_name(KEY_FILE + ".new")
    if from_file:
        try:
            fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(fresh + b"\n")
        except OSError as exc:
            raise ConfigError(f"cannot write the new key file {staged}: {exc}") from exc
    count = vault.rotate(fresh)
    if from_file:
        os.replace(staged, file)
    return count, fresh


def open_vault(config: Any, path: Path, store: Any, user_id: str) -> Vault | None:
    """The user's vault when ``config.secrets == "vault"``, else None.

    Raises:
        ConfigError: the session store is not SQL (the vault needs its engine), or the key is
            missing, unreadable or wrong.
    """
    if config.secrets != "vault":
        return None
    engine = getattr(store, "engine", None)
    if not isinstance(engine, Engine):
        raise ConfigError(
            f"secrets='vault' needs a SQL session store (SqlSessionStore), got "
            f"{type(store).__name__}; use secrets='redact' with this store"
        )
    key = load_vault_key(config.vault_key, path)
    return Vault(engine, user_id, key, config.secret_detector)


__all__ = [
    "DIGEST_CHARS",
    "KEY_ENV",
    "KEY_FILE",
    "PLACEHOLDER",
    "Sealed",
    "Vault",
    "load_vault_key",
    "open_vault",
    "placeholder",
    "placeholders_in",
    "reveal_text",
    "rotate_vault_key",
    "seal_text",
]
