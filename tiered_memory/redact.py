"""Find secrets (and, opt-in, PII) in chat text and replace them by typed placeholders.

Pure and stdlib-only; the memory runs it on every message before the text reaches the running
summary or the vector store. Only the secret value is replaced, the words around it stay, so
``"My API key is 123"`` becomes ``"My API key is [REDACTED_API_KEY]"``.

Detectors:

- vendor key formats: OpenAI/Anthropic ``sk-``, AWS ``AKIA``/``ASIA`` key ids, GitHub ``ghp_``/
  ``gho_``/``github_pat_``, Slack ``xox?-``, Google ``AIza``, Stripe ``sk_live_``/``rk_live_``,
  GitLab, Hugging Face, npm, SendGrid;
- JWTs (``eyJ….eyJ….sig``), ``Authorization: …`` headers and ``Bearer <token>``;
- PEM private key blocks (an unterminated block is redacted to the end of the text);
- credit-card numbers: 13-19 digits (single spaces or dashes allowed), first digit 2-6, Luhn-valid;
- passwords in URLs (``scheme://user:password@host``);
- cues: a label (password, pwd, passphrase, pin, cvv, API key, access key, secret, secret key,
  token, credentials, private key, key/auth) followed by ``:``/``=`` or by "is"/"was" (also "the
  password for my bank is …", "set my password to …"); the value after the cue is redacted.
  Values that read as ordinary words ("the password is wrong") are left alone, a token/secret
  value must look like a credential, a pin must be 3-12 digits, a ``key:``/``auth:`` value must be
  high-entropy.
- with ``pii=True`` only: email addresses and phone numbers (off by default so that the memory can
  still answer "what is my email?").

- secrets stated in words, in English, German, Spanish, French, Italian, Portuguese and Dutch
  (``_secret_cues``): a cue lexicon (password/Passwort/contraseña/mot de passe/senha/wachtwoord,
  PIN and alarm/door/gate codes, security questions and answers, API keys, tokens, login pairs)
  with the value shapes that may follow each cue, values before the cue ("use X as my password"),
  high-entropy tokens near a cue, and a cue (or a secret) in the previous message
  ("What's your password?" -> "hunter2"; the second half of a split key).

API: ``redact(text, *, pii=False, previous=None, detector=None) -> Redaction(text, findings)``,
``contains_secret(text)``, ``PLACEHOLDERS`` (kind -> placeholder). ``previous`` is the previous
message of the same session. The detection is pluggable: a ``SecretDetector`` has
``find(text, *, previous=None, pii=False) -> Sequence[Finding]``; ``DefaultSecretDetector`` is
the one described here, ``ChainedSecretDetector`` runs several. A ``Finding`` is a kind and a
span of the original text, never the value. Overlapping findings are merged into one (the most
specific kind names it), and the detector runs again on the redacted text until nothing new
turns up (a secret can hide another one), so ``redact(redact(x).text).text == redact(x).text``
for any detector that never matches inside a ``[REDACTED_…]`` placeholder.

Speed: every pattern is precompiled, starts behind a lookbehind that forbids starting inside a run
of its own characters and has bounded or deterministic repetitions, so matching is linear in the
length of the text, also on adversarial input.
"""

from __future__ import annotations

import hashlib
import math
import re
import threading
from bisect import bisect_right
from collections import Counter, OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Protocol, runtime_checkable

from . import _secret_cues
from .errors import ConfigError

__all__ = [
    "DEFAULT_DETECTOR",
    "PII_KINDS",
    "PLACEHOLDERS",
    "ChainedSecretDetector",
    "DefaultSecretDetector",
    "Finding",
    "Redaction",
    "SecretDetector",
    "contains_secret",
    "redact",
]

