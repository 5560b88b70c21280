"""Secrets stated in words: multilingual cue lexicons, the value shapes that follow them, context.

The part of :mod:`tiered_memory.redact` that reads language rather than formats. A *cue* is a word
that announces a secret (password, Passwort, contraseña, mot de passe, PIN, alarm code, security
question, API key, ...; English, German, Spanish, French, Italian, Portuguese and Dutch). Around a
cue five readers look for the value:

- after it: ``<cue> [for my bank] is|:|lautet|es|est|è|é|... [just] <value>`` (and ``<cue>?
  It's <value>``, ``changed <cue> to <value>``);
- before it: ``use <value> as my <cue>``, ``<value> is my <cue>``;
- a login pair: ``login admin / <value>``;
- near it: a high-entropy token (or, after a PIN/code cue, a 4-8 digit number) in the same
  sentence, a few words away;
- in the previous message: a cue there (``What's your password?``) or a secret there (the first
  half of a key) makes a short reply, or a credential-shaped token in the reply, the value.

What a value may be depends on the cue: after a password word or a security question any word
that is not a function word or a word about the password ("wrong", "falsch", "trop court"); after
a weak cue (key, code, secret, token, clave, clé, Schlüssel) only a credential shape (letters and
digits, symbols, inner capitals) or, for codes, digits.

Every pattern has bounded repetitions and is matched at a cue (found by one linear scan) or
anchored, so the cost stays linear in the length of the text.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = [
    "PLACEHOLDER_PREFIX",
    "STOPWORDS",
    "Context",
    "context_of",
    "cue_hits",
    "may_be_reply",
    "previous_hits",
]

PLACEHOLDER_PREFIX = "[REDACTED_"
_PLACEHOLDER_BODY = "REDACTED_"  # what is left of a placeholder once its "[" is stripped

Hit = tuple[int, int, str]  # start, end, kind


def _phrase(text: str) -> str:
    out: list[str] = []
    for ch in text:
        if ch == " ":
            out.append(r"[ \t_-]{1,3}")
        elif ch == "-":
            out.append(r"[ \t_-]{0,3}")
        elif ch in "'’":
            out.append(r"['’]")
        else:
            out.append(re.escape(ch))
    return "".join(out)


def _alt(words: str) -> str:
    """A regex alternation of ``|``-separated phrases, longest first."""
    phrases = sorted({w.strip() for w in words.split("|") if w.strip()}, key=len, reverse=True)
    return "|".join(_phrase(p) for p in phrases)


# --- lexicons ------------------------------------------------------------------------------------

# Cue classes, in the order they are tried (a longer, more specific cue first).
_SECURITY = """
    security question|security questions|security q|security answer|security answers|secret question|
    secret answer|memorable word|memorable information|memorable answer|recovery question|
    verification question|challenge question|challenge answer|mother's maiden name|
    mothers maiden name|mom's maiden name|mum's maiden name|maiden name|
    sicherheitsfrage|sicherheitsantwort|geheimfrage|geheime frage|mädchenname|maedchenname|
    geburtsname meiner mutter|geburtsname der mutter|
    pregunta de seguridad|respuesta de seguridad|pregunta secreta|respuesta secreta|
    apellido de soltera|
    question secrète|question secrete|question de sécurité|question de securite|réponse secrète|
    reponse secrete|réponse de sécurité|nom de jeune fille|
    domanda di sicurezza|risposta di sicurezza|domanda segreta|risposta segreta|
    cognome da nubile|nome da nubile|
    pergunta de segurança|pergunta de seguranca|resposta de segurança|resposta de seguranca|
    pergunta secreta|resposta secreta|nome de solteira|
    beveiligingsvraag|beveiligingsantwoord|geheime vraag|geheim antwoord|meisjesnaam
"""
# Only a cue when a security word is near (in the message or the previous one).
_SECURITY_CONTEXT = """
    first pet|first pet's name|first pets name|name of my first pet|first car|first school|
    childhood nickname|childhood friend|favourite teacher|favorite teacher|birth city|
    city i was born in|street i grew up on|erstes haustier|ersten haustiers|erstes auto|
    primera mascota|primer coche|primer colegio|premier animal|premier animal de compagnie|
    première voiture|primo animale|primo animale domestico|prima auto|primeiro animal|
    primeiro animal de estimação|primeiro carro|eerste huisdier|eerste auto
"""
_SECURITY_WORD = re.compile(
    r"(?<![^\W\d_])(?:security|secret|verification|recovery|memorable|sicherheit|geheim|"
    r"seguridad|secreta|sécurité|securite|secrète|sicurezza|segreta|segurança|seguranca|"
    r"beveiliging|geheime)",
    re.IGNORECASE,
)
_DIGIT_CUES = """
    pin|pins|pin code|pin number|nip|número secreto|numero secreto|código secreto|pin-nummer|pincode|pin-code|geheimzahl|código pin|codigo pin|
    code pin|codice pin|número pin|numero pin|alarm code|alarm pin|alarm system code|
    security code|door code|front door code|gate code|entry code|access code|garage code|
    garage door code|lock code|lockbox code|key safe code|safe code|keypad code|unlock code|
    building code|verification code|otp|one-time code|one time code|2fa code|combination|combo|
    alarmcode|alarm-code|türcode|tuercode|torcode|zugangscode|sicherheitscode|tresorcode|
    haustürcode|code der alarmanlage|code für die alarmanlage|zahlenkombination|kombination|
    zahlencode|código de la alarma|código de alarma|código del alarma|codigo de la alarma|
    código de acceso|codigo de acceso|código de la puerta|código del portal|código de seguridad|
    combinación|combinacion|clave de la alarma|code de l'alarme|code d'alarme|code alarme|
    digicode|code d'accès|code d'acces|code de la porte|code du portail|code de sécurité|
    combinaison|codice dell'allarme|codice allarme|codice d'allarme|codice d'accesso|
    codice di accesso|codice della porta|codice del cancello|codice di sicurezza|combinazione|
    código do alarme|código de alarme|codigo do alarme|código de acesso|código da porta|
    código do portão|código de segurança|combinação|combinacao|toegangscode|deurcode|
    beveiligingscode|cijfercode|poortcode|combinatie
"""
_API_CUES = """
    api key|api keys|apikey|api token|api secret|api-schlüssel|api schlüssel|api-schluessel|
    clave api|clave de api|clave de la api|llave api|clé api|clé d'api|cle api|clé de l'api|
    chiave api|chiave dell'api|chave da api|chave de api|chave api|api-sleutel|api sleutel|
    access key|access key id|secret access key|client secret|client id secret
"""
_PRIVATE_CUES = (
    "private key|privater schlüssel|clave privada|clé privée|chiave privata|chave privada"
)
_TOKEN_CUES = """
    token|tokens|access token|auth token|bearer token|refresh token|session token|
    zugangstoken|jeton|jeton d'accès|gettone
"""
# A secret of several words: the value runs to the end of the clause.
_PHRASE_CUES = """
    passphrase|pass phrase|seed phrase|recovery phrase|mnemonic phrase|secret phrase|
    wallet phrase|seed words|recovery words|frase de contraseña|frase semilla|
    frase de recuperación|phrase secrète|phrase de passe|phrase de récupération|frase segreta|
    frase di recupero|frase-senha|frase de recuperação|wachtzin|herstelzin|
    wiederherstellungsphrase|merksatz
