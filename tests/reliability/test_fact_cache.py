"""The facts a process keeps between recalls are checked against the user's fact version in the
same transaction: another process's new fact, forget or forget-user is seen by the next read, a
forgotten user who comes back (or a database made anew) is never served the old facts."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tiered_memory import SqlSessionStore
from tiered_memory.facts import FactBook
from tiered_memory.messages import make_message

PLACES = ["Paris", "Berlin", "Lisbon", "Oslo", "Rome", "Hanoi"]


def _books(path: Path, user: str = "kha") -> tuple[FactBook, FactBook]:
    """Two fact books on one database through different engines: two processes' views."""
    return (
        FactBook(SqlSessionStore.at_path(path).engine, user),
        FactBook(SqlSessionStore.at_path(path).engine, user),
    )


def _values(book: FactBook) -> list[tuple[str, bool]]:
    return [(f.value, f.current) for f in book.facts()]


def test_another_processs_writes_and_forgets_are_read_at_once(tmp_path: Path) -> None:
    writer, reader = _books(tmp_path)
    first = make_message("user", "I live in Paris.")
    writer.observe("s1", [first])
    assert _values(reader) == [("Paris", True)]
    assert reader.facts() == reader.facts()  # cached: the same facts again
    writer.observe("s1", [make_message("user", "I moved to Berlin.")])
    assert _values(reader) == [("Paris", False), ("Berlin", True)]
    writer.forget_messages([("s1", first.id)])
    assert _values(reader) == [("Berlin", True)]
    writer.forget_user()
    assert reader.facts() == []


def test_a_forgotten_user_who_comes_back_is_never_served_the_old_facts(tmp_path: Path) -> None:
    writer, reader = _books(tmp_path)
    for place in PLACES[:3]:
        writer.observe("s1", [make_message("user", f"I moved to {place}.")])
    old = reader.facts()
    writer.forget_user()
    for place in PLACES[3:6]:  # as many writes as before: the version moves on, never back
        writer.observe("s1", [make_message("user", f"I moved to {place}.")])
    assert {f.value for f in reader.facts()} == set(PLACES[3:6])
    assert not {f.value for f in reader.facts()} & {f.value for f in old}


def test_a_database_made_anew_at_the_same_path_is_not_served_the_old_facts(
    tmp_path: Path,
) -> None:
    writer, reader = _books(tmp_path / "a")
    writer.observe("s1", [make_message("user", "I live in Paris.")])
    assert _values(reader) == [("Paris", True)]
    for engine in (writer.engine, reader.engine):
        engine.dispose()
    for file in (tmp_path / "a").iterdir():
        file.unlink()
    writer, reader = _books(tmp_path / "a")  # same URL, new database, version 1 again
    writer.observe("s1", [make_message("user", "I live in Rome.")])
    assert _values(reader) == [("Rome", True)]


@pytest.mark.parametrize("seed", range(3))
def test_cached_facts_always_equal_a_fresh_read(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    writer, reader = _books(tmp_path)
    said = []
    for _ in range(25):
        action = rng.random()
        if action < 0.6 or not said:
            message = make_message("user", f"I moved to {rng.choice(PLACES)}.")
            writer.observe(rng.choice(["s1", "s2"]), [message])
            said.append(("s1", message.id))
            said.append(("s2", message.id))
        elif action < 0.9:
            writer.forget_messages([said.pop(rng.randrange(len(said)))])
        else:
            writer.forget_session(rng.choice(["s1", "s2"]))
        with reader.engine.connect() as conn:
            fresh = reader._facts(conn)
        assert reader.facts() == fresh