PLACEHOLDERS: Mapping[str, str] = MappingProxyType(
    {
        "api_key": "[REDACTED_API_KEY]",
        "token": "[REDACTED_TOKEN]",
        "password": "[REDACTED_PASSWORD]",
        "secret": "[REDACTED_SECRET]",
        "private_key": "[REDACTED_PRIVATE_KEY]",
        "card": "[REDACTED_CARD]",
        "email": "[REDACTED_EMAIL]",
        "phone": "[REDACTED_PHONE]",
    }
)
"""Kind of finding -> the placeholder that replaces it."""

PII_KINDS: frozenset[str] = frozenset({"email", "phone"})
"""Kinds only detected with ``redact(text, pii=True)``."""


@dataclass(frozen=True)
class Finding:
    """One redacted span ``[start, end)`` of the *original* text; never holds the value itself."""

    kind: str
    start: int
    end: int


@dataclass(frozen=True)
class Redaction:
    """The redacted text and what was replaced in it."""

    text: str
    findings: tuple[Finding, ...] = ()

    @property
    def changed(self) -> bool:
        """True if anything was redacted."""
        return bool(self.findings)


# Detector ranks: when findings overlap they are merged and the lowest rank names the kind.
_RANK_PEM, _RANK_FORMAT, _RANK_CARD, _RANK_HEADER, _RANK_CUE, _RANK_EMAIL, _RANK_PHONE = range(7)

_Hit = tuple[int, int, str, int]  # start, end, kind, rank

_PLACEHOLDER_PREFIX = "[REDACTED_"
_MAX_PASSES = 4

# --- vendor formats ----------------------------------------------------------------------------

_VENDOR_KEY = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    r"(?P<sk>sk-[A-Za-z0-9_-]{20,})"  # OpenAI sk-/sk-proj-, Anthropic sk-ant-
    r"|(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}"  # AWS access key id
    r"|gh[pousr]_[A-Za-z0-9]{30,}"  # GitHub
    r"|github_pat_[A-Za-z0-9_]{30,}"
    r"|(?P<slack>xox[bpaors]-[A-Za-z0-9-]{10,}|xapp-[A-Za-z0-9-]{10,})"  # Slack
    r"|AIza[A-Za-z0-9_-]{35}"  # Google
    r"|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"  # Stripe secret / restricted
    r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab
    r"|hf_[A-Za-z0-9]{30,}"  # Hugging Face
    r"|npm_[A-Za-z0-9]{36}"  # npm
    r"|SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"  # SendGrid
    r")(?![A-Za-z0-9_-])"
)
_JWT = re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{2,}\.eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*")
_HEADER = re.compile(
    r"(?<![A-Za-z0-9])(?:"
    r"authorization[\"']?[ \t]{0,16}[:=][ \t]{0,16}[\"']?"
    r"(?:(?:bearer|basic|token|bot|digest)[ \t]{1,16})?"
    r"|bearer[ \t]{1,16})"
    r"(?P<val>[A-Za-z0-9._~+/=-]{8,})",
    re.IGNORECASE,
)
_URL_PASSWORD = re.compile(r"(?<=://)[^\s:/@]{1,256}:(?P<val>[^\s/@]{1,256})@")
_PEM_MARKER = re.compile(
    r"-----(?P<which>BEGIN|END) (?:[A-Z0-9]{1,16} ){0,4}PRIVATE KEY(?: BLOCK)?-----"
)
_CARD = re.compile(
    r"(?<![A-Za-z0-9_])(?<![0-9][ -])[2-6](?:[ -]?[0-9]){12,18}(?![ -]?[0-9])(?![A-Za-z_])"
)

# --- cues ("my password is …", "token: …") ------------------------------------------------------