"""
_PASSWORD_CUES = """
    password|passwords|passwd|passcode|pass code|pwd|pw|pword|
    passwort|passwörter|passwoerter|kennwort|kennwörter|losungswort|
    contraseña|contrasena|contraseñas|clave de acceso|clave secreta|
    mot de passe|mots de passe|mdp|
    parola d'ordine|parola segreta|
    senha|senhas|palavra-passe|palavra passe|
    wachtwoord|wachtwoorden|paswoord
"""
# German and Dutch glue compounds: "Bankpasswort", "WLAN-Passwort", "routerwachtwoord".
_COMPOUND_STEMS = "passwort|kennwort|wachtwoord|pincode|geheimzahl|alarmcode|zugangscode"
_WEAK_PASSWORD_CUES = "pass|wifi|wi-fi|wlan|network key|netzwerkschlüssel"
# "clave", "clé", "Schlüssel" are also everyday words for a password: a made-up value is enough.
_MEDIUM_SECRET_CUES = "schlüssel|schluessel|clave|llave|clé|cle|chiave|chave|sleutel"
_SECRET_CUES = """
    secret|secrets|secret key|key|keys|credentials|geheimnis|secreto|segreto|segredo|geheim|
    credenciales|credenziali|credenciais|zugangsdaten
"""
_CODE_CUES = "code|codes|código|codigo|codice|kode"
# A secret given in pieces ("first half: ...", "the rest: ...").
_PART_CUES = """
    first part|second part|third part|last part|first half|second half|part one|part two|
    part 1|part 2|the rest|rest of it|remainder|erster teil|zweiter teil|erste hälfte|
    zweite hälfte|der rest|teil 1|teil 2|primera parte|segunda parte|primera mitad|
    segunda mitad|el resto|première partie|deuxième partie|seconde partie|la suite|le reste|
    prima parte|seconda parte|il resto|primeira parte|segunda parte|o resto|eerste deel|
    tweede deel|de rest
"""
# Context words: a 4-8 digit number near them is a code ("punch in 8842 on the keypad").
_ALARM_CONTEXT = """
    alarm|alarm system|keypad|disarm|arm the alarm|alarmanlage|entschärfen|alarma|desarmar|
    desactivar la alarma|alarme|désarmer|desarmer|allarme|disattivare|disinserire|
    desativar|desarmar|uitschakelen|inbraakalarm
