"""Vault key rotation: every entry re-encrypted under the new key in one transaction; the old
key is required, and a missing or wrong key is a ConfigError that changes nothing."""

from __future__ import annotations

import stat
import tempfile
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from tm_reliability import MemoryFactory, sql_rows

from tiered_memory import ConfigError, TieredMemory
from tiered_memory.cli import main
from tiered_memory.vault import KEY_ENV, KEY_FILE, rotate_vault_key

SEED = "My API key is 123"


@pytest.fixture(autouse=True)
def _no_key_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)


def _owner(make_memory: MemoryFactory, path: Path, **kwargs: object) -> TieredMemory:
    mem = make_memory("s1", "kha", path=path, **kwargs)
    mem.add("user", SEED)
    mem.add("user", "My OpenAI key is sk-test-9f8e7d6c5b4a3f2e1d0c, keep it safe.")
    other = make_memory("s1", "lan", path=path, **kwargs)
    other.add("user", "The wifi password is: Tumbleweed-42")
    mem.flush()
    other.flush()
    return mem


def _ciphertexts(mem: TieredMemory) -> dict[tuple[str, str], str]:
    rows = sql_rows(mem, "SELECT user_id, placeholder, ciphertext FROM tm_vault")
    return {(r[0], r[1]): r[2] for r in rows}


def _local(make_memory: MemoryFactory) -> None:
    if make_memory(path=Path(tempfile.mkdtemp())).config.session_store_url:
        pytest.skip("rotates the embedded SQLite store under path")


def test_rotate_reencrypts_every_users_entries_and_values_come_back(
    make_memory: MemoryFactory, tmp_path: Path
) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    mem = _owner(make_memory, tmp_path, vault_key=old.decode())
    assert mem.vault is not None
    before = _ciphertexts(mem)
    assert {user for user, _ in before} == {"kha", "lan"}
    assert mem.vault.rotate(new) == len(before)
    after = _ciphertexts(mem)
    assert after.keys() == before.keys()
    assert all(after[k] != before[k] for k in before)
    assert all(Fernet(new).decrypt(t.encode()) for t in after.values())
    later = make_memory("s2", "kha", path=tmp_path, vault_key=new.decode())
    assert any(SEED in h.text for h in later.recall("What was my API key?", k=3))
    assert SEED in [m.content for m in later.__class__(
        "s1", "kha", tmp_path, later.config, embedder=later.embedder, resources=later.resources
    ).history()]  # fmt: skip


def test_after_rotation_the_old_key_is_refused(make_memory: MemoryFactory, tmp_path: Path) -> None:
    old, new = Fernet.generate_key(), Fernet.generate_key()
    mem = _owner(make_memory, tmp_path, vault_key=old.decode())
    assert mem.vault is not None
    mem.vault.rotate(new)
    with pytest.raises(ConfigError, match="vault key"):
        make_memory("s3", "kha", path=tmp_path, vault_key=old.decode())


def test_a_malformed_new_key_changes_nothing(make_memory: MemoryFactory, tmp_path: Path) -> None:
    mem = _owner(make_memory, tmp_path, vault_key=Fernet.generate_key().decode())
    assert mem.vault is not None
    before = _ciphertexts(mem)
    with pytest.raises(ConfigError, match="new vault key"):
        mem.vault.rotate("hunter2")
    assert _ciphertexts(mem) == before


def test_an_entry_the_old_key_cannot_decrypt_rolls_back_the_whole_rotation(
    make_memory: MemoryFactory, tmp_path: Path
) -> None:
    from tm_reliability import sql_execute

    mem = _owner(make_memory, tmp_path, vault_key=Fernet.generate_key().decode())
    assert mem.vault is not None
    forged = Fernet(Fernet.generate_key()).encrypt(b"x").decode()
    sql_execute(mem, "UPDATE tm_vault SET ciphertext = :c WHERE user_id = 'lan'", c=forged)
    before = _ciphertexts(mem)
    with pytest.raises(ConfigError, match="vault key"):
        mem.vault.rotate(Fernet.generate_key())
    assert _ciphertexts(mem) == before  # kha's entries were not re-encrypted either


def test_rotating_with_a_wrong_old_key_is_refused(
    make_memory: MemoryFactory, tmp_path: Path
) -> None:
    _local(make_memory)
    mem = _owner(make_memory, tmp_path, vault_key=Fernet.generate_key().decode())
    before = _ciphertexts(mem)
    engine = mem.store.engine  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="vault key"):
        rotate_vault_key(engine, tmp_path, old_key=Fernet.generate_key().decode())
    assert _ciphertexts(mem) == before


def test_rotating_without_any_key_is_a_clear_error(
    make_memory: MemoryFactory, tmp_path: Path
) -> None:
    _local(make_memory)
    mem = _owner(make_memory, tmp_path, vault_key=Fernet.generate_key().decode())
    engine = mem.store.engine  # type: ignore[attr-defined]
    with pytest.raises(ConfigError, match="no vault key to rotate from"):
        rotate_vault_key(engine, tmp_path / "elsewhere")


def test_cli_rotates_the_key_file_in_place(
    make_memory: MemoryFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _local(make_memory)
    mem = _owner(make_memory, tmp_path)  # the key file under path
    old = (tmp_path / KEY_FILE).read_text()
    before = _ciphertexts(mem)
    assert main(["vault", "rotate", "--path", str(tmp_path)]) == 0
    assert f"re-encrypted {len(before)} vault entries" in capsys.readouterr().out
    new = (tmp_path / KEY_FILE).read_text()
    assert new != old and not (tmp_path / (KEY_FILE + ".new")).exists()
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    later = make_memory("s2", "kha", path=tmp_path)  # reads the new key file
    assert any(SEED in h.text for h in later.recall("What was my API key?", k=3))


def test_cli_reports_a_wrong_key_and_exits_non_zero(
    make_memory: MemoryFactory, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _local(make_memory)
    _owner(make_memory, tmp_path)
    wrong = Fernet.generate_key().decode()
    # "=": a Fernet key starts with "-" one time in 64, which argparse would take for an option
    assert main(["vault", "rotate", "--path", str(tmp_path), f"--old-key={wrong}"]) == 1
    assert "vault key" in capsys.readouterr().err
