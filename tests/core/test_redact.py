"""tiered_memory.redact: secrets and (opt-in) PII replaced by typed placeholders."""

from __future__ import annotations

import dataclasses
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tiered_memory.redact import PII_KINDS, PLACEHOLDERS, Finding, contains_secret, redact

# (text, secret that must disappear, kind of the finding)
POSITIVES: list[tuple[str, str, str]] = [
    ("My API key is 123", "123", "api_key"),
    ("the password is hunter2", "hunter2", "password"),
    ("password: x", "x", "password"),
    ("pwd=s3cr3t!", "s3cr3t!", "password"),
    ("my pin is 4321", "4321", "password"),
    ("token: abc123def", "abc123def", "token"),
    ("secret = hunter2", "hunter2", "secret"),
    ("My password for the wifi router is Sunshine99.", "Sunshine99", "password"),
    ("set my password to Tr0ub4dor&3 please", "Tr0ub4dor&3", "password"),
    ('"password": "correct horse battery"', "correct horse battery", "password"),
    ("I changed the passcode to: 8u7y6t", "8u7y6t", "password"),
    ("DB_PASSWORD=pa55w0rd", "pa55w0rd", "password"),
    ("X-API-Key: 8d7f6e5c4b3a", "8d7f6e5c4b3a", "api_key"),
    ("client_secret=AbcDefGhiJklMnoPqr", "AbcDefGhiJklMnoPqr", "secret"),
    ("key: 8f14e45fceea167a5a36dedd4bea2543", "8f14e45fceea167a5a36dedd4bea2543", "secret"),
    ("cvv: 123", "123", "card"),
    ("open https://bob:s3cret@example.com/x", "s3cret", "password"),
    ("?access_token=abc123def456&user=bob", "abc123def456", "token"),
    (
        "use sk-proj-AbCdEf0123456789GhIjKlMnOpQr now",
        "sk-proj-AbCdEf0123456789GhIjKlMnOpQr",
        "api_key",
    ),
    (
        "sk-ant-api03-AbCdEf0123456789GhIjKlMnOpQr",
        "sk-ant-api03-AbCdEf0123456789GhIjKlMnOpQr",
        "api_key",
    ),
    ("sk-AbCdEf0123456789GhIjKlMnOpQrStUv", "sk-AbCdEf0123456789GhIjKlMnOpQrStUv", "api_key"),
    ("id AKIAIOSFODNN7EXAMPLE", "AKIAIOSFODNN7EXAMPLE", "api_key"),
    ("ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A", "api_key"),
    (
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "secret",
    ),
    (
        "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "api_key",
    ),
    (
        "gho_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "gho_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "api_key",
    ),
    (
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
        "api_key",
    ),
    ("xoxb-123456789012-abcdefghijkl", "xoxb-123456789012-abcdefghijkl", "api_key"),
    (
        "AIzaSyA-abcdefghijklmnopqrstuvwxyz12345",
        "AIzaSyA-abcdefghijklmnopqrstuvwxyz12345",
        "api_key",
    ),
    ("sk_live_abcdefghijklmnop1234", "sk_live_abcdefghijklmnop1234", "api_key"),
    ("rk_live_abcdefghijklmnop1234", "rk_live_abcdefghijklmnop1234", "api_key"),
    ("Authorization: Bearer abc.def.ghi123", "abc.def.ghi123", "token"),
    ("curl -H 'Authorization: Basic dXNlcjpwYXNzd29yZA=='", "dXNlcjpwYXNzd29yZA==", "token"),
    ("send Bearer 0123456789abcdefXYZ to it", "0123456789abcdefXYZ", "token"),
    (
        "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9P",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9P",
        "token",
    ),
    ("card 4111 1111 1111 1111 thanks", "4111 1111 1111 1111", "card"),
    ("card 4111-1111-1111-1111", "4111-1111-1111-1111", "card"),
    ("amex 378282246310005.", "378282246310005", "card"),
    (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----",
        "MIIEpAIBAAKCAQEA",
        "private_key",
    ),
]