"""

_CLASSES = (
    ("security", _SECURITY, "secret"),
    ("security_ctx", _SECURITY_CONTEXT, "secret"),
    ("digit", _DIGIT_CUES, "password"),
    ("api", _API_CUES, "api_key"),
    ("private", _PRIVATE_CUES, "private_key"),
    ("token", _TOKEN_CUES, "token"),
    ("phrase", _PHRASE_CUES, "password"),
    ("password", _PASSWORD_CUES, "password"),
    ("weak_password", _WEAK_PASSWORD_CUES, "password"),
    ("medium_secret", _MEDIUM_SECRET_CUES, "secret"),
    ("secret", _SECRET_CUES, "secret"),
    ("code", _CODE_CUES, "password"),
    ("part", _PART_CUES, "secret"),
    ("alarm", _ALARM_CONTEXT, "password"),
)
_KIND = {name: kind for name, _, kind in _CLASSES}
# What a value after a cue of each class must look like: "word" any word that is not a function
# word, "shaped" made up (letters and digits, symbols, inner capitals), "token" high-entropy.
_TIER = {
    "security": "word",
    "security_ctx": "word",
    "password": "word",
    "phrase": "word",
    "api": "shaped",
    "private": "shaped",
    "weak_password": "shaped",
    "medium_secret": "shaped",
    "token": "token",
    "secret": "token",
    "part": "token",
}
_PLURAL_CUES = frozenset(
    [
        "passwords",
        "passwörter",
        "passwoerter",
        "kennwörter",
        "contraseñas",
        "senhas",
        "wachtwoorden",
        "pins",
        "codes",
        "keys",
        "tokens",
        "secrets",
    ]
)

_WORD_START = r"(?:(?<![^\W\d_])|(?-i:(?<=[a-z])(?=[A-Z])))"
_WORD_END = r"(?![^\W\d_])"
_CUE = re.compile(
    _WORD_START
    + "(?:"
    + rf"(?P<compound>[^\W\d_]{{1,20}}(?:{_alt(_COMPOUND_STEMS)}))|"
    + "|".join(f"(?P<{name}>{_alt(words)})" for name, words, _ in _CLASSES)
    + ")"
    + _WORD_END,
    re.IGNORECASE,
)
_COMPOUND_CLASS = {"passwort": "password", "kennwort": "password", "wachtwoord": "password"}

# Words next to "code" that make it something else than a secret ("dress code", "código postal").
_NOT_SECRET_CODE_WORDS = frozenset(
    [
        "zip",
        "postal",
        "post",
        "postale",
        "area",
        "country",
        "dress",
        "source",
        "promo",
        "promotional",
        "discount",
        "coupon",
        "voucher",
        "qr",
        "bar",
        "morse",
        "error",
        "status",
        "tax",
        "iso",
        "colour",
        "color",
        "genetic",
        "style",
        "time",
        "region",
        "language",
        "referral",
        "invite",
        "invitation",
        "gift",
        "booking",
        "reference",
        "tracking",
        "confirmation",
        "postleitzahl",
        "cap",
        "civil",
        "penal",
        "of",
        "conduct",
        "name",
        "names",
        "review",
        "reviews",
        "base",
        "editor",
        "snippet",
    ]
)
# Nouns that make "password X" a thing about passwords ("password manager is Bitwarden").
_COMPOUND_NOUNS = frozenset(
    [
        "manager",
        "managers",
        "generator",
        "generators",
        "field",
        "fields",
        "reset",
        "resets",
        "policy",
        "policies",
        "hint",
        "hints",
        "strength",
        "requirement",
        "requirements",
        "change",
        "changes",
        "recovery",
        "vault",
        "app",
        "apps",
        "file",
        "files",
        "list",
        "entry",
        "prompt",
        "screen",
        "box",
        "form",
        "rule",
        "rules",
        "length",
        "expiry",
        "expiration",
        "security",
        "protection",
        "storage",
        "keeper",
        "complexity",
        "history",
        "leak",
        "leaks",
        "breach",
        "database",
        "hash",
        "hashes",
        "page",
        "link",
        "email",
        "reminder",
        "reminders",
        "tool",
        "tools",
        "system",
        "systems",
        "protected",
        "format",
        "pattern",
        "patterns",
        "gestor",
        "gestionnaire",
        "generador",
        "générateur",
        "generatore",
        "gerenciador",
        "beheerder",
        "änderung",
        "richtlinie",
        "política",
        "politique",
        "requisitos",
        "exigences",
        "requisiti",
        "regels",
        "manager-app",
    ]
)

_COPULA_WORDS = frozenset(
    [
        "is",
        "was",
        "are",
        "were",
        "be",
        "ist",
        "war",
        "sind",
        "es",
        "era",
        "son",
        "est",
        "sont",
        "è",
        "é",
        "sono",
        "são",
        "wordt",
        "zijn",
        "lautet",
    ]
)
_CONJUNCTIONS = frozenset(
    ["and", "or", "but", "und", "oder", "aber", "y", "pero", "et", "ou", "mais", "e", "mas", "maar"]
)

# --- what joins a cue to its value ---------------------------------------------------------------

_COPULAS = _alt(
    """
    is|was|are|were|will be|would be|should be|has become|has been|is now|remains|reads|equals|
    is set to|was set to|has been set to|is changed to|was changed to|has been changed to|
    got changed to|was reset to|has been reset to|was updated to|has been updated to|
    is still|was still|which is|which was|that is|das ist|der ist|die ist|welches ist|que es|
    qui est|che è|que é|die is|dat is|wurde geändert auf|wurde geändert in|fue cambiada a|se cambió a|
    a été changé en|a été changé pour|è stata cambiata in|foi alterada para|
    is veranderd in|is veranderd naar|
    became|ist|war|lautet|lautete|heißt|heisst|wird|bleibt|sind|waren|es|era|fue|será|sera|
    sigue siendo|son|queda|est|était|etait|reste|c'est|è|e'|é|sarà|resta|rimane|sono|fica|são|
    continua a ser|continua sendo|wordt|luidt|blijft|werd|zijn|bleef
    """
)
_PRONOUNS = _alt(
    """
    oh it's|oh its|ah it's|well it's|um it's|uh it's|hmm it's|ach das ist|pues es|bueno es|
    eh bien c'est|euh c'est|beh è|bom é|nou het is|oh c'est|oh é|oh es|
    it's|its|it is|that's|that is|es ist|ist es|das ist|es|eso es|c'est|ça c'est|è|é|het is|
    dat is|'t is|is"""
)
_INTERJECTIONS = _alt("oh|ah|um|uh|well|hmm|so|ach|na|pues|bueno|eh|euh|bah|beh|bom|nou|ok|okay")
_TO = _alt("to|into|auf|zu|in|a|por|en|à|pour|con|para|naar|op")
_SAID = _alt(
    """
    i put|i used|i use|i chose|i picked|i wrote|i typed|i entered|i gave|i said|i set|
    i always use|ich habe|habe ich|nehme ich|verwende ich|benutze ich|ich nehme|ich verwende|
    puse|usé|uso|utilizo|j'ai mis|j'ai choisi|j'utilise|ho messo|ho scelto|uso|coloquei|escolhi|
    eu uso|uso sempre|ik heb|ik gebruik|gebruik ik"""
)
_FILLERS = _alt(
    """
    just|simply|now|still|only|currently|actually|basically|sadly|unfortunately|always|
    jetzt|nun|einfach|noch|immer noch|nur|leider|immer|ahora|todavía|todavia|aún|aun|sólo|solo|
    simplemente|siempre|juste|maintenant|toujours|encore|seulement|simplement|adesso|ora|
    ancora|semplicemente|sempre|agora|ainda|só|apenas|simplesmente|nu|nog|gewoon|alleen|
    nog steeds|altijd|übrigens|uebrigens|eigentlich|btw|fyi|by the way|honestly|probably|
    por cierto|en realidad|en fait|d'ailleurs|du coup|cioè|in realtà|aliás|na verdade|trouwens|
    eigenlijk"""
)
_FILLER_WORD = re.compile(f"(?:{_FILLERS})", re.IGNORECASE)
_ARTICLES = _alt("the|le|la|l'|el|il|lo|o|a|der|die|das|de|het|un|une|uno|una|um|uma|een|ein|eine")
_QUALIFIER_START = _alt(
    """
    for|of|to|on|at|from|in|für|fuer|vom|von|zum|zur|der|des|meiner|meines|deiner|unserer|
    seiner|ihrer|de|del|dela|de la|du|des|pour|di|della|dell'|dello|do|da|dos|das|van|voor|
    bei|em|no|na|al|alla|al"""
)
_AFTER_CUE = re.compile(
    r"[\"'’”»)\]]?"  # "For 'mother's maiden name' I put ..."
    r"(?:[ \t]{1,4}\([^()\n]{1,40}\))?"  # "the password (case sensitive) is ..."
    # "for my bank", "we agreed on", "Netflix", "nova": a few words before the joining word
    r"(?P<qual>(?:[ \t]{1,4}[^\s:=?!.,;\"()]{1,30}){1,7}?"
    rf"(?=[ \t]{{0,2}},?(?:[ \t]{{1,4}}(?:{_FILLERS}){_WORD_END})?[ \t]{{1,4}}(?:{_COPULAS})"
    rf"{_WORD_END}|[ \t]{{0,4}}(?:[:=]|->|→|=>)))?"
    r"(?:"
    r"(?P<assign>[\"'`]?[ \t]{0,4}(?::=|=>|->|→|[:=—–]))"
    rf"|[ \t]{{0,2}},?(?:[ \t]{{1,4}}(?:{_FILLERS}){_WORD_END})?"
    rf"[ \t]{{1,4}}(?P<natural>{_COPULAS}){_WORD_END}(?:[ \t]{{0,4}}:)?"
    r"(?:[ \t]{0,2},[^,\n]{1,30},)?"  # "es, por si acaso, Olivo22"
    rf"|(?P<possessive>['’]s){_WORD_END}"
    rf"|[ \t]{{0,4}}(?P<ask>\?|\.\.\.|…)[ \t]{{0,4}}(?:(?:{_INTERJECTIONS}),?[ \t]{{1,4}})?"
    rf"(?:(?P<pronoun>{_PRONOUNS}){_WORD_END})?"
    rf"|[ \t]{{1,4}}(?P<to>{_TO}){_WORD_END}:?"
    rf"|[ \t]{{1,4}}(?P<said>{_SAID}){_WORD_END}:?"
    r"|(?P<none>[ \t]{1,4}#?)"
    r")"
    rf"(?:[ \t]{{1,4}}(?:{_FILLERS}){_WORD_END}){{0,2}}"
    rf"(?:[ \t]{{1,4}}(?P<art>{_ARTICLES})(?=[ \t]))?"
    r"\s{0,16}"
    r"(?![\"'`«„“‘]?\[REDACTED_)"
    r"(?:[\"'`«„“‘‚](?P<quoted>[^\"'`«»„“”‘’\n]{1,256})[\"'`»“”‘’]"
    r"|(?P<bare>[^\s,;]{1,128}))",
    re.IGNORECASE,
)
_CHANGE_VERB = re.compile(
    r"(?<![^\W\d_])(?:set|sets|change|changed|changing|reset|update|updated|make|made|switch|"
    r"switched|ändern|geändert|geaendert|ändere|änderte|setze|gesetzt|umgestellt|cambiar|cambié|"
    r"cambie|cambiado|cambiada|cambia|cambio|puse|poner|changer|changé|changée|modifié|modifier|"
    r"mis|mettre|cambiare|cambiato|cambiata|impostato|impostata|impostare|mudar|mudei|mudou|"
    r"alterei|alterar|alterado|alterada|troquei|veranderen|veranderd|gewijzigd|wijzigen|"
    r"ingesteld|aangepast)(?![^\W\d_])",
    re.IGNORECASE,
)
# "auf Regenwurm12 geändert": the participle after the value.
_CHANGED_AFTER = re.compile(
    r"[ \t]{1,4}(?:geändert|geaendert|gesetzt|umgestellt|gewijzigd|veranderd|ingesteld|"
    r"aangepast)(?![^\W\d_])",
    re.IGNORECASE,
)
_USE_VERB = re.compile(
    r"(?<![^\W\d_])(?:use|using|used|try|put|pick|picked|chose|choose|take|took|type|enter|"
    r"made|set|benutze|benutz|benutzen|verwende|verwenden|nimm|nehme|nutze|gib|usa|usá|use|usé|"
    r"utiliza|utilice|utilicé|pon|puse|elegí|escribe|utilise|utilisez|utilisé|mets|prends|"
    r"choisis|tape|uso|usato|usate|metti|scegli|inserisci|usei|coloque|escolhi|digite|gebruik|"
    r"gebruikt|neem|kies|typ|vul)(?![^\W\d_])[^.!?\n]{0,24}$",
    re.IGNORECASE,
)
_POSSESSIVES = _alt(
    """
    my|the|our|your|his|her|their|a|an|this|mein|meine|meinen|dein|deine|das|der|die|den|unser|
    unsere|ein|eine|mi|mis|tu|su|la|el|nuestra|nuestro|una|un|mon|ma|le|notre|votre|ton|ta|une|
    il|lo|mia|mio|tua|tuo|la mia|il mio|o|a|meu|minha|o meu|a minha|um|uma|mijn|het|de|ons|onze|
    je|jouw|een|new|old|current|main|default|neues|neue|neuen|neuer|nuevo|nueva|nouveau|nouvelle|
    nuovo|nuova|novo|nova|nieuw|nieuwe"""
)
_VALUE_FIRST = re.compile(
    r"(?<!\S)(?:[\"'`«„“‘](?P<quoted>[^\"'`«»„“”‘’\n]{1,128})[\"'`»“”‘’]|(?P<bare>[^\s\"'`«»“”,]{1,64}))"
    r"(?:[ \t]{1,4}(?P<as>as|als|como|comme|come|for|für|pour|para|per|voor|zum|zur)"
    r"|[ \t]{1,4}(?P<cop>is|was|ist|war|es|era|est|c'est|è|é|sera|será|sarà|wordt|will be|becomes|"
    r"bleibt)"
    r"|[ \t]{0,2}(?P<that>[,:–—-][ \t]{0,4}(?:that's|that is|this is|which is|das ist|es ist|"
    r"eso es|esa es|c'est|c’est|è|é|dat is|het is|questa è|essa é|isso é)))"
    rf"[ \t]{{1,4}}(?:(?:{_POSSESSIVES}){_WORD_END}[ \t]{{1,4}}"
    r"(?:[^\W\d_][\w'’-]{0,23}[ \t]{1,4}){0,2}?)?"
    rf"(?P<cue>{_CUE.pattern[len(_WORD_START) :]})"
    r"(?=[ \t]{0,4}(?:$|[\n.,;:!?)\]\"'»“”(]|(?:and|und|y|et|en|but|aber|pero|mais|ma|mas|"
    r"maar|please|bitte|por|s'il|per|for|für|pour|para|voor|from|on|now|at|bei|de|del|du|di|da|"
    r"do|van|ab|ahora|desde|dès|vanaf|too|also|auch|también|aussi|anche|também|ook|ok|okay|"
    r"thanks|danke|gracias|merci|grazie|obrigad[oa]|bedankt|then|dann|entonces|alors|allora|"
    r"então|dan|right|ja|ok)(?![^\W\d_])))",
    re.IGNORECASE,
)
_LOGIN = re.compile(
    _WORD_START + r"(?P<cue>(?P<strong>login|log-in|log in|logins|creds|credentials|"
    r"zugangsdaten|anmeldedaten|logindaten|login-daten|credenciales|identifiants|credenziali|"
    r"credenciais|inloggegevens|login details|login info)|user|username|user name|benutzer|"
    r"benutzername|nutzername|usuario|usuário|utilisateur|identifiant|utente|nome utente|"
    r"utilizador|gebruiker|gebruikersnaam|account|konto|cuenta|compte)"
    + _WORD_END
    + r"(?:[ \t]{1,4}(?:for|für|de|pour|per|para|voor|del|du|do|da)"
    r"(?:[ \t]{1,4}[^\s:=/|]{1,30}){1,3}?)?"
    r"(?:[ \t]{1,4}(?:is|are|sind|ist|son|sont|sono|são|zijn|es|est|è|é))?"
    r"[\"']?[ \t]{0,4}[:=]?[ \t]{0,4}"
    r"(?P<user>[\w.@+-]{1,64})(?:[ \t]{0,4}/[ \t]{0,4}|:)(?P<val>[^\s,;/]{4,128})(?![^\s,;])",
    re.IGNORECASE,
)
_PROSE = re.compile(r"[ \t]{1,4}[a-z]{2,}")
_WITH_CUE = re.compile(
    r"(?<![^\W\d_])(?:with|use|using|try|enter|type|mit|con|avec|com|met|usa|utiliza|utilise|"
    r"gebruik|benutze|verwende|nimm)(?:[ \t]{1,4}(?:the|my|your|this|das|dem|diesem|la|el|le|il|"
    r"o|de|het|mein|meinem|mijn|mon|ma|mi|mio|mia|meu|minha))?[ \t]{1,4}$",
    re.IGNORECASE,
)
_ANSWER = re.compile(
    r"(?<![^\W\d_])(?:answer|answers|antwort|respuesta|réponse|reponse|risposta|resposta|"
    r"antwoord|(?-i:A)(?=[ \t]{0,2}:))(?![^\W\d_])",
    re.IGNORECASE,
)
_SPACED_DIGITS = re.compile(r"(?:[ \t][0-9]{1,4}(?![^\s.,;!?])){1,5}")
_CLAUSE_REST = re.compile(r"(?:[ \t]{1,3}[^\s,;.!?()\"“”«»]{1,40}){0,23}")
_NEXT_WORD = re.compile(r"[ \t]{1,3}([^\s,;.!?()\"“”«»]{1,40})")
_TOKEN = re.compile(r"\S{1,256}")
_UNIT_AFTER = re.compile(
    r"[ \t]{0,2}(?:characters?|chars?|letters?|digits?|numbers?|symbols?|zeichen|ziffern|"
    r"stellen|stellig|buchstaben|caracteres|dígitos|digitos|letras|caractères|chiffres|"
    r"lettres|caratteri|cifre|lettere|tekens|cijfers|letters|long|lang|%|€|\$|km|kg|min|"
    r"minutes|hours|days|years|jahre|años|ans|anni|anos|jaar)(?![^\W\d_])",
    re.IGNORECASE,
)