# A bare value ends at whitespace, "," or ";", or at "&name=" (the next URL query parameter). The
# patterns read at most 64 characters of it (so a rejected value costs little to rescan); an
# accepted value is then extended to its real end by _VALUE_TAIL.
_VALUE = (
    r"(?![\"'`]?\[REDACTED_)(?:[\"'`](?P<quoted>[^\"'`\n]{1,256})[\"'`]|(?P<bare>[^\s,;&]{1,64}))"
)
_VALUE_TAIL = re.compile(r"[^\s,;&]*(?:&(?![A-Za-z0-9_.-]{1,64}=)[^\s,;&]*)*")
_DIGITS_VALUE = r"[\"']?(?P<digits>[0-9]{3,12})(?![0-9])"  # pin, cvv
_BLOB_VALUE = r"[\"']?(?P<blob>[A-Za-z0-9+/_.~-]{16,1024}={0,2})(?![^\s,;&\"'`)\]}])"
_ASSIGN = r"[\"']?[ \t]{0,16}(?::=|=>|[:=])\s{0,16}"
_NATURAL = (  # " is ", " for my bank is ", " was: "
    r"\s{1,16}(?:(?:for|of|to|on)(?:\s{1,16}\S{1,64}){1,3}?\s{1,16})?"
    r"(?:is|was|will\s{1,4}be)(?:[ \t]{0,4}:)?\s{1,16}"
)
_CUE = re.compile(
    r"(?<![A-Za-z0-9])(?P<kw>"
    r"(?P<k_secret>secret[ _-]?(?:access[ _-]?)?key|secret|credentials?)"
    r"|(?P<k_api>api[ _-]?key|apikey|access[ _-]?key(?:[ _-]?id)?)"
    r"|(?P<k_private>private[ _-]?key)"
    r"|(?P<k_token>token)"
    r"|(?P<k_password>password|passwd|passphrase|passcode)"
    r"|(?P<k_digits>(?P<cvv>cvv2?|cvc2?)|pin(?:[ _-]?(?:code|number))?)"
    r"|(?P<k_short>pwd|pw|pass)"
    r"|(?P<k_generic>key|auth)"
    r")"
    # "pwd", "key", ... only before ":" or "="; everything else also before "is"
    rf"(?(k_short){_ASSIGN}|(?(k_generic){_ASSIGN}|(?:{_ASSIGN}|(?P<natural>{_NATURAL}))))"
    rf"(?(k_digits){_DIGITS_VALUE}|(?(k_generic){_BLOB_VALUE}|{_VALUE}))",
    re.IGNORECASE,
)
_SET_TO = re.compile(
    r"(?<![A-Za-z0-9])(?:set|change|changed|reset|update|updated)[ \t]{1,16}"
    r"(?:(?:my|the|your|our|his|her|their|a|new)[ \t]{1,16}){0,2}(?:[A-Za-z]{1,32}[ \t]{1,16})?"
    r"(?P<kw>(?P<k_password>password|passcode|passphrase)|(?P<k_digits>pin))[ \t]{1,16}to:?[ \t]{1,16}"
    rf"(?(k_digits){_DIGITS_VALUE}|{_VALUE})",
    re.IGNORECASE,
)
_CUE_KINDS: tuple[tuple[str, str], ...] = (
    ("k_secret", "secret"),
    ("k_api", "api_key"),
    ("k_private", "private_key"),
    ("k_token", "token"),
    ("k_password", "password"),
    ("k_digits", "password"),  # pin; cvv is "card"
    ("k_short", "password"),
    ("k_generic", "secret"),
)
_CUE_KIND = dict(_CUE_KINDS)