NEGATIVES: list[str] = [
    "I have 3 kids",
    "my password manager is great",
    "we have a token budget of 2000",
    "token budget of 2000 tokens, max_tokens=512",
    "the meeting is on 2024-01-15 at 12:30",
    "version 1.2.3 was released in 2023",
    "order 1234567812345678 shipped",
    "request id 550e8400-e29b-41d4-a716-446655440000 failed",
    "what is my password?",
    "what is my API key?",
    "the password is wrong",
    "my password is too short",
    "the password is 8 characters long",
    "The API key is stored in the env file",
    "The secret is patience",
    "the secret to success is practice",
    "Each token is roughly 4 characters",
    "the key is to practice every day",
    "key: value",
    "Password: must be 8 characters",
    "Forgot password? Click here",
    "password: ********",
    'password = os.environ["DB_PASSWORD"]',
    "def login(password: str) -> bool:",
    "token: ${GITHUB_TOKEN}",
    "I changed my password to something stronger",
    "the pin is loose",
    "passport: 123456789",
    "sk-learn-is-a-very-nice-library-name",
    "I'm the bearer of bad news",
    "server at 192.168.10.100",
    "years 2020 2021 2022 2023",
    "it costs $1,299.99",
    "mail me at bob@example.com or call +1 555 123 4567",
]


def _luhn_digit(body: str) -> str:
    """The check digit that makes ``body + digit`` Luhn-valid."""
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return str(-total % 10)


# --- table -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "secret", "kind"), POSITIVES)
def test_secret_is_replaced_by_its_kind_placeholder(text: str, secret: str, kind: str) -> None:
    result = redact(text)
    assert secret not in result.text
    assert PLACEHOLDERS[kind] in result.text
    assert [f.kind for f in result.findings] == [kind]


@pytest.mark.parametrize("text", NEGATIVES)
def test_ordinary_text_is_left_unchanged(text: str) -> None:
    result = redact(text)
    assert result.text == text
    assert result.findings == ()
    assert not result.changed


@pytest.mark.parametrize(("text", "secret", "kind"), POSITIVES)
def test_findings_point_at_the_secret_in_the_original_text(
    text: str, secret: str, kind: str
) -> None:
    (finding,) = redact(text).findings
    assert secret in text[finding.start : finding.end]


@pytest.mark.parametrize("text", [t for t, _, _ in POSITIVES] + NEGATIVES)
def test_redaction_is_idempotent_on_the_table(text: str) -> None:
    once = redact(text).text
    assert redact(once).text == once


# --- behaviour -------------------------------------------------------------------------------------


def test_seed_example_keeps_the_cue_words() -> None:
    assert redact("My API key is 123").text == "My API key is [REDACTED_API_KEY]"


def test_only_the_value_after_a_cue_is_replaced() -> None:
    result = redact("ok, the password is hunter2. Thanks!")
    assert result.text == "ok, the password is [REDACTED_PASSWORD]. Thanks!"


def test_quoted_value_is_replaced_inside_the_quotes() -> None:
    assert redact("my password is 'don t tell'").text == "my password is '[REDACTED_PASSWORD]'"


def test_finding_stores_no_secret_value() -> None:
    assert [f.name for f in dataclasses.fields(Finding)] == ["kind", "start", "end"]
    assert "hunter2" not in repr(redact("the password is hunter2"))


def test_changed_is_true_only_when_something_was_redacted() -> None:
    assert redact("password: x").changed
    assert not redact("hello there").changed


def test_contains_secret() -> None:
    assert contains_secret("My API key is 123")
    assert not contains_secret("I have 3 kids")


def test_every_kind_has_a_redacted_placeholder() -> None:
    expected = {"api_key", "password", "card", "private_key", "token", "secret", "email", "phone"}
    assert set(PLACEHOLDERS) == expected
    for kind, placeholder in PLACEHOLDERS.items():
        assert placeholder == f"[REDACTED_{kind.upper()}]"


def test_empty_text_is_unchanged() -> None:
    assert redact("").text == ""
    assert redact("").findings == ()


def test_secret_hidden_next_to_another_is_found_by_the_rescan() -> None:
    # the card's digits follow the key's digits, so only the redacted text shows it whole
    text = "sk-proj-AbCdEf0123456789GhIjKlMnOp0 2000000000008"
    result = redact(text)
    assert result.text == "[REDACTED_API_KEY] [REDACTED_CARD]"
    assert [f.kind for f in result.findings] == ["api_key", "card"]


