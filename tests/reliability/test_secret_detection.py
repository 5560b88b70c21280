"""Secret detection on the classes of issue 12 (item 6), and ordinary chat that must stay as it is.

Each positive names the secret value; the test checks that the value is gone from the redacted
text (firing on the cue word alone does not count). These phrasings are not the benchmark's
labelled set (``tiered_memory_bench.secret_phrasings``); they are written for the tests.
"""

from __future__ import annotations

import itertools
import json

import pytest

from tiered_memory.errors import ConfigError
from tiered_memory.redact import (
    DEFAULT_DETECTOR,
    ChainedSecretDetector,
    DefaultSecretDetector,
    Finding,
    SecretDetector,
    contains_secret,
    redact,
)


def _gone(value: str, text: str) -> bool:
    words = [word for word in value.split() if len(word) >= 3] or [value]
    return all(word not in text for word in words)


def _check(text: str, value: str, previous: str | None = None) -> None:
    result = redact(text, previous=previous)
    assert _gone(value, result.text), result.text
    assert result.text.count("[REDACTED_") >= 1
    again = redact(result.text, previous=previous).text
    assert again == result.text  # idempotent with the same previous message


ORDINARY_PHRASINGS = [
    ("Please use Magnolia8 as my password", "Magnolia8"),
    ("My password? It's riverstone", "riverstone"),
    ("pw is blueberry31", "blueberry31"),
    ("the password I always use is Copperfield", "Copperfield"),
    ("Stargazer_12 - that's my password, don't share it", "Stargazer_12"),
    ("I'll go with Hazelnut77 for the password", "Hazelnut77"),
    ("my bank password is still tortoise", "tortoise"),
    ("the password has been changed to Quasar#9", "Quasar#9"),
    ("the password is, well, Tumbleweed", "Tumbleweed"),
    ("password is the same as before: Tortilla12", "Tortilla12"),
]


@pytest.mark.parametrize(("text", "value"), ORDINARY_PHRASINGS)
def test_password_in_an_ordinary_phrasing_is_redacted(text: str, value: str) -> None:
    _check(text, value)


OTHER_LANGUAGES = [
    ("Mein Passwort lautet Eichhörnchen", "Eichhörnchen"),
    ("Das Kennwort fürs Büro ist Aktenordner3", "Aktenordner3"),
    ("Mi contraseña es jirafa", "jirafa"),
    ("La contraseña del portátil: Castaña!4", "Castaña!4"),
    ("Mon mot de passe est hérisson", "hérisson"),
    ("La mia password è pappagallo", "pappagallo"),
    ("A minha senha é borboleta", "borboleta"),
    ("Mijn wachtwoord is Kikkerland5", "Kikkerland5"),
]


@pytest.mark.parametrize(("text", "value"), OTHER_LANGUAGES)
def test_password_in_another_language_is_redacted(text: str, value: str) -> None:
    _check(text, value)


ALARM_CODES = [
    ("The alarm code is 6023", "6023"),
    ("front door code: 7152#", "7152"),
    ("Der Alarmcode lautet 4419", "4419"),
    ("El código de la alarma es 3857", "3857"),
    ("Le digicode est 8B14", "8B14"),
    ("to turn off the alarm type 9064 on the keypad", "9064"),
    ("PIN: 12 34", "12 34"),
    ("the combination of my locker is 10 20 30", "10 20 30"),
]


@pytest.mark.parametrize(("text", "value"), ALARM_CODES)
def test_alarm_and_door_codes_are_redacted(text: str, value: str) -> None:
    _check(text, value)


SECURITY_ANSWERS = [
    ("My mother's maiden name is Ellsworth", "Ellsworth"),
    ("The answer to my security question is 'Sparky'", "Sparky"),
    ("security answer: Timbuktu", "Timbuktu"),
    ("Die Antwort auf die Sicherheitsfrage ist Waldi", "Waldi"),
    ("La respuesta de seguridad es Pelusa", "Pelusa"),
]