# Values that read as ordinary words ("the password is wrong", "password: required").
_STOPWORD_TEXT = """
    a an the this that these those it its it's i me my mine you your yours we our ours they their
    theirs he him his she her hers not no none null nil undefined n/a na tbd unknown empty blank
    same different default is was are were be been being am will would should could can must may
    might shall and or but if so then than also still just only even now already always never
    often too very really quite pretty probably definitely actually usually currently literally
    basically simply exactly obviously likely in on at to for from of by with without into onto
    under over about around after before since until up down out off here there where when what
    which who whom whose how why set reset changed updated required optional missing needed
    necessary wrong incorrect invalid correct valid right expired revoked disabled enabled active
    inactive weak strong long short secure insecure safe unsafe secret private public hidden
    visible shown written stored saved kept given taken stolen leaked compromised exposed broken
    known forgotten good bad great fine ok okay nice terrible awful cool simple easy hard complex
    complicated old new all any some one two both either neither each every more less most least
    something anything nothing everything someone somewhere somehow case-sensitive sensitive like
    as true false str int bool bytes string float self cls
"""
_STOPWORDS = frozenset(_STOPWORD_TEXT.split())
# Code that names a secret without holding it: os.environ["X"], getenv(...), $API_KEY, ${X}, <pwd>.
_CODE_REFERENCE = re.compile(
    r"(?:os\.environ|os\.getenv|getenv\(|process\.env|env\(|\{\{|%\()"
    r"|\$[A-Z_][A-Z0-9_]*$|\$\{[A-Za-z_][A-Za-z0-9_]*\}$|<[A-Za-z_ -]{1,40}>$"
)
_CALL = re.compile(r"[A-Za-z_][A-Za-z_.]*\([A-Za-z_]")
_PROSE_AFTER = re.compile(r"[ \t]{1,4}[a-z]{2,}")
_PARTICIPLE = re.compile(r"[a-z]{3,}(?:ed|ing)")  # "the key is expired", "... is working"
_MASK_CHARS = frozenset("*•●·")
_LEADING_PUNCT = "([{<\"'`"
_TRAILING_PUNCT = ".,;:?)]}>\"'`"
_DIGITS = re.compile(r"[0-9]+")
_HAS_DIGIT = re.compile(r"[0-9]")
_HAS_ALPHA = re.compile(r"[A-Za-z]")
_HAS_UPPER = re.compile(r"[A-Z]")
_HAS_LOWER = re.compile(r"[a-z]")
_HAS_SYMBOL = re.compile(r"[^A-Za-z0-9]")

# --- PII (opt-in) --------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,8}(?![\w-])"
)
_PHONE = re.compile(
    r"(?<![\w+.-])(?:"
    r"\+[0-9]{7,15}"
    r"|(?:(?:\+|00)[0-9]{1,3}[ .-]?)?(?:\([0-9]{1,4}\)[ .-]?)?[0-9]{2,4}(?:[ .-][0-9]{2,4}){1,4}"
    r")(?![\w+]|[.-][0-9])"
)
_IPV4_OR_DATE = re.compile(
    r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}|(?:19|20)[0-9]{2}[-./ ][0-9]{1,2}[-./ ][0-9]{1,2}\b.*"
)


# --- detectors -----------------------------------------------------------------------------------


def _vendor_hits(text: str) -> Iterator[_Hit]:
    for m in _VENDOR_KEY.finditer(text):
        if (m.group("sk") or m.group("slack")) and not _HAS_DIGIT.search(m.group()):
            continue  # "sk-learn-style-words" are not keys; real ones always hold digits
        yield m.start(), m.end(), "api_key", _RANK_FORMAT
    for m in _JWT.finditer(text):
        yield m.start(), m.end(), "token", _RANK_FORMAT


def _header_hits(text: str) -> Iterator[_Hit]:
    for m in _HEADER.finditer(text):
        start, end = m.span("val")
        end = _rstrip(text, start, end, ".,")
        value = text[start:end]
        if len(value) >= 16 or (len(value) >= 8 and _HAS_DIGIT.search(value)):
            yield start, end, "token", _RANK_HEADER
    for m in _URL_PASSWORD.finditer(text):
        start, end = m.span("val")
        if _secret_cues.is_cue_word(m.group("val")):
            continue  # "postgresql://user:password@host" is a template
        if not text.startswith(_PLACEHOLDER_PREFIX, start):
            yield start, end, "password", _RANK_HEADER


def _pem_hits(text: str) -> Iterator[_Hit]:
    begin: int | None = None
    for m in _PEM_MARKER.finditer(text):
        if m.group("which") == "BEGIN":
            if begin is None:
                begin = m.start()
        elif begin is not None:
            yield begin, m.end(), "private_key", _RANK_PEM
            begin = None
    if begin is not None:  # unterminated (truncated paste): everything after BEGIN is key material
        yield begin, len(text), "private_key", _RANK_PEM


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _card_hits(text: str) -> Iterator[_Hit]:
    for m in _CARD.finditer(text):
        if _luhn_ok("".join(_DIGITS.findall(m.group()))):
            yield m.start(), m.end(), "card", _RANK_CARD