def test_several_secrets_in_one_message_give_ordered_findings() -> None:
    text = "pwd=abc and my pin is 1234 and token: xyz789abc"
    result = redact(text)
    assert result.text == (
        "pwd=[REDACTED_PASSWORD] and my pin is [REDACTED_PASSWORD] and token: [REDACTED_TOKEN]"
    )
    starts = [f.start for f in result.findings]
    assert starts == sorted(starts)


def test_overlapping_findings_are_merged_into_one() -> None:
    text = "OPENAI_API_KEY=sk-proj-AbCdEf0123456789GhIjKlMnOpQr"
    result = redact(text)
    assert result.text == "OPENAI_API_KEY=[REDACTED_API_KEY]"
    assert result.findings == (Finding("api_key", 15, len(text)),)


def test_merged_finding_takes_the_more_specific_kind() -> None:
    text = "password: 4111 1111 1111 1111"
    result = redact(text)
    assert result.text == "password: [REDACTED_CARD]"
    assert result.findings == (Finding("card", 10, len(text)),)


def test_card_number_must_pass_luhn() -> None:
    body = "411111111111111"
    valid = body + _luhn_digit(body)
    invalid = body + str((int(_luhn_digit(body)) + 1) % 10)
    assert redact(f"card {valid}").text == "card [REDACTED_CARD]"
    assert redact(f"order {invalid}").text == f"order {invalid}"


@pytest.mark.parametrize("length", [13, 15, 16, 19])
def test_luhn_valid_cards_of_13_to_19_digits_are_redacted(length: int) -> None:
    body = "5" + "3" * (length - 2)
    assert redact(f"pay with {body}{_luhn_digit(body)}").text == "pay with [REDACTED_CARD]"


def test_luhn_valid_digit_run_longer_than_19_digits_is_not_a_card() -> None:
    body = "4" * 19
    number = body + _luhn_digit(body)
    assert redact(number).text == number


def test_unterminated_private_key_is_redacted_to_the_end() -> None:
    text = "here:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA"
    assert redact(text).text == "here:\n[REDACTED_PRIVATE_KEY]"


def test_text_after_a_private_key_block_is_kept() -> None:
    text = "-----BEGIN PRIVATE KEY-----\nMIIabc\n-----END PRIVATE KEY-----\nthanks"
    assert redact(text).text == "[REDACTED_PRIVATE_KEY]\nthanks"


def test_pii_is_not_redacted_by_default() -> None:
    text = "my email is bob@example.com and my phone is +1 555 123 4567"
    assert redact(text).text == text
    assert not contains_secret(text)


def test_pii_flag_redacts_emails_and_phones() -> None:
    text = "my email is bob@example.com and my phone is +1 555 123 4567"
    result = redact(text, pii=True)
    assert result.text == "my email is [REDACTED_EMAIL] and my phone is [REDACTED_PHONE]"
    assert {f.kind for f in result.findings} == PII_KINDS
    assert contains_secret(text, pii=True)


@pytest.mark.parametrize("text", ["call (555) 123-4567", "call 555-123-4567", "+447946095899"])
def test_pii_flag_redacts_common_phone_formats(text: str) -> None:
    assert "[REDACTED_PHONE]" in redact(text, pii=True).text


@pytest.mark.parametrize("text", ["on 2024-01-15 12:30", "at 192.168.10.100", "I have 3 kids"])
def test_pii_flag_leaves_dates_and_addresses_alone(text: str) -> None:
    assert redact(text, pii=True).text == text


# --- properties ------------------------------------------------------------------------------------

_ALNUM = string.ascii_letters + string.digits
_B64URL = _ALNUM + "_-"
_FILLER = st.text(alphabet=string.ascii_lowercase + " .,!?'\n", max_size=60)


def _body(alphabet: str, min_size: int, max_size: int) -> st.SearchStrategy[str]:
    """Random characters with at least one digit (every real key format has some)."""
    return st.builds(
        lambda a, d, b: a + d + b,
        st.text(alphabet=alphabet, min_size=min_size, max_size=max_size),
        st.sampled_from(string.digits),
        st.text(alphabet=alphabet, max_size=8),
    )