# --- what a value is not ------------------------------------------------------------------------

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
    yes yeah yep nope sorry thanks thank thx ty please pls idk dunno lol haha hmm wait later
    sure noted done perfect awesome got it's that's what's here's there's don't can't won't
    isn't wasn't doesn't didn't i'm you're we're they're let let's welcome again another
    ja nein nee doch bitte danke klar genau gut okay super toll prima schon gleich später
    der die das dem den des ein eine einer eines einem einen ich du er sie es wir ihr mein meine
    meinen meinem meiner dein deine sein seine unser unsere euer ihre ist sind war waren wird
    werden wurde hat haben hatte kann können muss müssen soll sollte darf nicht kein keine keinen
    und oder aber auch noch nur schon sehr zu zum zur im in am an auf aus bei mit nach von vor
    für über unter wie was wer wo wann warum welche welcher welches hier dort da dann jetzt nun
    immer nie etwas nichts alles falsch richtig geändert gespeichert abgelaufen gesperrt
    vergessen sicher unsicher schwach stark lang kurz neu alt gleich geheim gültig ungültig
    erforderlich notwendig irgendwo irgendwas so zwei drei
    sí si no vale claro gracias bueno bien el la los las un una unos unas lo yo tú tu él ella
    nosotros vosotros ellos mi mis su sus nuestro nuestra es son era fue será está están hay
    tiene tengo puede debe y o pero también todavía ya muy demasiado de del al en con sin por
    para sobre como qué que cuál cual quién dónde cuándo cómo aquí allí incorrecta incorrecto
    correcta correcto caducada caducado cambiada cambiado guardada guardado olvidada olvidado
    segura seguro débil fuerte larga largo corta corto nueva nuevo vieja viejo misma mismo
    secreta secreto válida inválida necesaria obligatoria algo nada todo dos tres
    oui non merci bien le la les un une des je tu il elle nous vous ils elles mon ma mes ton ta
    tes son sa ses notre votre leur est sont était sera a ont peut doit et ou mais aussi encore
    déjà très trop de du au aux en dans sur avec sans pour par comme que qui quoi quel quelle
    où quand comment ici là incorrect incorrecte correct correcte expiré expirée changé changée
    oublié oubliée sûr sûre faible fort forte longue court courte nouveau nouvelle vieux vieille
    même secrète valide invalide nécessaire obligatoire quelque chose rien tout deux trois
    sì grazie bene il lo gli uno io lui lei noi voi loro mio mia miei mie tuo tua suo sua
    nostro nostra è sono era sarà ha hanno può deve ma anche ancora già molto troppo di della
    dello dei degli alle nel nella con senza per su come che chi cosa quale dove quando qui lì
    sbagliata sbagliato giusta giusto scaduta scaduto cambiata cambiato salvata salvato
    dimenticata dimenticato sicura sicuro debole lunga lungo corta corto nuova nuovo vecchia
    vecchio stessa stesso segreta segreto valida necessaria obbligatoria qualcosa niente tutto
    due tre
    sim não obrigado obrigada bom os um uma eu ele ela nós eles elas meu minha meus minhas
    teu tua seu sua nosso nossa é são será tem pode deve e ou mas também ainda já muito demais
    do da dos das no na nos nas em com sem por para sobre como que quem onde quando aqui ali
    errada errado certa certo expirada expirado mudada mudado salva salvo esquecida esquecido
    segura seguro fraca fraco forte longa longo curta curto nova novo velha velho mesma mesmo
    secreta secreto válida necessária obrigatória algo nada tudo dois três
    manager managers generator generators storage protection reset policy policies field hint
    hints strength requirements requirement change recovery vault app file list entry prompt
    screen box form rules rule length expiry expiration security protected keeper managed
    ja nee dank bedankt goed de het een ik jij je hij zij wij jullie mijn jouw zijn haar ons
    onze is zijn was wordt heeft hebben kan moet en of maar ook nog al heel te van in op met
    zonder voor over als wat wie waar wanneer hoe hier daar fout juist verlopen veranderd
    opgeslagen vergeten veilig onveilig zwak sterk lang kort nieuw nieuwe oud oude zelfde
    geheim geldig ongeldig nodig verplicht iets niets alles twee drie