def _rstrip(text: str, start: int, end: int, chars: str) -> int:
    while end > start and text[end - 1] in chars:
        end -= 1
    return end


def _credential_like(value: str) -> bool:
    """A token/secret value: letters and digits mixed, or long and not a plain word."""
    if len(value) < 6 or any(ch.isspace() for ch in value):
        return False
    has_digit = bool(_HAS_DIGIT.search(value))
    if has_digit and _HAS_ALPHA.search(value):
        return True
    if len(value) < 16:
        return False
    mixed_case = bool(_HAS_UPPER.search(value) and _HAS_LOWER.search(value))
    return has_digit or mixed_case or bool(_HAS_SYMBOL.search(value))


def _high_entropy(value: str) -> bool:
    """A generic ``key: …`` value: 16+ characters, letters and digits, 3+ bits per character."""
    if len(value) < 16 or not (_HAS_DIGIT.search(value) and _HAS_ALPHA.search(value)):
        return False
    n = len(value)
    entropy = -sum(c / n * math.log2(c / n) for c in Counter(value).values())
    return entropy >= 3.0


def _accept(group: str, value: str, natural: bool, keyword: str) -> bool:
    core = value.rstrip("!")
    if not core or core.lower() in _STOPWORDS or set(core) <= _MASK_CHARS:
        return False
    if _CODE_REFERENCE.match(core) or _CALL.match(core):  # "Column(String": code, no value
        return False
    if _PARTICIPLE.fullmatch(core):  # "the key is expired", "password: hashed"
        return False
    if natural and core.isdigit() and len(core) <= 2:  # "the password is 8 characters long"
        return False
    if group in ("k_token", "k_secret"):
        return _credential_like(core)
    if _secret_cues.is_cue_word(core):  # "user=user&password=password"
        return False
    if group == "k_short" and keyword.lower() == "pass":  # "Monthly pass: $100", "the pass: ..."
        return _secret_cues.shaped(core)
    return True


def _trim(text: str, start: int, end: int, quoted: bool) -> tuple[int, int] | None:
    """Cut a value at a placeholder and strip the punctuation around a bare one."""
    cut = text.find(_PLACEHOLDER_PREFIX, start, end)
    if cut >= 0:  # already redacted (idempotence): keep only what precedes the placeholder
        end = cut
    if not quoted:
        while start < end and text[start] in _LEADING_PUNCT:
            start += 1
        end = _rstrip(text, start, end, _TRAILING_PUNCT)
    return (start, end) if end > start else None


def _cue_value_span(
    text: str, m: re.Match[str], group: str, natural: bool
) -> tuple[int, int] | None:
    """The span of the secret value after a cue, or None if there is none."""
    if group == "k_digits":
        start, end = m.span("digits")
        is_cvv = m.re is _CUE and m.group("cvv") is not None
        return None if is_cvv and end - start > 4 else (start, end)
    if group == "k_generic":
        start, end = m.span("blob")
        span = _trim(text, start, end, quoted=False)
        return span if span is not None and _high_entropy(text[span[0] : span[1]]) else None
    quoted = m.group("quoted") is not None
    start, end = m.span("quoted" if quoted else "bare")
    span = _trim(text, start, end, quoted)
    if span is None or not _accept(group, text[span[0] : span[1]], natural, m.group("kw")):
        return None
    if (
        group == "k_short"
        and text[span[0] : span[1]].isalpha()
        and text[span[0] : span[1]].istitle()
        and _PROSE_AFTER.match(text, span[1])
    ):
        return None  # "pwd: Shows the current directory" describes a command
    tail = None if quoted else _VALUE_TAIL.match(text, end)
    if tail is not None:  # the pattern read at most 64 characters: extend to the value's end
        span = _trim(text, start, tail.end(), quoted)
    return span