@st.composite
def _cards(draw: st.DrawFn) -> str:
    length = draw(st.integers(13, 19))
    body = draw(st.sampled_from("23456")) + draw(
        st.text(alphabet=string.digits, min_size=length - 2, max_size=length - 2)
    )
    digits = body + _luhn_digit(body)
    if draw(st.booleans()):
        return " ".join(digits[i : i + 4] for i in range(0, len(digits), 4))
    return digits


_VALUE = st.builds(
    lambda a, d: a + d,
    st.text(alphabet=string.ascii_letters, min_size=5, max_size=12),
    st.text(alphabet=string.digits, min_size=1, max_size=4),
)
_CUES = st.sampled_from(
    [
        "my password is {}",
        "the password is {}",
        "password: {}",
        "pwd={}",
        "My API key is {}",
        "api_key = {}",
        "token: {}",
        "secret = {}",
        "my access token is {}",
    ]
)

# (text containing the secret, the secret)
_SECRETS = st.one_of(
    st.builds(lambda b: (b, b), st.builds("sk-proj-{}".format, _body(_B64URL, 20, 40))),
    st.builds(lambda b: (b, b), st.builds("sk-ant-api03-{}".format, _body(_B64URL, 20, 40))),
    st.builds(
        lambda b: (b, b),
        st.builds(
            "AKIA{}".format,
            st.text(alphabet=string.ascii_uppercase + string.digits, min_size=16, max_size=16),
        ),
    ),
    st.builds(lambda b: (b, b), st.builds("ghp_{}".format, _body(_ALNUM, 35, 40))),
    st.builds(lambda b: (b, b), st.builds("xoxb-{}".format, _body(_ALNUM + "-", 10, 30))),
    st.builds(
        lambda b: (b, b),
        st.builds("AIza{}".format, st.text(alphabet=_B64URL, min_size=35, max_size=35)),
    ),
    st.builds(lambda b: (b, b), st.builds("sk_live_{}".format, _body(_ALNUM, 16, 30))),
    st.builds(
        lambda h, p, s: (f"eyJ{h}.eyJ{p}.{s}",) * 2,
        st.text(alphabet=_B64URL, min_size=4, max_size=30),
        st.text(alphabet=_B64URL, min_size=4, max_size=30),
        st.text(alphabet=_B64URL, max_size=30),
    ),
    st.builds(lambda c: (c, c), _cards()),
    st.builds(lambda cue, v: (cue.format(v), v), _CUES, _VALUE),
    st.builds(lambda v: (f"Authorization: Bearer {v}", v), _body(_ALNUM + "._~+/-", 16, 40)),
)

_BENIGN_PHRASES = st.sampled_from(NEGATIVES[:-1])  # the last one is PII, only kept with pii=False


@settings(deadline=None)
@given(st.text())
def test_redact_never_raises_on_arbitrary_unicode(text: str) -> None:
    for pii in (False, True):
        result = redact(text, pii=pii)
        assert isinstance(result.text, str)
        previous_end = 0
        for f in result.findings:  # ordered, disjoint spans of the original text
            assert previous_end <= f.start < f.end <= len(text)
            previous_end = f.end


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_FILLER, _SECRETS, _FILLER)
def test_generated_secret_never_survives_in_random_text(
    before: str, secret: tuple[str, str], after: str
) -> None:
    snippet, value = secret
    result = redact(f"{before} {snippet} {after}")
    assert value not in result.text
    assert contains_secret(f"{before} {snippet} {after}")


@settings(deadline=None)
@given(
    st.lists(st.one_of(_BENIGN_PHRASES, _FILLER), max_size=8), st.sampled_from([" ", ". ", "\n"])
)
def test_text_without_secrets_is_unchanged(parts: list[str], sep: str) -> None:
    text = sep.join(parts)
    assert redact(text).text == text


@settings(deadline=None)
@given(st.text())
def test_redaction_is_idempotent_on_arbitrary_text(text: str) -> None:
    once = redact(text, pii=True).text
    assert redact(once, pii=True).text == once


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(_SECRETS.map(lambda s: s[0]), _BENIGN_PHRASES, _FILLER), max_size=6))
def test_redaction_is_idempotent_on_text_with_secrets(parts: list[str]) -> None:
    once = redact(" ".join(parts)).text
    assert redact(once).text == once