"""
STOPWORDS: frozenset[str] = frozenset(_STOPWORD_TEXT.split())
"""Function words and words about a password in seven languages: never a value on their own."""

_CODE_REFERENCE = re.compile(
    r"(?:os\.environ|os\.getenv|getenv\(|process\.env|env\(|\{\{|%\(|\$\{|\$[A-Z_]{2,}\b"
    r"|[A-Za-z_][\w.]*\()"
    r"|\$[A-Z_][A-Z0-9_]*$|\$\{[A-Za-z_][A-Za-z0-9_]*\}$|<[A-Za-z_ -]{1,40}>$"
)
_PARTICIPLE = re.compile(r"[a-z]{3,}(?:ed|ing|ly)")  # "is expired", "is working", "are generally"
_MASK_CHARS = frozenset("*•●·x")
_LEADING_PUNCT = "([{<\"'`«„“‘¿¡*"
_TRAILING_PUNCT = ".,;:?)]}>\"'`»“”’*"
_HAS_DIGIT = re.compile(r"[0-9]")
_HAS_ALPHA = re.compile(r"[^\W\d_]")
_SYMBOL = re.compile(r"[!@#$%^&*+=~?|\\/<>{}\[\]]")
_INNER_CAPITAL = re.compile(r"(?-i:[a-z][A-Z])")
_DIGITISH = re.compile(r"[#*]?[0-9]{3,12}[#*]?|[0-9]{1,4}(?:[-–/. ][0-9]{1,4}){1,3}")
_SHORT_CODE = re.compile(r"(?=[A-Za-z0-9]{3,12}$)(?=.*[0-9])[A-Za-z0-9]+")
_YEAR = re.compile(r"(?:19|20)[0-9]{2}")
_DATE_LIKE = re.compile(
    r"[0-9]{1,4}[-/.:][0-9]{1,2}(?:[-/.:][0-9]{1,4})?(?:am|pm|h)?|[0-9]{1,2}(?:am|pm|st|nd|rd|th|h)",
    re.IGNORECASE,
)
_TRANSITION = re.compile(r"[^\W\d_][0-9]|[0-9][^\W\d_]")
_ASSIGNMENT = re.compile(r"[A-Za-z_][\w.-]{0,63}[=:]")  # max_tokens=512: a setting, not a token
# Amounts, URLs, addresses, host and file names, code: shaped, but not credentials.
_NOT_A_CREDENTIAL = re.compile(
    r"^[$€£¥%~]|\\|^[0-9.,]+[$€£%]|^[0-9]+[-–][^\W\d_]+$|/(?:month|mo|year|yr|week|day|h|hr|hour)$|://|^//|@|"
    r"[(),;]|=.|^[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|io|dev|de|es|fr|it|pt|nl|uk|co|app|"
    r"html?|php|py|js|ts|json|ya?ml|txt|md|csv|pdf|png|jpe?g|gif|zip|exe)$",
    re.IGNORECASE,
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")  # an id, not a secret
_DIGIT_RUN = re.compile(r"[#*]?[0-9]{4,8}[#*]?")


def is_cue_word(value: str) -> bool:
    """True if ``value`` is itself a cue ("password=password" names no secret)."""
    return len(value) <= 40 and _CUE.fullmatch(value) is not None


def _entropy(value: str) -> float:
    n = len(value)
    return -sum(c / n * math.log2(c / n) for c in Counter(value).values())


def shaped(value: str) -> bool:
    """Looks made up rather than a word: letters with digits, symbols or inner capitals."""
    if len(value) < 4 or _NOT_A_CREDENTIAL.search(value):
        return False
    letters = _HAS_ALPHA.search(value) is not None
    digits = _HAS_DIGIT.search(value) is not None
    if letters and digits:
        return True
    if not letters:
        return digits and len(value) >= 4 and _DATE_LIKE.fullmatch(value) is None
    letters = sum(ch.isalpha() for ch in value) >= 3
    if letters and _SYMBOL.search(value.strip("!?.¿¡")[1:-1]) is not None and len(value) >= 5:
        return True
    return _INNER_CAPITAL.search(value) is not None and len(value) >= 6


def strong_token(value: str) -> bool:
    """A high-entropy token worth redacting near a cue even without a connecting word."""
    if len(value) < 6 or _NOT_A_CREDENTIAL.search(value) or value.startswith("#"):
        return False
    if not (_HAS_ALPHA.search(value) and _HAS_DIGIT.search(value)):
        return False
    if _DATE_LIKE.fullmatch(value) or _ASSIGNMENT.match(value) or _UUID.fullmatch(value):
        return False
    if _SYMBOL.search(value[1:-1]) is not None and "/" not in value:
        return True
    if len(value) < 8:
        return False
    mixed = _INNER_CAPITAL.search(value) is not None
    return (len(_TRANSITION.findall(value)) >= 2 or mixed) and _entropy(value) >= 2.5


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in _LEADING_PUNCT:
        start += 1
    while end > start and text[end - 1] in _TRAILING_PUNCT:
        end -= 1
    return start, end


def _plain_value_ok(value: str, natural: bool) -> bool:
    """A word after a password cue: not a function word, not a description of the password."""
    lower = value.lower().rstrip("!")
    if not lower or lower in STOPWORDS or set(lower) <= _MASK_CHARS:
        return False
    if _CODE_REFERENCE.match(value):
        return False
    if value.islower() and _PARTICIPLE.fullmatch(lower):  # "is expired", "password: hashed"
        return False
    return not (value.isdigit() and len(value) <= 2)


@dataclass(frozen=True)
class Context:
    """What the previous message says about the one after it."""

    strong: bool = False
    """A password word, a PIN/code word or a security question: a short reply is the value."""
    digits: bool = False
    """The cue asks for a number (PIN, alarm code)."""
    security: bool = False
    """A security question: the reply may be a name of a few words."""
    keyish: bool = False
    """A weak cue (key, token, secret) or a secret in the message: credential shapes are values."""
    asks: bool = False
    """The message asks for the secret or announces it (a question, "send me", a trailing ":")."""


def _cue_class(m: re.Match[str]) -> str:
    if m.group("compound") is not None:
        stem = m.group("compound").lower()
        return next((c for s, c in _COMPOUND_CLASS.items() if stem.endswith(s)), "digit")
    return next(name for name, _, _ in _CLASSES if m.group(name) is not None)


_WORD = re.compile(r"[^\W\d_]+")
_INNER_WORD = re.compile(r"(?<=[a-z])[A-Z]")


def _prefixes(*lexicons: str) -> frozenset[str]:
    """The first three letters (or fewer) of the first word of every phrase of the lexicons."""
    out: set[str] = set()
    for lexicon in lexicons:
        for phrase in lexicon.split("|"):
            words = re.split(r"[\s'’-]+", phrase.strip().lower())
            if words and words[0]:
                out.add(words[0][:3])
    return frozenset(out)


_CUE_PREFIXES = _prefixes(*(words for _, words, _ in _CLASSES))
_COMPOUND_STEM_LIST = tuple(_COMPOUND_STEMS.split("|"))


def _candidates(text: str, prefixes: frozenset[str], compounds: bool) -> Iterator[int]:
    """Word starts (also camelCase inner ones) whose first letters begin some phrase.

    One C-level word scan instead of trying every alternative of a large regex at every position:
    keeps the cue scan fast as well as linear.
    """
    for m in _WORD.finditer(text):
        word = m.group()
        lower = word.lower()
        if (
            lower[:3] in prefixes
            or lower[:2] in prefixes
            or lower[:1] in prefixes
            or (compounds and len(lower) > 6 and any(s in lower for s in _COMPOUND_STEM_LIST))
        ):
            yield m.start()
        if not word.islower() and not word.isupper():
            for inner in _INNER_WORD.finditer(word):
                sub = word[inner.start() : inner.start() + 3].lower()
                if sub in prefixes or sub[:2] in prefixes:
                    yield m.start() + inner.start()


def _cues(text: str) -> Iterator[tuple[re.Match[str], str]]:
    last_end = 0
    for pos in _candidates(text, _CUE_PREFIXES, compounds=True):
        if pos < last_end:
            continue
        m = _CUE.match(text, pos)
        if m is None:
            continue
        last_end = m.end()
        if text.startswith(PLACEHOLDER_PREFIX, max(0, m.start() - 10), m.start() + 1):
            continue
        if _inside_placeholder(text, m.start()):
            continue
        yield m, _cue_class(m)


def _inside_placeholder(text: str, pos: int) -> bool:
    begin = text.rfind(PLACEHOLDER_PREFIX, max(0, pos - 24), pos + 1)
    return begin >= 0 and text.find("]", begin) >= pos


_ASKS = re.compile(
    r"\?|[:：]\s*$|(?<![^\W\d_])(?:can i|could i|may i|can you|could you|kannst du|können sie|"
    r"puedes|podrías|peux-tu|pouvez-vous|puoi|può|pode|podes|kun je|kunt u|"
    r"what|what's|whats|tell|send|give|share|need|remind|type|enter|"
    r"next message|wie|was|welche[snr]?|sag|schick|gib|brauche|cuál|cual|qué|dime|dame|manda|"
    r"envía|necesito|quel|quelle|dis|donne|envoie|besoin|qual|dimmi|dammi|manda|serve|"
    r"preciso|diz|me diga|wat|welk|welke|stuur|geef|nodig)(?![^\W\d_])",
    re.IGNORECASE,
)


def context_of(previous: str, had_secret: bool) -> Context:
    """The context a previous message sets: which cues it holds, whether it held a secret."""
    strong = digits = security = keyish = False
    security_word = _SECURITY_WORD.search(previous) is not None
    for m, cls in _cues(previous):
        if cls in ("password", "phrase", "security", "digit") or (
            cls == "security_ctx" and security_word
        ):
            strong = True
        if cls in ("digit", "alarm") or (cls == "code" and not _not_a_secret_code(previous, m)):
            digits = True
        if cls == "security" or (cls == "security_ctx" and security_word):
            security = True
        if cls in ("api", "token", "private", "secret", "weak_password"):
            keyish = True
    if had_secret or PLACEHOLDER_PREFIX in previous:
        keyish = True
    asks = _ASKS.search(previous) is not None
    return Context(strong, digits, security, keyish, asks)


def _not_a_secret_code(text: str, m: re.Match[str]) -> bool:
    before = text[max(0, m.start() - 24) : m.start()].rstrip(" \t_-").rsplit(None, 1)[-1:]
    after = text[m.end() : m.end() + 24].lstrip(" \t_-").split(None, 1)[:1]
    return any(w.lower().strip(".,;:!?\"'") in _NOT_SECRET_CODE_WORDS for w in before + after)


# --- the readers ---------------------------------------------------------------------------------


def _value_span(text: str, m: re.Match[str]) -> tuple[int, int, bool]:
    quoted = m.group("quoted") is not None
    start, end = m.span("quoted" if quoted else "bare")
    cut = text.find(PLACEHOLDER_PREFIX, start, end)
    if cut >= 0:
        end = cut
    if not quoted:
        start, end = _strip(text, start, end)
    return start, end, quoted


def _accept_after(text: str, cue: re.Match[str], cls: str, m: re.Match[str]) -> bool:
    start, end, quoted = _value_span(text, m)
    if end <= start:
        return False
    qualifier = m.group("qual")
    if qualifier is not None:
        words = qualifier.lower().split()
        if words[0].strip("'’s") in _COMPOUND_NOUNS:
            return False  # "my password manager is Bitwarden"
        if "*" in qualifier or any(w in _CONJUNCTIONS for w in words):
            return False  # "use a strong password and 2FA: ..." joins two things
        if any(w in _COPULA_WORDS for w in words):
            return False  # "the password is wrong the pin is loose": two clauses
    value = text[start:end]
    natural = m.group("natural") is not None or m.group("possessive") is not None
    if m.group("to") is not None:
        before = _CHANGE_VERB.search(text, max(0, cue.start() - 60), cue.start())
        if before is None and _CHANGED_AFTER.match(text, end) is None:
            return False
    if m.group("said") is not None and _TIER.get(cls) != "word":
        return False
    if _PLACEHOLDER_BODY in value or _CODE_REFERENCE.match(value) or is_cue_word(value):
        return False
    if (
        cue.group().lower() in ("pwd", "pw")
        and value.isalpha()
        and value.istitle()
        and _PROSE.match(text, end)
    ):
        return False  # "pwd: Shows the current directory" documents a command
    if m.group("bare") is not None and _CODE_REFERENCE.match(m.group("bare").rstrip(".,;:!?")):
        return False
    if cls in ("digit", "code"):
        if cls == "code" and _not_a_secret_code(text, cue):
            return False
        spaced = _SPACED_DIGITS.match(text, end) if value.isdigit() else None
        ok = (
            _DIGITISH.fullmatch(value) is not None
            or (cls == "digit" and _SHORT_CODE.fullmatch(value) is not None)
            or (spaced is not None and len(value) + spaced.group().count(" ") >= 3)
        )
        if ok and _UNIT_AFTER.match(text, end):
            return False
        if ok and m.group("none") is not None:  # "PIN 4829": no joining word, digits only
            return _DIGITISH.fullmatch(value) is not None and (
                cls == "digit" or _code_number(text, start, end)
            )
        return ok
    if cls == "alarm":  # "Alarm: 4490"
        return m.group("assign") is not None and _DIGITISH.fullmatch(value) is not None
    if m.group("ask") is not None and m.group("pronoun") is None:
        return strong_token(value)  # "Password? <value>" with no "it's"
    if _FILLER_WORD.fullmatch(value):
        return False  # a filler the pattern gave back ("ist übrigens [REDACTED]")
    tier = _TIER.get(cls, "token")
    if quoted and tier == "word":
        return value.strip().lower() not in STOPWORDS
    if tier != "word":
        loose = tier == "shaped" and m.group("none") is None and shaped(value)
        return (strong_token(value) or loose) and value.lower() not in STOPWORDS
    bare_question = m.group("ask") is not None and m.group("pronoun") is None
    if bare_question:
        return strong_token(value)
    if m.group("none") is not None:  # "log in with the password Gooseberry"
        if strong_token(value) or (cls in ("password", "phrase") and shaped(value)):
            return True
        leading = text[max(0, cue.start() - 40) : cue.start()]
        return _WITH_CUE.search(leading) is not None and _plain_value_ok(value, natural=True)
    if _UNIT_AFTER.match(text, end) and value.isdigit():
        return False
    if value.isdigit() and len(value) <= 2:  # "1 2 3 4" is a code, "12 characters" is not
        spaced = _SPACED_DIGITS.match(text, end)
        return spaced is not None and spaced.group().count(" ") + 1 >= 3
    if m.group("art") is not None or cue.group().lower() in _PLURAL_CUES:
        return shaped(value)  # "the password is the name of my dog", "passwords are ..."
    return _plain_value_ok(value, natural)


def _extend_name(text: str, end: int) -> int:
    """After a security answer, take the capitalised words of a name ("Rosewood Elementary")."""
    for _ in range(3):
        m = _NEXT_WORD.match(text, end)
        if m is None:
            break
        word = m.group(1)
        if not (word[:1].isupper() or word.lower() in ("van", "von", "der", "de", "la", "del")):
            break
        if word.lower() in STOPWORDS and word.lower() not in ("van", "der", "de", "la", "del"):
            break
        end = m.end(1)
    return end


def _after_cue(text: str, cue: re.Match[str], cls: str) -> Hit | None:
    m = _AFTER_CUE.match(text, cue.end())
    if m is None or not _accept_after(text, cue, cls, m):
        return None
    start, end, quoted = _value_span(text, m)
    if cls in ("security", "security_ctx") and not quoted:
        end = _extend_name(text, end)
    elif cls == "phrase" and not quoted:
        tail = _CLAUSE_REST.match(text, end)
        end = tail.end() if tail is not None else end
    elif text[start:end].isdigit():
        spaced = _SPACED_DIGITS.match(text, end)  # "PIN: 12 34", "is 10 20 30"
        end = spaced.end() if spaced is not None else end
    return start, end, _KIND[cls]


def _security_answer(text: str, cue: re.Match[str], cls: str) -> Hit | None:
    """``security question (...) the answer is X``: an answer word a few words after the cue."""
    for answer in _ANSWER.finditer(text, cue.end(), min(len(text), cue.end() + 160)):
        hit = _after_cue(text, answer, cls)
        if hit is not None:
            return hit
    return None


def _value_first_hits(text: str) -> Iterator[Hit]:
    for m in _VALUE_FIRST.finditer(text):
        cue = m.group("cue")
        cue_match = _CUE.match(text, m.start("cue"))
        if cue_match is None or not cue:
            continue
        cls = _cue_class(cue_match)
        start, end, quoted = _value_span(text, m)
        if end <= start:
            continue
        value = text[start:end]
        if cls in ("alarm", "security_ctx") or value.lower() in STOPWORDS:
            continue
        if _CUE.fullmatch(value) is not None:
            continue
        if cls in ("digit", "code"):
            ok = _DIGITISH.fullmatch(value) is not None
        elif _TIER.get(cls) == "token":
            ok = strong_token(value)
        elif cls in ("password", "phrase", "security") and (
            quoted
            or m.group("cop") is not None
            or m.group("that") is not None
            or _USE_VERB.search(text, 0, m.start())
        ):
            ok = quoted or shaped(value) or _plain_value_ok(value, natural=True)
        else:
            ok = shaped(value)
        if ok:
            yield start, end, _KIND[cls]


def _login_hits(text: str) -> Iterator[Hit]:
    for m in _LOGIN.finditer(text):
        user, value = m.group("user"), m.group("val")
        start, end = _strip(text, *m.span("val"))
        if end <= start:
            continue
        value = text[start:end]
        if user.lower() in STOPWORDS or _CUE.fullmatch(user) or _CUE.fullmatch(value):
            continue
        if _PLACEHOLDER_BODY in value or value.lower() in STOPWORDS:
            continue
        if m.group("strong") is not None or shaped(value):
            yield start, end, "password"


def _near_tokens(text: str, cue: re.Match[str], covered: int) -> list[tuple[int, int]]:
    """The tokens of the cue's sentence, 6 before and 12 after it, that start after ``covered``.

    Each token is looked at for the first cue whose window holds it only, so that the work stays
    linear (and small) when cues are dense.
    """
    before = _tokens_before(text, cue.start(), 6, covered)
    after = list(_tokens_after(text, max(cue.end(), covered), 12))
    return before + after


def _near_token(
    text: str, start: int, end: int, digits: bool, kind: str, made_up: bool = False
) -> Iterator[Hit]:
    start, end = _strip(text, start, end)
    while start < end and text[start] in "=:":
        start += 1
    value = text[start:end]
    if end <= start or _PLACEHOLDER_BODY in value or len(value) > 128:
        return
    after_colon = text[max(0, start - 4) : start].rstrip().endswith((":", "="))
    credential = strong_token(value) or (
        made_up
        and after_colon  # "password is the same as before: Tortilla12", not "like 1Password"
        and shaped(value)
        and _HAS_DIGIT.search(value) is not None
        and _HAS_ALPHA.search(value) is not None
        and _UUID.fullmatch(value) is None  # an id near the word "password" is still an id
    )
    if (credential and not (len(value) <= 40 and _CUE.fullmatch(value))) or (
        digits and _code_number(text, start, end)
    ):
        yield start, end, kind


def _code_number(text: str, start: int, end: int) -> bool:
    """A 4-8 digit number that is not a year, an amount or a measure."""
    value = text[start:end]
    if not _DIGIT_RUN.fullmatch(value) or _YEAR.fullmatch(value.strip("#*")):
        return False
    currency = start > 0 and text[start - 1] in "$€£"
    return not currency and _UNIT_AFTER.match(text, end) is None


def _ends_sentence(token: str) -> bool:
    return token.rstrip("\"')]»”")[-1:] in (".", "!", "?")


def _tokens_after(text: str, pos: int, limit: int) -> Iterator[tuple[int, int]]:
    for i, m in enumerate(_TOKEN.finditer(text, pos, min(len(text), pos + 600))):
        if i >= limit:
            return
        yield m.span()
        if _ends_sentence(m.group()) or text[m.end() : m.end() + 1] == "\n":
            return


def _tokens_before(text: str, pos: int, limit: int, covered: int) -> list[tuple[int, int]]:
    """Up to ``limit`` tokens of the same sentence before ``pos`` (and after ``covered``)."""
    begin = max(covered, pos - 200)
    spans = [m.span() for m in _TOKEN.finditer(text, begin, pos)]
    if begin > covered and spans and spans[0][0] == begin and not text[begin - 1].isspace():
        spans = spans[1:]  # cut by the window
    kept: list[tuple[int, int]] = []
    for start, end in reversed(spans):
        if len(kept) >= limit or _ends_sentence(text[start:end]) or "\n" in text[end:pos]:
            break
        kept.append((start, end))
    kept.reverse()
    return kept


def cue_hits(text: str, previous: str | None = None) -> Iterator[Hit]:
    """Every value announced by a cue in ``text`` (``previous`` only enables context cues)."""
    security_word = _SECURITY_WORD.search(text) is not None or (
        previous is not None and _SECURITY_WORD.search(previous) is not None
    )
    covered = 0
    for cue, cls in _cues(text):
        if cls == "security_ctx" and not security_word:
            continue
        hit = None if cls == "alarm" else _after_cue(text, cue, cls)
        if hit is None and cls in ("security", "security_ctx"):
            hit = _security_answer(text, cue, cls)
        if hit is not None:
            yield hit
        if cls in ("security", "security_ctx") or (cls == "code" and _not_a_secret_code(text, cue)):
            continue
        digits = cls in ("digit", "alarm")
        for start, end in _near_tokens(text, cue, covered):
            made_up = cls in ("password", "phrase")  # "password is the same as before: Tortilla12"
            yield from _near_token(text, start, end, digits, _KIND[cls], made_up)
            covered = max(covered, end)
    yield from _value_first_hits(text)
    yield from _login_hits(text)


# --- the previous message ------------------------------------------------------------------------

_REPLY_LEAD = re.compile(
    r"(?:\s{0,4}(?:sure(?: thing)?|ok(?:ay)?|yes|yeah|yep|of course|here(?: you go| it is)?|"
    r"it's|its|it is|that's|that is|the (?:password|code|pin|key|answer) is|it was|"
    r"klar|ja|natürlich|gerne|hier|es ist|das ist|es lautet|sie lautet|er lautet|"
    r"claro|sí|si|vale|aquí|aqui|es|era|bien sûr|oui|voilà|voila|c'est|c’est|ici|certo|"
    r"sì|ecco|è|é|sim|aqui está|natuurlijk|hier|het is|dat is)"
    r"[\s,:;.!-]{0,4}){1,3}",
    re.IGNORECASE,
)
_REPLY_TAIL = re.compile(
    r"[\s,;.!]{0,4}(?:thanks|thank you|thx|please|danke|bitte|gracias|merci|grazie|obrigad[oa]|"
    r"bedankt|lol|:\)|;\))?[\s.!]{0,4}$",
    re.IGNORECASE,
)

_TAIL_REACH = 64  # > the longest _REPLY_TAIL match


def _reply_span(text: str) -> tuple[int, int]:
    """The span of ``text`` that a reply's value can be: without "sure, it's" and "thanks"."""
    start, end = 0, len(text)
    lead = _REPLY_LEAD.match(text)
    if lead is not None and lead.end() < end:
        start = lead.end()
    # the tail is at most ~20 characters before the end: search only there (same match)
    tail = _REPLY_TAIL.search(text, max(start, end - _TAIL_REACH))
    if tail is not None and tail.start() > start:
        end = tail.start()
    start, end = _strip(text, start, end)
    while start < end and text[start].isspace():
        start += 1
    return start, end