def _scan_cues(text: str, pattern: re.Pattern[str], natural_form: bool) -> Iterator[_Hit]:
    pos = 0
    while True:
        m = pattern.search(text, pos)
        if m is None:
            return
        groups = m.groupdict()
        group = next(g for g, _ in _CUE_KINDS if groups.get(g) is not None)
        natural = natural_form or groups.get("natural") is not None
        span = _cue_value_span(text, m, group, natural)
        if span is not None:
            kind = "card" if groups.get("cvv") is not None else _CUE_KIND[group]
            yield span[0], span[1], kind, _RANK_CUE
            pos = span[1]
        else:  # rescan after the label: the rejected value may itself hold a cue
            pos = m.end("kw")


def _cue_hits(text: str) -> Iterator[_Hit]:
    yield from _scan_cues(text, _CUE, natural_form=False)
    yield from _scan_cues(text, _SET_TO, natural_form=True)


def _pii_hits(text: str) -> Iterator[_Hit]:
    for m in _EMAIL.finditer(text):
        tld = m.group().rsplit(".", 1)[1]
        if len(tld) >= 2 and tld.isalpha():
            yield m.start(), m.end(), "email", _RANK_EMAIL
    for m in _PHONE.finditer(text):
        number = m.group()
        digits = sum(map(len, _DIGITS.findall(number)))
        low = 7 if number.startswith("+") else 9
        if low <= digits <= 15 and not _IPV4_OR_DATE.fullmatch(number):
            yield m.start(), m.end(), "phone", _RANK_PHONE


_DETECTORS = (_pem_hits, _vendor_hits, _card_hits, _header_hits, _cue_hits)

# Merging findings across passes (and of plugged-in detectors): the most specific kind names them.
_KIND_RANK: Mapping[str, int] = MappingProxyType(
    {
        "private_key": _RANK_PEM,
        "api_key": _RANK_FORMAT,
        "token": _RANK_FORMAT,
        "card": _RANK_CARD,
        "password": _RANK_CUE,
        "secret": _RANK_CUE,
        "email": _RANK_EMAIL,
        "phone": _RANK_PHONE,
    }
)
_KIND_NAME = re.compile(r"[a-z][a-z0-9_]{0,31}")


def _merge(hits: list[_Hit]) -> list[Finding]:
    """Merge overlapping hits into one finding named by the best-ranked (then longest) hit."""
    hits.sort(key=lambda h: (h[0], h[3]))
    findings: list[Finding] = []
    group_start, group_end, best = hits[0][0], hits[0][1], hits[0]
    for hit in hits[1:]:
        if hit[0] < group_end:
            group_end = max(group_end, hit[1])
            if (hit[3], hit[0] - hit[1]) < (best[3], best[0] - best[1]):
                best = hit
            continue
        findings.append(Finding(best[2], group_start, group_end))
        group_start, group_end, best = hit[0], hit[1], hit
    findings.append(Finding(best[2], group_start, group_end))
    return findings


def _detect(
    text: str, pii: bool, context: _secret_cues.Context | None, previous: str | None
) -> list[_Hit]:
    hits = [hit for detector in _DETECTORS for hit in detector(text)]
    worded = list(_secret_cues.cue_hits(text, previous))
    if context is not None:
        worded.extend(_secret_cues.previous_hits(text, context))
    # A value found only from the words around it is never a generic stand-in ("key: value").
    hits.extend((s, e, k, _RANK_CUE) for s, e, k in worded if text[s:e].lower() not in _STAND_INS)
    if pii:
        hits.extend(_pii_hits(text))
    return hits


_STAND_INS = frozenset(
    "value values example sample placeholder string text foo bar baz qux xxx xxxx yyy "  # noqa: SIM905
    "none null nil empty something anything whatever todo tbd".split()
)