@pytest.mark.parametrize(("text", "value"), SECURITY_ANSWERS)
def test_security_answers_are_redacted(text: str, value: str) -> None:
    _check(text, value)


def test_bare_reply_to_a_password_question_is_redacted_with_previous() -> None:
    assert redact("hunter2").text == "hunter2"  # alone it is just a word
    result = redact("hunter2", previous="What's your password?")
    assert result.text == "[REDACTED_PASSWORD]"


def test_bare_reply_to_a_pin_question_is_redacted_with_previous() -> None:
    _check("It's 5521", "5521", previous="What is the PIN of your card?")


def test_reply_to_a_question_in_another_language_is_redacted() -> None:
    _check("Es ist Gurkensalat", "Gurkensalat", previous="Wie lautet dein Passwort?")


def test_reply_to_a_security_question_is_redacted() -> None:
    _check("Patches", "Patches", previous="Security question: what was your first pet's name?")


def test_second_half_of_a_split_key_is_redacted() -> None:
    previous = "my api key is too long, first half: 9d8c7b6a5f4e3d2c"
    assert "9d8c7b6a5f4e3d2c" not in redact(previous).text
    _check("second half: 1a2b3c4d5e6f7a8b", "1a2b3c4d5e6f7a8b", previous=previous)
    _check("1a2b3c4d5e6f7a8b", "1a2b3c4d5e6f7a8b", previous=previous)


def test_previous_message_that_is_already_redacted_still_sets_the_context() -> None:
    previous = redact("first part of the token: Zx81Cv92Bn03").text
    _check("Mq47Lp58Ko69", "Mq47Lp58Ko69", previous=previous)


def test_a_filler_after_the_copula_is_kept_and_the_value_redacted() -> None:
    result = redact("Das Passwort ist übrigens Lindenbaum")
    assert result.text == "Das Passwort ist übrigens [REDACTED_PASSWORD]"


def test_reply_to_a_request_without_a_question_mark_is_redacted() -> None:
    _check("sure it's 4417 but don't tell", "4417", previous="Can I have the alarm code")


def test_ordinary_reply_after_a_password_question_is_kept() -> None:
    for reply in ["I don't remember", "why do you need it?", "no", "Thanks!"]:
        assert redact(reply, previous="What's your password?").text == reply


@pytest.mark.parametrize(
    ("arguments", "value"),
    [
        ({"username": "ops", "password": "Raven!42"}, "Raven!42"),
        ({"passwort": "Nordlicht7"}, "Nordlicht7"),
        ({"contraseña": "Limon123"}, "Limon123"),
        ({"alarm_code": "8812"}, "8812"),
        ({"security_answer": "Bramble"}, "Bramble"),
        ({"pin": 7302}, "7302"),
    ],
)
def test_tool_call_arguments_are_redacted(arguments: dict[str, object], value: str) -> None:
    _check(json.dumps(arguments, ensure_ascii=False), value)


ORDINARY_CHAT = [
    "the key is to keep practising",
    "my password manager is great",
    "my password manager is Bitwarden",
    "Use a password manager and turn on 2FA.",
    "pin the tweet to the top of your profile",
    "I pinned 3 photos from the trip",
    "We met on 2023-05-14 at 18:30",
    "Dinner was $42.50 and the taxi 18 euros",
    "I'm in room 1204 on the 12th floor",
    "My flight is LH1234 at 7:45",
    "the secret to a good risotto is patience",
    "The code is on GitHub, take a look",
    "the dress code is smart casual",
    "My zip code is 90210",
    "We passed the exam with 92 points",
    "the wifi is down again",
    "the combination of those flavours is amazing",
    "Forgot password? Click here",
    "What is my password?",
    "the password must be at least 12 characters",
    "Longer passwords are generally more secure",
    "Consistency is key: post every day",
    "I got a new key for the apartment",
    "It took 45 minutes and 3 attempts",
    "Monthly pass: $100/month",
    "I spent 2,500 on the new laptop",
    "She turned 30 in 2021",
    "My password is 12 characters long",
    "the PIN is 1 of 3 options",
    "my password manager is great, server at 192.168.10.100",
    "Consider a password manager like LastPass, 1Password or Bitwarden",
]


