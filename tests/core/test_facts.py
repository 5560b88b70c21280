"""Facts that change (tiered_memory.facts): offline extraction, supersession, as_of, the store."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from tiered_memory import InvalidMessageError, SqlSessionStore
from tiered_memory.facts import (
    EVENT_PREFIX,
    SAID_PREFIX,
    FactBook,
    OfflineFactExtractor,
    Statement,
    said_topic,
    supersede,
)
from tiered_memory.messages import Message, make_message

T0 = datetime(2026, 5, 1, 12, tzinfo=timezone.utc)


def _dialogue(*turns: tuple[str, str], days: int = 30) -> list[Message]:
    return [
        make_message(role, text, created_at=T0 + timedelta(days=days * n))
        for n, (role, text) in enumerate(turns)
    ]


def _said(text: str) -> list[tuple[str, str, str]]:
    statements = OfflineFactExtractor().extract("s1", [make_message("user", text)])
    return [(s.attribute, s.value, s.change) for s in statements]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I live in Paris.", [("home", "Paris", "set")]),
        ("I moved to Berlin last week, and I love it", [("home", "Berlin", "set")]),
        ("I've just moved to New York two months ago.", [("home", "New York", "set")]),
        ("I started working at Globex in May", [("employer", "Globex", "set")]),
        ("I no longer work at Acme.", [("employer", "Acme", "end")]),
        ("My favourite colour is green.", [("favourite colour", "green", "set")]),
        ("my new phone is a Pixel 9, finally", [("phone", "a Pixel 9", "set")]),
        ("I switched from Spotify to Apple Music", [("", "Apple Music", "switch")]),
        ("I joined Globex as a data engineer.", [("employer", "Globex", "set")]),
        (
            "Honestly, my favourite sport is rowing these days.",
            [("favourite sport", "rowing", "set")],
        ),
        ("I live in Kansas City too", [("home", "Kansas City", "set")]),
    ],
)
def test_offline_extractor_reads_first_person_statements(
    text: str, expected: list[tuple[str, str, str]]
) -> None:
    assert _said(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Do you live in Paris?",  # no first-person statement
        "My point is that it rains.",
        "My guess is it",
        "The password is [REDACTED_PASSWORD]",
    ],
)
def test_offline_extractor_ignores_what_states_no_fact(text: str) -> None:
    assert _said(text) == []


def test_only_the_users_own_messages_count() -> None:
    messages = [make_message("assistant", "I live in the cloud."), make_message("user", "Hi")]
    assert OfflineFactExtractor().extract("s1", messages) == []


def test_a_new_value_closes_the_old_fact_and_keeps_it() -> None:
    dialogue = _dialogue(("user", "I live in Paris."), ("user", "I moved to Berlin."))
    facts = supersede([], OfflineFactExtractor().extract("s1", dialogue), T0)
    assert [(f.value, f.valid_from, f.valid_to) for f in facts] == [
        ("Paris", dialogue[0].created_at, dialogue[1].created_at),
        ("Berlin", dialogue[1].created_at, None),
    ]
    assert "was true until 2026-05-31" in facts[0].text()
    assert facts[1].text() == "User lives in Berlin (home, since 2026-05-31)"


def test_the_same_value_again_changes_nothing() -> None:
    dialogue = _dialogue(("user", "I live in Paris."), ("user", "I still live in paris"))
    dialogue.append(make_message("user", "I live in Paris.", created_at=T0 + timedelta(days=90)))
    facts = supersede([], OfflineFactExtractor().extract("s1", dialogue), T0)
    assert [(f.value, f.valid_to) for f in facts] == [("Paris", None)]


def test_no_longer_closes_without_a_successor_and_only_the_named_value() -> None:
    dialogue = _dialogue(
        ("user", "I work at Acme."), ("user", "I no longer work at Initech."),
        ("user", "I no longer work at Acme."),
    )  # fmt: skip
    facts = supersede([], OfflineFactExtractor().extract("s1", dialogue), T0)
    assert [(f.value, f.valid_to) for f in facts] == [("Acme", dialogue[2].created_at)]


def test_a_switch_closes_the_fact_holding_the_old_value() -> None:
    dialogue = _dialogue(
        ("user", "My music app is Spotify."), ("user", "I switched from Spotify to Apple Music.")
    )
    facts = supersede([], OfflineFactExtractor().extract("s1", dialogue), T0)
    assert [(f.attribute, f.value, f.current) for f in facts] == [
        ("music app", "Spotify", False),
        ("music app", "Apple Music", True),
    ]


@pytest.fixture
def book(tmp_path: Path) -> FactBook:
    return FactBook(SqlSessionStore.at_path(tmp_path).engine, "kha")


KINDS = {  # a key changed three times: four values
    "home": ["I live in Paris.", "I moved to Berlin.", "I moved to Lisbon.", "I moved to Oslo."],
    "employer": [
        "I work at Acme.", "I started working at Globex.", "I joined Initech.", "I work at Umbrella."
    ],
    "favourite food": [f"My favourite food is {f}." for f in ("ramen", "tacos", "pho", "paella")],
    "api key": [f"My API key is [SECRET_API_KEY_{n:012x}]" for n in range(4)],
}  # fmt: skip


def test_facts_that_change_three_times_give_the_current_and_each_past_value(
    book: FactBook,
) -> None:
    for day, texts in enumerate(zip(*KINDS.values(), strict=True)):
        when = T0 + timedelta(days=100 * day)
        book.observe("s1", [make_message("user", t, created_at=when) for t in texts])
    current = {f.attribute: f.value for f in book.current()}
    assert current == {
        "home": "Oslo", "employer": "Umbrella", "favourite food": "paella",
        "api key": "[SECRET_API_KEY_000000000003]",
    }  # fmt: skip
    assert len(book.facts()) == 16
    for day in range(4):
        held = {f.attribute: f.value for f in book.as_of(T0 + timedelta(days=100 * day + 50))}
        assert held["home"] == ["Paris", "Berlin", "Lisbon", "Oslo"][day]
        assert held["employer"] == ["Acme", "Globex", "Initech", "Umbrella"][day]
    assert book.as_of(T0 - timedelta(days=1)) == []


def test_facts_are_per_user_and_forgotten_with_the_user(tmp_path: Path) -> None:
    engine = SqlSessionStore.at_path(tmp_path).engine
    kha, ann = FactBook(engine, "kha"), FactBook(engine, "ann")
    kha.observe("s1", [make_message("user", "I live in Paris.")])
    ann.observe("s1", [make_message("user", "I live in Rome.")])
    assert [f.value for f in kha.current()] == ["Paris"]
    kha.forget_user()
    assert kha.facts() == [] and [f.value for f in ann.current()] == ["Rome"]


def test_each_fact_links_the_message_it_came_from(book: FactBook) -> None:
    message = make_message("user", "I live in Paris.")
    (fact,) = book.observe("chat", [message])
    assert (fact.session_id, fact.message_id) == ("chat", message.id)
    assert fact.recorded_at >= fact.valid_from


def test_an_extractor_answer_that_is_no_statement_is_refused(tmp_path: Path) -> None:
    class Broken:
        def extract(self, session_id: str, messages: object) -> list[object]:
            return ["User lives in Paris"]

    book = FactBook(SqlSessionStore.at_path(tmp_path).engine, "kha", Broken())  # type: ignore[arg-type]
    with pytest.raises(InvalidMessageError, match="not a Statement"):
        book.observe("s1", [make_message("user", "I live in Paris.")])
    assert book.facts() == []


def test_statements_are_applied_in_time_order(book: FactBook) -> None:
    late = Statement("home", "Berlin", "set", T0 + timedelta(days=9), "s1", "m2")
    early = Statement("home", "Paris", "set", T0, "s1", "m1")
    facts = supersede([], sorted([late, early], key=lambda s: s.said_at), T0)
    assert [(f.value, f.current) for f in facts] == [("Paris", False), ("Berlin", True)]


# --- said facts: dated first-person sentences of events and states ---------------------------


def _sentences(text: str) -> list[tuple[str, str]]:
    statements = OfflineFactExtractor().extract("s1", [make_message("user", text)])
    return [
        (s.attribute, s.value)
        for s in statements
        if s.attribute.startswith((SAID_PREFIX, EVENT_PREFIX))
    ]


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("I just bought a new road bike for my commute.", "I just bought a new road bike"),
        ("I've finished my fifth half-marathon of the year.", "I've finished my fifth"),
        ("I have a pottery class on Wednesdays after work.", "I have a pottery class"),
        ("My daughter started kindergarten at the school in our street.", "My daughter started"),
        ("We adopted a puppy from the shelter last weekend.", "We adopted a puppy"),
        ("I've had my car for about 3 years now and it runs well.", "I've had my car"),
    ],
)
def test_a_first_person_event_or_state_is_a_said_fact(text: str, said: str) -> None:
    ((attribute, value),) = _sentences(text)
    assert value.startswith(f"User said: {said}")
    kind, topic = attribute.split(": ", 1)
    assert (
        kind in ("said", "event") and topic and attribute == said_topic(text, event=kind != "said")
    )


@pytest.mark.parametrize(
    "text",
    [
        "Can you recommend a good road bike for my commute?",  # a question
        "Could you help me plan my trip to Lisbon.",  # a request
        "I'm looking for a new road bike for my commute.",
        "The weather was lovely and the trains were on time.",  # not about the speaker
        "I think so.",  # neither an event nor a state
        "I saved my password as [REDACTED_PASSWORD] yesterday.",
    ],
)
def test_questions_requests_and_other_sentences_are_no_said_facts(text: str) -> None:
    assert _sentences(text) == []


def test_a_sentence_that_points_back_takes_the_one_before_as_context() -> None:
    text = "Have you been to the ramen bars on Elm Street? I've visited three of them already."
    ((_, value),) = _sentences(text)
    assert value == f"User said: {text}"
    alone = "I've visited three ramen bars on Elm Street since the spring began."
    assert _sentences(f"It rained. {alone}")[0][1] == f"User said: {alone}"


def test_a_said_fact_is_dated_and_only_for_sentences_without_a_keyed_fact() -> None:
    when = datetime(2026, 3, 9, 10, tzinfo=timezone.utc)
    message = make_message(
        "user",
        "I moved to Berlin in May. I also adopted a rescue cat from the shelter, Miso.",
        created_at=when,
    )
    statements = OfflineFactExtractor().extract("s1", [message])
    assert statements[0].attribute == "home"
    facts = supersede([], statements, when)
    said = [f for f in facts if f.said]
    assert [f.text() for f in said] == [
        "User said: I also adopted a rescue cat from the shelter, Miso. (said 2026-03-09)"
    ]
    assert OfflineFactExtractor(sentences=False).extract("s1", [message])[0].attribute == "home"
    assert len(OfflineFactExtractor(sentences=False).extract("s1", [message])) == 1


def test_the_same_sentence_with_a_new_count_supersedes_the_old_one() -> None:
    dialogue = _dialogue(
        ("user", "I've used my new kayak four times already."),
        ("user", "I've used my new kayak six times already."),
    )
    facts = supersede([], OfflineFactExtractor().extract("s1", dialogue), T0)
    assert [(f.value.split()[-3], f.current) for f in facts] == [("four", False), ("six", True)]
    assert "was true until 2026-05-31" in facts[0].text()


def test_an_event_said_again_is_another_event_and_closes_nothing() -> None:
    dialogue = _dialogue(
        ("user", "I went to the climbing gym yesterday with my brother."),
        ("user", "I went to the climbing gym yesterday with my brother."),
    )
    statements = OfflineFactExtractor().extract("s1", dialogue)
    assert [s.attribute.startswith(EVENT_PREFIX) for s in statements] == [True, True]
    facts = supersede([], statements, T0)
    assert [f.current for f in facts] == [True, True]
    assert [f.valid_from for f in facts] == [m.created_at for m in dialogue]


def test_a_named_speaker_is_named_in_the_said_fact() -> None:
    message = make_message("user", "I painted a sunrise over the lake yesterday.", name="Mel")
    (statement,) = OfflineFactExtractor().extract("s1", [message])
    assert statement.value == "Mel said: I painted a sunrise over the lake yesterday."