@runtime_checkable
class SecretDetector(Protocol):
    """Finds secrets in one message; plugged into :func:`redact` (and the memory's config)."""

    def find(
        self, text: str, *, previous: str | None = None, pii: bool = False
    ) -> Sequence[Finding]:
        """The secrets in ``text`` as spans of it.

        Args:
            text: the message.
            previous: the previous message of the same session, if any (a question there can
                make a bare reply a secret).
            pii: also find emails and phone numbers.

        Returns:
            Findings of ``text`` (any order, may overlap); a finding's kind names its placeholder
            (``[REDACTED_<KIND>]``). To keep ``redact`` idempotent a detector must never report a
            span inside a ``[REDACTED_…]`` placeholder.
        """
        ...


class DefaultSecretDetector:
    """The built-in detector: vendor formats, cards, PEM blocks, headers, URL credentials, and
    secrets stated in words in seven languages (cues, value shapes, nearby high-entropy tokens and
    the previous message); with ``pii``, emails and phones."""

    def find(self, text: str, *, previous: str | None = None, pii: bool = False) -> list[Finding]:
        """See :meth:`SecretDetector.find`; the findings are merged, ordered and disjoint."""
        key = _findings_key(text, previous, pii)
        with _cache_lock:
            cached = _findings_cache.get(key)
            if cached is not None:
                _findings_cache.move_to_end(key)
                return list(cached)
        found = _find(text, previous, pii)
        with _cache_lock:
            _findings_cache[key] = found
            if len(_findings_cache) > _CACHE_ENTRIES:
                _findings_cache.popitem(last=False)
        return list(found)


#: Findings of this many (text, previous, pii) inputs are kept, by a 128-bit digest (~150 bytes
#: an entry, never the text): a message is read when it is stored and again when Tier 3 indexes
#: it, which a bulk import does after storing up to 100k messages.
_CACHE_ENTRIES = 131_072
_findings_cache: OrderedDict[bytes, tuple[Finding, ...]] = OrderedDict()
_cache_lock = threading.Lock()


def _findings_key(text: str, previous: str | None, pii: bool) -> bytes:
    digest = hashlib.blake2b(digest_size=16)
    digest.update(b"p" if pii else b"-")
    if previous is not None:
        digest.update(f"{len(previous)}:".encode())
        digest.update(previous.encode("utf-8", "surrogatepass"))
    digest.update(b"\x00")
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.digest()


def _find(text: str, previous: str | None, pii: bool) -> tuple[Finding, ...]:
    # a long message is no reply: the previous message's context cannot change its findings
    context = _context(previous) if _secret_cues.may_be_reply(text) else None
    hits = _detect(text, pii, context, previous)
    return tuple(_merge(hits)) if hits else ()


class ChainedSecretDetector:
    """Runs several detectors and reports all their findings (e.g. the default plus your own)."""

    def __init__(self, *detectors: SecretDetector) -> None:
        if not detectors:
            raise ConfigError("ChainedSecretDetector needs at least one detector")
        for detector in detectors:
            if not isinstance(detector, SecretDetector):
                raise ConfigError(
                    f"ChainedSecretDetector: {detector!r} has no find(text, *, previous, pii)"
                )
        self.detectors = detectors

    def find(self, text: str, *, previous: str | None = None, pii: bool = False) -> list[Finding]:
        """Every finding of every detector, in detector order."""
        return [
            finding
            for detector in self.detectors
            for finding in detector.find(text, previous=previous, pii=pii)
        ]


DEFAULT_DETECTOR: SecretDetector = DefaultSecretDetector()
"""The detector :func:`redact` uses unless given another one."""


def _context(previous: str | None) -> _secret_cues.Context | None:
    if not previous:
        return None
    had_secret = bool(_detect(previous, False, None, None))
    return _secret_cues.context_of(previous, had_secret)


def _placeholder(kind: str) -> str:
    return PLACEHOLDERS.get(kind) or f"[REDACTED_{kind.upper()}]"