@pytest.mark.parametrize("text", ORDINARY_CHAT)
def test_ordinary_chat_is_left_unchanged(text: str) -> None:
    result = redact(text)
    assert result.text == text
    assert result.findings == ()


@pytest.mark.parametrize(
    ("previous", "text"),
    [
        ("What's the key to a happy life?", "Gratitude, every day."),
        ("Any secret to your sourdough?", "Patience!"),
        ("Use a password manager.", "Bitwarden?"),
        ("What is your room number?", "It's 1204"),
        ("What time is the pin drop ceremony?", "At 1930"),
    ],
)
def test_ordinary_reply_to_an_ordinary_question_is_left_unchanged(previous: str, text: str) -> None:
    assert redact(text, previous=previous).text == text


# --- the pluggable detector ------------------------------------------------------------------


class EmployeeIdDetector:
    """A plug-in: the company's employee ids (EMP-123456) are secrets too."""

    def find(self, text: str, *, previous: str | None = None, pii: bool = False) -> list[Finding]:
        start = text.find("EMP-")
        if start < 0 or text.startswith("[REDACTED_", start):
            return []
        return [Finding("employee_id", start, start + 10)]


def test_a_custom_detector_replaces_the_default() -> None:
    text = "my id is EMP-123456 and my password is hunter2"
    result = redact(text, detector=EmployeeIdDetector())
    assert result.text == "my id is [REDACTED_EMPLOYEE_ID] and my password is hunter2"
    assert result.findings == (Finding("employee_id", 9, 19),)


def test_a_chained_detector_adds_to_the_default() -> None:
    detector = ChainedSecretDetector(DEFAULT_DETECTOR, EmployeeIdDetector())
    text = "my id is EMP-123456 and my password is hunter2"
    result = redact(text, detector=detector)
    assert result.text == "my id is [REDACTED_EMPLOYEE_ID] and my password is [REDACTED_PASSWORD]"
    assert redact(result.text, detector=detector).text == result.text
    assert contains_secret(text, detector=EmployeeIdDetector())


def test_the_default_detector_satisfies_the_protocol_and_reports_disjoint_spans() -> None:
    assert isinstance(DEFAULT_DETECTOR, SecretDetector)
    assert isinstance(DefaultSecretDetector(), SecretDetector)
    findings = DEFAULT_DETECTOR.find("pin 4821, and my password is Maple!9, ok?")
    assert [f.kind for f in findings] == ["password", "password"]
    assert all(a.end <= b.start for a, b in itertools.pairwise(findings))


def test_the_detector_receives_previous_and_pii() -> None:
    seen: list[tuple[str, str | None, bool]] = []

    class Recording:
        def find(
            self, text: str, *, previous: str | None = None, pii: bool = False
        ) -> list[Finding]:
            seen.append((text, previous, pii))
            return []

    redact("hello", previous="hi", pii=True, detector=Recording())
    assert seen == [("hello", "hi", True)]


class _Bad:
    def __init__(self, finding: object) -> None:
        self.finding = finding

    def find(self, text: str, *, previous: str | None = None, pii: bool = False) -> list[object]:
        return [self.finding]


@pytest.mark.parametrize(
    ("finding", "message"),
    [
        (Finding("password", 3, 99), "outside a text of 5 characters"),
        (Finding("password", 2, 2), "outside a text"),
        (Finding("Pass Word", 0, 2), "lower-case letters"),
        (("password", 0, 2), "not a Finding"),
    ],
)
def test_a_detector_returning_invalid_findings_gets_a_config_error(
    finding: object, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        redact("hello", detector=_Bad(finding))  # type: ignore[arg-type]


def test_a_chain_of_nothing_or_of_non_detectors_is_refused() -> None:
    with pytest.raises(ConfigError, match="at least one"):
        ChainedSecretDetector()
    with pytest.raises(ConfigError, match="find"):
        ChainedSecretDetector(object())  # type: ignore[arg-type]