def may_be_reply(text: str) -> bool:
    """False when :func:`previous_hits` finds nothing in ``text`` whatever the context: its
    reply span is over 128 characters and it has more than 12 tokens. The caller can then skip
    reading the previous message (most of the cost of a long message's detection)."""
    start, end = _reply_span(text)
    if end - start <= 128:
        return True
    tokens = _TOKEN.finditer(text, 0, min(len(text), 2000))
    return sum(1 for _ in itertools.islice(tokens, 13)) <= 12


def previous_hits(text: str, context: Context) -> Iterator[Hit]:
    """Values in ``text`` that only the previous message's context shows to be secrets."""
    kind = "secret" if context.security else "password"
    if not context.strong and context.keyish:
        kind = "secret"
    if not (context.strong or context.keyish):
        return
    start, end = _reply_span(text)
    core = text[start:end]
    words = core.split()
    if (
        words
        and _PLACEHOLDER_BODY not in core
        and len(core) <= 128
        and _short_reply_ok(core, words, context)
    ):
        yield start, end, kind
        return
    spans = list(_TOKEN.finditer(text, 0, min(len(text), 2000)))
    if len(spans) > 12:  # a long message is no reply to the previous one
        return
    for span in spans:
        s, e = _strip(text, *span.span())
        value = text[s:e]
        if e <= s or _PLACEHOLDER_BODY in value:
            continue
        if _strict_token(value) or (context.digits and context.asks and _code_number(text, s, e)):
            yield s, e, kind


def _strict_token(value: str) -> bool:
    """A token that is a credential even with no cue in its own message."""
    if not strong_token(value) or len(value) < 8:
        return False
    mixed = len(_INNER_CAPITAL.findall(value)) >= 2
    return _entropy(value) >= 3.0 and (len(_TRANSITION.findall(value)) >= 2 or mixed)


def _short_reply_ok(core: str, words: list[str], context: Context) -> bool:
    if len(words) == 1:
        value = words[0]
        if value.lower() in STOPWORDS or _CUE.fullmatch(value) or value.endswith("?"):
            return False
        if context.digits and not context.strong:
            return _DIGITISH.fullmatch(value) is not None or strong_token(value)
        if context.strong:
            plain = context.asks and not context.digits and _plain_value_ok(value, natural=True)
            return _DIGITISH.fullmatch(value) is not None or shaped(value) or plain
        return strong_token(value) or (shaped(value) and _HAS_DIGIT.search(value) is not None)
    if context.security and context.asks and len(words) <= 4:
        return all(w[:1].isupper() or w.lower() in ("van", "von", "der", "de", "la") for w in words)
    return False