def _checked_hits(
    detector: SecretDetector, text: str, previous: str | None, pii: bool
) -> list[_Hit]:
    hits: list[_Hit] = []
    for finding in detector.find(text, previous=previous, pii=pii):
        if not isinstance(finding, Finding):
            raise ConfigError(f"secret detector {detector!r} returned {finding!r}, not a Finding")
        if not (0 <= finding.start < finding.end <= len(text)):
            raise ConfigError(
                f"secret detector {detector!r} returned the span [{finding.start}, {finding.end})"
                f" outside a text of {len(text)} characters"
            )
        if not isinstance(finding.kind, str) or not _KIND_NAME.fullmatch(finding.kind):
            raise ConfigError(
                f"secret detector {detector!r} returned the kind {finding.kind!r}: expected "
                "lower-case letters, digits and '_' (e.g. 'password')"
            )
        hits.append((finding.start, finding.end, finding.kind, _KIND_RANK.get(finding.kind, 3)))
    return hits


class _Applied:
    """``text`` with findings replaced, and a map from its positions back to the original."""

    def __init__(self, original: str, findings: list[Finding]) -> None:
        parts: list[str] = []
        # segments: (start in output, start in original, end in original, is placeholder)
        self.segments: list[tuple[int, int, int, bool]] = []
        out = pos = 0
        for f in findings:
            self.segments.append((out, pos, f.start, False))
            parts.append(original[pos : f.start])
            out += f.start - pos
            placeholder = _placeholder(f.kind)
            self.segments.append((out, f.start, f.end, True))
            parts.append(placeholder)
            out += len(placeholder)
            pos = f.end
        self.segments.append((out, pos, len(original), False))
        parts.append(original[pos:])
        self.text = "".join(parts)
        self._starts = [seg[0] for seg in self.segments]

    def to_original(self, hit: _Hit) -> _Hit:
        """Map a hit in ``self.text`` to the original; a placeholder it touches counts whole."""
        start, end, kind, rank = hit
        out, orig, orig_end, is_placeholder = self.segments[bisect_right(self._starts, start) - 1]
        new_start = orig if is_placeholder else orig + start - out
        out, orig, orig_end, is_placeholder = self.segments[bisect_right(self._starts, end - 1) - 1]
        new_end = orig_end if is_placeholder else orig + end - out
        return new_start, new_end, kind, rank


def redact(
    text: str,
    *,
    pii: bool = False,
    previous: str | None = None,
    detector: SecretDetector | None = None,
) -> Redaction:
    """Replace every secret in ``text`` (and emails/phones if ``pii``) by its placeholder.

    Args:
        text: the message to redact.
        pii: also redact emails and phone numbers.
        previous: the previous message of the same session ("What's your password?" makes the
            bare reply "hunter2" a secret; the first half of a key makes the second one).
        detector: what finds the secrets (default :data:`DEFAULT_DETECTOR`).

    Returns:
        The redacted text and the findings (spans of ``text``).

    Raises:
        ConfigError: the detector returned something that is not a valid finding of ``text``.

    The detector runs again on the redacted text until it finds nothing more (a secret can hide
    another one, e.g. a key glued to a card number), so ``redact`` is idempotent.
    """
    detector = DEFAULT_DETECTOR if detector is None else detector
    hits = _checked_hits(detector, text, previous, pii)
    if not hits:
        return Redaction(text)
    findings = _merge(hits)
    applied = _Applied(text, findings)
    for _ in range(_MAX_PASSES - 1):
        more = _checked_hits(detector, applied.text, previous, pii)
        if not more:
            break
        hits.extend(applied.to_original(hit) for hit in more)
        findings = _merge(hits)
        applied = _Applied(text, findings)
    return Redaction(applied.text, tuple(findings))


def contains_secret(
    text: str,
    *,
    pii: bool = False,
    previous: str | None = None,
    detector: SecretDetector | None = None,
) -> bool:
    """True if ``redact(text, ...)`` with the same arguments would change anything."""
    return redact(text, pii=pii, previous=previous, detector=detector).changed