# Pieces of every detector's syntax, so that random joins hit their edges.
_FRAGMENTS = st.sampled_from(
    [
        "password", "pwd", "token", "secret", "api key", "pin", "key", "cvv", " is ", ": ", "=",
        " ", "\n", "-", ",", ".", "'", '"', "&x=", "@", "://", "a", "Z", "0", "7", "42", "4111",
        "2000000000008", "sk-proj-", "AKIA", "ghp_", "xoxb-", "AIza", "sk_live_", "eyJ", "Bearer ",
        "Authorization: ", "-----BEGIN PRIVATE KEY-----", "-----END PRIVATE KEY-----",
        "[REDACTED_API_KEY]", "[REDACTED_", "+1 ", "(555) ", "example.com",
        "Passwort", " ist ", "contraseña", " es ", "mot de passe", " est ", "senha", " é ",
        "wachtwoord", "alarm code", "security question", "answer", "use ", " as my ", "login ",
        " / ", "?", "it's ", "first half", "PIN", "1234", "Xk9mP2qL7", "that's my password",
    ]
)  # fmt: skip


@settings(deadline=None)
@given(st.lists(st.one_of(_FRAGMENTS, st.text(alphabet=_B64URL, max_size=20)), max_size=30))
def test_redaction_is_idempotent_on_joined_detector_fragments(parts: list[str]) -> None:
    once = redact("".join(parts), pii=True).text
    assert redact(once, pii=True).text == once


_PREVIOUS = st.sampled_from(
    [
        None,
        "What's your password?",
        "Wie lautet der Alarmcode?",
        "first half of the key: 9d8c7b6a5f4e3d2c",
        "Security question: first pet?",
        "[REDACTED_PASSWORD]",
    ]
)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.one_of(_FRAGMENTS, st.text(alphabet=_B64URL, max_size=20)), max_size=20),
    _PREVIOUS,
)
def test_redaction_is_idempotent_with_a_previous_message(
    parts: list[str], previous: str | None
) -> None:
    once = redact(" ".join(parts), previous=previous).text
    assert redact(once, previous=previous).text == once


def test_previous_message_only_adds_findings() -> None:
    for text in ("hunter2", "my pin is 4321", "second half: 1a2b3c4d5e6f7a8b"):
        alone = redact(text)
        with_previous = redact(text, previous="What's your password? Send the key too")
        assert set(alone.findings) <= set(with_previous.findings)
    assert redact("hunter2", previous="What's your password?").text == "[REDACTED_PASSWORD]"


def test_redact_keeps_its_keyword_only_signature() -> None:
    assert redact("password: x").text == "password: [REDACTED_PASSWORD]"
    with pytest.raises(TypeError):
        redact("password: x", True)  # type: ignore[misc]


# --- adversarial input -----------------------------------------------------------------------------

_MB = 1_000_000


def _repeat(unit: str) -> str:
    return (unit * (_MB // len(unit) + 1))[:_MB]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(_repeat("a"), id="letters"),
        pytest.param(_repeat("4 "), id="spaced-digits"),
        pytest.param(_repeat("pin="), id="rejected-cues"),
        pytest.param(_repeat("key="), id="generic-labels"),
        pytest.param(_repeat("password is "), id="natural-cues"),
        pytest.param(_repeat("eyJa."), id="jwt-fragments"),
        pytest.param(_repeat("-----BEGIN PRIVATE KEY-----"), id="pem-markers"),
        pytest.param(_repeat("a@b."), id="email-fragments"),
        pytest.param(_repeat("+1 (55) "), id="phone-fragments"),
    ],
)
def test_one_megabyte_adversarial_input_completes(text: str) -> None:
    result = redact(text, pii=True)
    assert result.changed or result.text == text


def _repeat_to(unit: str, size: int) -> str:
    return (unit * (size // len(unit) + 1))[:size]


@pytest.mark.parametrize(
    "unit",
    [
        "Passwort ist ",
        "use x as my password ",
        "login a/b ",
        "security question is ",
        "code: 1234 ",
        "pin ",
        "my password? it's ",
        "the password for the bank of the city is ",
        "key Xk9mP2qL7 ",
    ],
)
def test_100_kilobytes_of_repeated_word_cues_complete(unit: str) -> None:
    text = _repeat_to(unit, 100_000)
    for previous in (None, "What's your password?"):
        result = redact(text, previous=previous)
        assert result.changed or result.text == text
