"""Labelled positives of ``tiered-memory bench secrets``: secrets stated the way people write them.

Each phrasing names the secret value it holds, so the benchmark checks that the *value* is gone from
the redacted text, not just that something fired. Two batches, written apart: ``TUNING`` was written
first and the detector was developed against it; ``HELD_OUT`` was written afterwards, once the
detector was settled, and was not used to change it (the benchmark reports both).

Classes: ``password`` (ordinary phrasings), ``pin``, ``alarm_code`` (door, gate, alarm, safe codes),
``security_answer``, ``api_key`` (keys and tokens under a cue), ``login`` (user/password pairs),
``previous_message`` (the value alone, answering a cue in the previous message), ``split_key`` (a
key continued in a second message), ``tool_call`` (JSON arguments). Languages: en, de, es, fr, it,
pt, nl.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FRESH", "HELD_OUT", "LAST", "PHRASINGS", "TUNING", "Phrasing"]


@dataclass(frozen=True)
class Phrasing:
    """One labelled message that holds a secret."""

    cls: str
    """The class of secret or of phrasing (see the module docstring)."""
    lang: str
    """ISO 639-1 code of the message's language."""
    text: str
    """The message."""
    value: str
    """The secret in ``text``; every word of it (3+ characters) must be gone after redaction."""
    previous: str | None = None
    """The previous message of the same session, when the secret needs it to be recognised."""
    batch: str = "tuning"
    """``tuning`` (developed against) or ``held_out`` (written afterwards, never tuned on)."""


_P = Phrasing

TUNING: tuple[Phrasing, ...] = (
    # --- ordinary English phrasings of a password ---
    _P("password", "en", "Please use Marigold77 as my password from now on.", "Marigold77"),
    _P("password", "en", "My password? It's bluebird42.", "bluebird42"),
    _P("password", "en", "pw is qwerty789", "qwerty789"),
    _P("password", "en", "my password is sunflower", "sunflower"),
    _P("password", "en", "The wifi password is Tr0pic@lStorm", "Tr0pic@lStorm"),
    _P(
        "password",
        "en",
        "I set the password to purple-monkey-dishwasher",
        "purple-monkey-dishwasher",
    ),
    _P("password", "en", "ok so the password for the NAS is  n4s!Admin", "n4s!Admin"),
    _P("password", "en", "the new passcode is 8812zz", "8812zz"),
    _P("password", "en", "my netflix password = Chill&Grill9", "Chill&Grill9"),
    _P("password", "en", "Password: 'winter is coming'", "winter is coming"),
    _P("password", "en", "Rosebud1941 is my password for the bank", "Rosebud1941"),
    _P("password", "en", "remember, my email password is still kittycat", "kittycat"),
    _P("password", "en", "I changed my password to Lighthouse#5 yesterday", "Lighthouse#5"),
    _P("password", "en", "my pwd: zebra-crossing-11", "zebra-crossing-11"),
    _P("password", "en", "Password for the guest account is just guest2024!", "guest2024!"),
    _P("password", "en", "My new password will be Octopus_Ink", "Octopus_Ink"),
    _P("password", "en", "fyi the router login password was changed to Mango!Salsa", "Mango!Salsa"),
    _P("password", "en", "I'll use CorrectHorse99 for the password", "CorrectHorse99"),
    # --- German ---
    _P("password", "de", "Mein Passwort ist Sonnenblume", "Sonnenblume"),
    _P("password", "de", "Das WLAN-Passwort lautet Kaffee2023!", "Kaffee2023!"),
    _P("password", "de", "Kennwort: Hausboot77", "Hausboot77"),
    _P("password", "de", "Ich habe mein Passwort auf Regenwurm12 geändert.", "Regenwurm12"),
    _P("password", "de", "Benutze bitte Schneeflocke9 als Passwort.", "Schneeflocke9"),
    _P("password", "de", "Mein Bankpasswort ist leider immer noch Hamster", "Hamster"),
    # --- Spanish ---
    _P("password", "es", "Mi contraseña es mariposa22", "mariposa22"),
    _P("password", "es", "La contraseña del wifi es Playa#Sol", "Playa#Sol"),
    _P("password", "es", "Usa Girasol2020 como contraseña, por favor.", "Girasol2020"),
    _P("password", "es", "contraseña: tortuga", "tortuga"),
    _P("password", "es", "Cambié mi contraseña a Limonada99", "Limonada99"),
    _P("password", "es", "La clave de acceso es Pelota7", "Pelota7"),
    # --- French ---
    _P("password", "fr", "Mon mot de passe est papillon", "papillon"),
    _P("password", "fr", "Le mot de passe du wifi c'est Croissant42", "Croissant42"),
    _P("password", "fr", "mdp : Baguette!99", "Baguette!99"),
    _P("password", "fr", "Utilise Fromage2021 comme mot de passe", "Fromage2021"),
    _P("password", "fr", "J'ai changé mon mot de passe en Chaton_Noir", "Chaton_Noir"),
    # --- Italian ---
    _P("password", "it", "La mia password è girasole", "girasole"),
    _P("password", "it", "La password del wifi è Pizza4Formaggi", "Pizza4Formaggi"),
    _P("password", "it", "Usa Gelato88 come password", "Gelato88"),
    _P("password", "it", "parola d'ordine: Colosseo", "Colosseo"),
    # --- Portuguese ---
    _P("password", "pt", "Minha senha é abacaxi", "abacaxi"),
    _P("password", "pt", "A senha do wifi é Praia2022", "Praia2022"),
    _P("password", "pt", "Mudei a minha senha para Saudade#1", "Saudade#1"),
    _P("password", "pt", "A palavra-passe é Bacalhau7", "Bacalhau7"),
    # --- Dutch ---
    _P("password", "nl", "Mijn wachtwoord is tulpenveld", "tulpenveld"),
    _P("password", "nl", "Het wifi-wachtwoord is Stroopwafel8", "Stroopwafel8"),
    _P("password", "nl", "Gebruik Fietsbel33 als wachtwoord", "Fietsbel33"),
    # --- PINs ---
    _P("pin", "en", "my PIN is 4829", "4829"),
    _P("pin", "en", "The pin for my debit card: 7715", "7715"),
    _P("pin", "en", "Card PIN 9034, don't tell anyone", "9034"),
    _P("pin", "de", "Meine PIN ist 3381", "3381"),
    _P("pin", "de", "Die Geheimzahl meiner EC-Karte lautet 6120", "6120"),
    _P("pin", "es", "El PIN de mi tarjeta es 5508", "5508"),
    _P("pin", "fr", "Mon code PIN est le 2247", "2247"),
    _P("pin", "it", "Il PIN del bancomat è 8163", "8163"),
    _P("pin", "pt", "O meu PIN é 4410", "4410"),
    _P("pin", "nl", "Mijn pincode is 1936", "1936"),
    # --- alarm, door, gate, safe codes ---
    _P("alarm_code", "en", "The alarm code is 5519", "5519"),
    _P("alarm_code", "en", "Door code: 2846#", "2846"),
    _P("alarm_code", "en", "gate code is 0711 if you get there before me", "0711"),
    _P("alarm_code", "en", "To disarm the alarm, punch in 8842 on the keypad", "8842"),
    _P("alarm_code", "en", "the safe combination is 36-24-36", "36-24-36"),
    _P("alarm_code", "de", "Der Alarmcode ist 7302", "7302"),
    _P("alarm_code", "de", "Der Türcode lautet 4471", "4471"),
    _P("alarm_code", "es", "El código de la alarma es 9152", "9152"),
    _P("alarm_code", "fr", "Le code de l'alarme est 6634", "6634"),
    _P("alarm_code", "fr", "Digicode : 4B72", "4B72"),
    _P("alarm_code", "it", "Il codice dell'allarme è 3390", "3390"),
    _P("alarm_code", "pt", "O código do alarme é 1875", "1875"),
    _P("alarm_code", "nl", "De alarmcode is 5027", "5027"),
    # --- security answers ---
    _P("security_answer", "en", "My mother's maiden name is Kowalski", "Kowalski"),
    _P(
        "security_answer",
        "en",
        "For the security question I put Biscuit, my first dog",
        "Biscuit",
    ),
    _P("security_answer", "en", "security answer: Springfield", "Springfield"),
    _P(
        "security_answer",
        "en",
        "The answer to my security question is 'Rosewood Elementary'",
        "Rosewood Elementary",
    ),
    _P(
        "security_answer",
        "en",
        "For the bank's secret question about my first pet the answer is Whiskers",
        "Whiskers",
    ),
    _P("security_answer", "de", "Die Antwort auf meine Sicherheitsfrage ist Bello", "Bello"),
    _P("security_answer", "de", "Mädchenname meiner Mutter: Hoffmann", "Hoffmann"),
    _P("security_answer", "es", "La respuesta de seguridad es Canela", "Canela"),
    _P("security_answer", "es", "El apellido de soltera de mi madre es Etxeberria", "Etxeberria"),
    _P("security_answer", "fr", "La réponse à ma question secrète est Minou", "Minou"),
    _P("security_answer", "it", "La risposta alla domanda di sicurezza è Fufi", "Fufi"),
    _P("security_answer", "pt", "A resposta de segurança é Pipoca", "Pipoca"),
    _P("security_answer", "nl", "Het antwoord op mijn beveiligingsvraag is Snuffel", "Snuffel"),
    # --- API keys and tokens under a cue (no vendor prefix) ---
    _P(
        "api_key",
        "en",
        "here's the api key for staging: 9f8e7d6c5b4a3f2e1d0c",
        "9f8e7d6c5b4a3f2e1d0c",
    ),
    _P("api_key", "en", "the token is Qm9iOnNlY3JldDEyMw", "Qm9iOnNlY3JldDEyMw"),
    _P("api_key", "en", "Our Mapbox key, use it in the app: pk8Hq2LmZx91TtR4", "pk8Hq2LmZx91TtR4"),
    _P("api_key", "de", "Der API-Schlüssel ist a81fe0c2b7d94e55", "a81fe0c2b7d94e55"),
    _P("api_key", "es", "La clave API es zX81kLm0Qp2r", "zX81kLm0Qp2r"),
    _P("api_key", "fr", "La clé API : 7d3b9a10fe42c6aa", "7d3b9a10fe42c6aa"),
    _P("api_key", "it", "La chiave API è Kq73mZt0Lw2x", "Kq73mZt0Lw2x"),
    _P("api_key", "pt", "A chave da API é Xb7Rq20pLmN4", "Xb7Rq20pLmN4"),
    _P("api_key", "nl", "De API-sleutel is Hj4kL9mN2pQ7", "Hj4kL9mN2pQ7"),
    # --- login pairs ---
    _P("login", "en", "login admin / Pa55word!", "Pa55word!"),
    _P("login", "en", "username: jsmith, password: Fl0wer!Pot", "Fl0wer!Pot"),
    _P("login", "en", "creds for the printer are admin/ink4ever", "ink4ever"),
    _P("login", "de", "Zugangsdaten: hans / Bratwurst3", "Bratwurst3"),
    _P("login", "es", "usuario: maria, contraseña: Churros5", "Churros5"),
    _P("login", "fr", "identifiant : pierre, mot de passe : Escargot9", "Escargot9"),
    # --- the value alone, answering a cue in the previous message ---
    _P("previous_message", "en", "hunter2", "hunter2", previous="What's your password?"),
    _P(
        "previous_message",
        "en",
        "It's 4417",
        "4417",
        previous="Can you remind me of the alarm code?",
    ),
    _P(
        "previous_message",
        "en",
        "sure: Blue-Moon-88",
        "Blue-Moon-88",
        previous="I need the wifi password",
    ),
    _P(
        "previous_message",
        "en",
        "Peanut",
        "Peanut",
        previous="Security question: what was the name of your first pet?",
    ),
    _P(
        "previous_message",
        "de",
        "Es ist Zitrone5",
        "Zitrone5",
        previous="Wie lautet dein Passwort?",
    ),
    _P("previous_message", "es", "Es gatito", "gatito", previous="¿Cuál es tu contraseña?"),
    _P("previous_message", "fr", "C'est 7781", "7781", previous="Quel est le code de la porte ?"),
    _P("previous_message", "it", "Lampone3", "Lampone3", previous="Qual è la password del router?"),
    _P("previous_message", "pt", "5542", "5542", previous="Qual é o PIN do cartão?"),
    _P(
        "previous_message",
        "nl",
        "Molen12",
        "Molen12",
        previous="Wat is het wachtwoord van de wifi?",
    ),
    # --- a key split over two messages ---
    _P(
        "split_key",
        "en",
        "and the second half: 4bea2543c0ffee11",
        "4bea2543c0ffee11",
        previous="here's the first half of the api key: 8f14e45fceea167a",
    ),
    _P(
        "split_key",
        "en",
        "Zq81LmNx55PwRt",
        "Zq81LmNx55PwRt",
        previous="My token is too long for one message, part one: ab12Cd34Ef56Gh78",
    ),
    _P(
        "split_key",
        "de",
        "Der Rest: 77ac19be02df",
        "77ac19be02df",
        previous="Hier ist der erste Teil vom Schlüssel: 5f2c9d81aa03",
    ),
    _P(
        "split_key",
        "es",
        "y el resto es Qw3rT9yU1iO5",
        "Qw3rT9yU1iO5",
        previous="Te paso la clave API en dos partes. Primera: Lk8Jh7Gf6Ds5",
    ),
    _P(
        "split_key",
        "en",
        "GhIjKlMnOpQr5678",
        "GhIjKlMnOpQr5678",
        previous="sk-proj-AbCdEf0123456789 (rest in next msg)",
    ),
    # --- tool-call arguments ---
    _P("tool_call", "en", '{"username": "ops", "password": "Gr8Scott!"}', "Gr8Scott!"),
    _P("tool_call", "en", '{"alarm_code": "6621", "action": "disarm"}', "6621"),
    _P("tool_call", "de", '{"benutzer": "anna", "passwort": "Apfelbaum1"}', "Apfelbaum1"),
    _P("tool_call", "es", '{"contraseña": "Sandia2000"}', "Sandia2000"),
    _P("tool_call", "en", '{"security_answer": "Pumpernickel"}', "Pumpernickel"),
    _P("tool_call", "en", '{"pin": 5823, "card": "debit"}', "5823"),
    # --- second round of the tuning batch: harder phrasings ---
    _P("password", "en", "Password's 'tangerine dream'", "tangerine dream"),
    _P("password", "en", "The login for the portal is bob and the password Hunter22x", "Hunter22x"),
    _P("password", "en", "you can log in with the password Gooseberry", "Gooseberry"),
    _P("password", "en", "my password... it's Bubblegum7", "Bubblegum7"),
    _P("password", "en", "the password (case sensitive) is Quokka!", "Quokka!"),
    _P("password", "en", "Wi-Fi: network CoffeeHouse, password latte4all", "latte4all"),
    _P("password", "en", "Note to self - gmail pw = Walrus_1987", "Walrus_1987"),
    _P("password", "de", "Mein Passwort? Das ist Zitronenfalter.", "Zitronenfalter"),
    _P("password", "de", "Als Passwort habe ich Erdbeere21 genommen", "Erdbeere21"),
    _P("password", "es", "Para entrar usa la contraseña Melocoton", "Melocoton"),
    _P("password", "es", "mi clave del banco es Tiburon44", "Tiburon44"),
    _P("password", "fr", "Mon mdp c'est chaussette", "chaussette"),
    _P("password", "it", "La mia password? È Tiramisu9", "Tiramisu9"),
    _P("password", "pt", "A senha do banco continua sendo Jabuticaba", "Jabuticaba"),
    _P("password", "nl", "Het wachtwoord van de router luidt Kaasschaaf", "Kaasschaaf"),
    _P("pin", "en", "my bank PIN, in case you need it, is 8820", "8820"),
    _P("pin", "es", "El NIP de mi tarjeta es 3306", "3306"),
    _P("pin", "it", "Ti scrivo il PIN: 6603", "6603"),
    _P("pin", "nl", "De pincode van mijn bankpas is 7318", "7318"),
    _P("alarm_code", "en", "the code to get in is 4490", "4490"),
    _P("alarm_code", "en", "Alarm: 5581 then press OFF", "5581"),
    _P("alarm_code", "en", "garage opener code 7741", "7741"),
    _P("alarm_code", "en", "The combination to the safe is 12-34-56", "12-34-56"),
    _P("alarm_code", "fr", "Le code de la carte bleue, c'est 4521", "4521"),
    _P("alarm_code", "de", "Zum Entschärfen der Alarmanlage 3917 eintippen", "3917"),
    _P("security_answer", "en", "my secret answer for 'favorite teacher' is Mrs Patel", "Patel"),
    _P("security_answer", "en", "Security Q: name of first pet. A: Rufus", "Rufus"),
    _P("security_answer", "es", "Mi respuesta secreta: Chiquitin", "Chiquitin"),
    _P("security_answer", "pt", "O nome de solteira da minha mãe é Figueiredo", "Figueiredo"),
    _P("api_key", "en", "the access token expires tomorrow, it's 7hG5kL2pQ9wE", "7hG5kL2pQ9wE"),
    _P("api_key", "en", "Bearer token for the staging api -> 9a8b7c6d5e4f3a2b", "9a8b7c6d5e4f3a2b"),
    _P("api_key", "de", "Hier der Token fürs Deployment: Zt8Lq2Wm5Np0", "Zt8Lq2Wm5Np0"),
    _P("login", "en", "Log in as admin with password Kiwi2024", "Kiwi2024"),
    _P("login", "es", "Cuenta: luisa@example.com / Pimienta9", "Pimienta9"),
    _P("login", "en", "Here are my credentials, user: tom, pass: Tiger#88", "Tiger#88"),
    _P(
        "split_key",
        "en",
        "Second part: 5678IjKlMnOp",
        "5678IjKlMnOp",
        previous="The key is in two parts because of the length limit. First part: AbCd1234EfGh",
    ),
    _P(
        "previous_message",
        "en",
        "0415, I think",
        "0415",
        previous="What's the PIN for the bike lock?",
    ),
    _P(
        "previous_message",
        "es",
        "Toby",
        "Toby",
        previous="Pregunta de seguridad: ¿nombre de tu primera mascota?",
    ),
    _P(
        "previous_message",
        "de",
        "klar: Hx7-99-Lm-42",
        "Hx7-99-Lm-42",
        previous="Kannst du mir den WLAN-Schlüssel schicken?",
    ),
    _P(
        "tool_call",
        "en",
        '{"name": "unlock_door", "arguments": {"code": "4412"}}',
        "4412",
    ),
    _P("tool_call", "fr", '{"mot_de_passe": "Chocolat88"}', "Chocolat88"),
    _P("tool_call", "en", '{"cred": {"user": "x", "secret": "Ab12Cd34Ef"}}', "Ab12Cd34Ef"),
)


def _H(cls: str, lang: str, text: str, value: str, previous: str | None = None) -> Phrasing:
    return Phrasing(cls, lang, text, value, previous, batch="held_out")


HELD_OUT: tuple[Phrasing, ...] = (
    # --- ordinary phrasings of a password ---
    _H("password", "en", "btw my laptop password is Pineapple!23", "Pineapple!23"),
    _H("password", "en", "Could you store this: my work password = Blu3Horizon", "Blu3Horizon"),
    _H("password", "en", "I went with 'open sesame 77' as the password", "open sesame 77"),
    _H("password", "en", "my instagram pass is Selfie4Life", "Selfie4Life"),
    _H("password", "en", "The password to the shared drive: driftwood88", "driftwood88"),
    _H("password", "en", "It's Cheddar_Moon9, that's my password", "Cheddar_Moon9"),
    _H("password", "en", "New password for the VPN is now k8s-Rocket-42", "k8s-Rocket-42"),
    _H("password", "en", "my passphrase: glacier orbit lantern", "glacier orbit lantern"),
    _H("password", "en", "Passcode is 6-6-1-9 for the tablet", "6-6-1-9"),
    _H("password", "en", "remember my pw: snowboard5", "snowboard5"),
    _H("password", "en", "The wifi pass is Hotspot2go", "Hotspot2go"),
    _H("password", "en", "I reset the password to Aurora*Borealis", "Aurora*Borealis"),
    _H("password", "en", "Jupiter99 - that's the password for the family PC", "Jupiter99"),
    _H("password", "de", "Das Kennwort für den Router ist Dachboden44", "Dachboden44"),
    _H("password", "de", "Mein E-Mail-Passwort lautet seit gestern Wanderweg!7", "Wanderweg!7"),
    _H("password", "de", "Ich nehme Mondschein88 als neues Passwort", "Mondschein88"),
    _H("password", "de", "Passwort für Netflix: Kinoabend", "Kinoabend"),
    _H("password", "de", "Unser WLAN-Passwort ist jetzt Gartenzwerg", "Gartenzwerg"),
    _H("password", "es", "La contraseña de mi correo es Albaricoque7", "Albaricoque7"),
    _H("password", "es", "Mi contraseña ahora es cangrejo", "cangrejo"),
    _H("password", "es", "Te dejo la contraseña: Montaña#2021", "Montaña#2021"),
    _H("password", "es", "Pon Flamenco88 como contraseña del router", "Flamenco88"),
    _H("password", "fr", "Le mot de passe de la box est Tartiflette73", "Tartiflette73"),
    _H("password", "fr", "mot de passe : Grenouille", "Grenouille"),
    _H("password", "fr", "Mon mot de passe pour la banque, c'est Macaron!5", "Macaron!5"),
    _H("password", "fr", "J'utilise Camembert99 comme mdp", "Camembert99"),
    _H("password", "it", "La password della mail è Cannolo77", "Cannolo77"),
    _H("password", "it", "Password del wifi: Vespa2020", "Vespa2020"),
    _H("password", "it", "la mia password ora è farfalla", "farfalla"),
    _H("password", "pt", "A minha senha do email é Caipirinha5", "Caipirinha5"),
    _H("password", "pt", "Senha: Brigadeiro", "Brigadeiro"),
    _H("password", "pt", "A palavra-passe do wifi é Pastel#Nata", "Pastel#Nata"),
    _H("password", "nl", "Het wachtwoord is Klompen99", "Klompen99"),
    _H("password", "nl", "Mijn wachtwoord voor de bank is Dijkgraaf", "Dijkgraaf"),
    _H("password", "nl", "wachtwoord: Hagelslag7", "Hagelslag7"),
    # --- PINs ---
    _H("pin", "en", "PIN for the credit card is 2580", "2580"),
    _H("pin", "en", "pin number: 7091", "7091"),
    _H("pin", "en", "My phone's PIN is 846213", "846213"),
    _H("pin", "de", "PIN der Kreditkarte: 4172", "4172"),
    _H("pin", "de", "Die PIN für mein Handy ist 9021", "9021"),
    _H("pin", "es", "Mi PIN es el 6314", "6314"),
    _H("pin", "fr", "Le code PIN de mon téléphone est 0852", "0852"),
    _H("pin", "it", "Il mio PIN è 5726", "5726"),
    _H("pin", "pt", "O PIN do meu cartão é 3390", "3390"),
    _H("pin", "nl", "De pincode is 6482", "6482"),
    # --- alarm, door, gate, safe codes ---
    _H("alarm_code", "en", "Our house alarm code is 3141", "3141"),
    _H("alarm_code", "en", "The lockbox code: 9082", "9082"),
    _H("alarm_code", "en", "entry code for the building is 1470#", "1470"),
    _H("alarm_code", "en", "The keypad at the back door takes 6257", "6257"),
    _H("alarm_code", "en", "Safe combination: 24-11-38", "24-11-38"),
    _H("alarm_code", "de", "Der Code für das Garagentor lautet 8805", "8805"),
    _H("alarm_code", "de", "Zugangscode zum Büro: 2719", "2719"),
    _H("alarm_code", "es", "El código de acceso al edificio es 4053", "4053"),
    _H("alarm_code", "es", "La clave de la alarma es 7788", "7788"),
    _H("alarm_code", "fr", "Le code d'accès de l'immeuble est 5B21", "5B21"),
    _H("alarm_code", "it", "Il codice del cancello è 1357", "1357"),
    _H("alarm_code", "pt", "O código de acesso do prédio é 2468", "2468"),
    _H("alarm_code", "nl", "De deurcode is 9137", "9137"),
    # --- security answers ---
    _H("security_answer", "en", "Security question answer: Mapleton", "Mapleton"),
    _H("security_answer", "en", "my mom's maiden name is Abernathy", "Abernathy"),
    _H(
        "security_answer",
        "en",
        "For my bank's security questions I used Gizmo as the pet's name",
        "Gizmo",
    ),
    _H("security_answer", "en", "The memorable word on my account is Thistle", "Thistle"),
    _H(
        "security_answer",
        "de",
        "Sicherheitsfrage: Name des ersten Haustiers, Antwort: Flocke",
        "Flocke",
    ),
    _H("security_answer", "de", "Der Mädchenname meiner Mutter ist Krüger", "Krüger"),
    _H("security_answer", "es", "Respuesta a la pregunta de seguridad: Valdepeñas", "Valdepeñas"),
    _H("security_answer", "fr", "Le nom de jeune fille de ma mère est Dubois", "Dubois"),
    _H("security_answer", "it", "Il cognome da nubile di mia madre è Esposito", "Esposito"),
    _H(
        "security_answer",
        "pt",
        "Pergunta de segurança: primeiro animal. Resposta: Farofa",
        "Farofa",
    ),
    _H("security_answer", "nl", "Meisjesnaam van mijn moeder: Jansen", "Jansen"),
    # --- API keys and tokens under a cue ---
    _H("api_key", "en", "API key for the weather service: 3e9c1f7a0b4d6e2c", "3e9c1f7a0b4d6e2c"),
    _H("api_key", "en", "my access token = Lq9Zx2Vb7Nm4Kp1R", "Lq9Zx2Vb7Nm4Kp1R"),
    _H("api_key", "en", "the secret key is Wm3Xq8Rt2Yz6Pn1B", "Wm3Xq8Rt2Yz6Pn1B"),
    _H("api_key", "en", "Use this key for the maps SDK: Gp7Kd2Mx9Lw4Qz8T", "Gp7Kd2Mx9Lw4Qz8T"),
    _H("api_key", "de", "Mein API-Token lautet f7e6d5c4b3a29180", "f7e6d5c4b3a29180"),
    _H("api_key", "es", "El token de acceso es Rt5Yu8Io2Pa6Sd9F", "Rt5Yu8Io2Pa6Sd9F"),
    _H("api_key", "fr", "Voici la clé API du projet : Nb4Vc7Xz1Lk9Jh3G", "Nb4Vc7Xz1Lk9Jh3G"),
    _H("api_key", "it", "Il token è Qa2Ws4Ed6Rf8Tg0Y", "Qa2Ws4Ed6Rf8Tg0Y"),
    _H("api_key", "pt", "A chave secreta da API: Mn8Bv6Cx4Zl2Kj0H", "Mn8Bv6Cx4Zl2Kj0H"),
    _H("api_key", "nl", "Het token is Uy7Tr5Ew3Qa1Zx9C", "Uy7Tr5Ew3Qa1Zx9C"),
    # --- login pairs ---
    _H("login", "en", "login: mike / Soccer#10", "Soccer#10"),
    _H("login", "en", "user admin pass Gr33nTea", "Gr33nTea"),
    _H("login", "de", "Benutzername: klaus, Passwort: Brezel2000", "Brezel2000"),
    _H("login", "it", "utente: giulia / password: Lasagna7", "Lasagna7"),
    _H("login", "pt", "login joao / Feijoada99", "Feijoada99"),
    _H("login", "nl", "gebruikersnaam piet, wachtwoord Tulp2023", "Tulp2023"),
    # --- the value alone, answering the previous message ---
    _H(
        "previous_message",
        "en",
        "it's Marmalade3",
        "Marmalade3",
        previous="what was the password again?",
    ),
    _H("previous_message", "en", "7392", "7392", previous="What's the door code?"),
    _H("previous_message", "en", "Rainbow", "Rainbow", previous="Please type your password"),
    _H(
        "previous_message",
        "en",
        "Oakridge",
        "Oakridge",
        previous="What's the answer to your security question?",
    ),
    _H("previous_message", "de", "Sommerregen", "Sommerregen", previous="Was ist das Passwort?"),
    _H("previous_message", "es", "Es 2941", "2941", previous="¿Cuál es el PIN?"),
    _H(
        "previous_message",
        "fr",
        "Papillon22",
        "Papillon22",
        previous="Tu peux me donner le mot de passe ?",
    ),
    _H("previous_message", "it", "È 5810", "5810", previous="Qual è il codice dell'allarme?"),
    _H("previous_message", "pt", "Goiaba", "Goiaba", previous="Qual é a sua senha?"),
    _H("previous_message", "nl", "Het is Dropje7", "Dropje7", previous="Wat is je wachtwoord?"),
    # --- a key split over two messages ---
    _H(
        "split_key",
        "en",
        "Rest of the key: 9c0ffee1d2e3f4a5",
        "9c0ffee1d2e3f4a5",
        previous="The API key is 1a2b3c4d5e6f7a8b and it continues in my next message",
    ),
    _H(
        "split_key",
        "en",
        "Qx7Wm2Rt9Zp4",
        "Qx7Wm2Rt9Zp4",
        previous="my token got cut off, first bit: Lm3Nb8Vc1Xz6 and the rest follows",
    ),
    _H(
        "split_key",
        "fr",
        "la suite : Tz6Gh2Jk8Lm4",
        "Tz6Gh2Jk8Lm4",
        previous="Voici le début de la clé API : Ws1Ed3Rf5Tg7",
    ),
    _H(
        "split_key",
        "nl",
        "tweede deel: Pk4Jn7Hb2Gv9",
        "Pk4Jn7Hb2Gv9",
        previous="De sleutel is te lang, eerste deel: Cx8Zs5Aq1Wd3",
    ),
    # --- tool-call arguments ---
    _H("tool_call", "en", '{"email": "a@b.co", "new_password": "Velvet#Moon8"}', "Velvet#Moon8"),
    _H("tool_call", "en", '{"door_code": 4826}', "4826"),
    _H("tool_call", "de", '{"kennwort": "Schwarzwald5"}', "Schwarzwald5"),
    _H("tool_call", "it", '{"utente": "luca", "password": "Ragù2022"}', "Ragù2022"),
    _H("tool_call", "pt", '{"senha": "Coxinha44"}', "Coxinha44"),
    _H("tool_call", "en", '{"api_token": "Jk8Hg6Fd4Sa2Lp0O", "region": "eu"}', "Jk8Hg6Fd4Sa2Lp0O"),
)


def _F(cls: str, lang: str, text: str, value: str, previous: str | None = None) -> Phrasing:
    return Phrasing(cls, lang, text, value, previous, batch="fresh")


# Written after the detector had been changed for the held-out misses, measured once, not tuned on.
FRESH: tuple[Phrasing, ...] = (
    _F("password", "en", "So the password we agreed on is Fandango77, ok?", "Fandango77"),
    _F("password", "en", "Sign in with the password Nightingale", "Nightingale"),
    _F("password", "en", "my steam password is literally Potato#1", "Potato#1"),
    _F("password", "en", "password for the alarm app -> Zigzag2024", "Zigzag2024"),
    _F("password", "en", "You'll need the password, which is Harbor55", "Harbor55"),
    _F("password", "en", "Set it up with password: rocketship", "rocketship"),
    _F("password", "de", "Das Passwort fürs Gäste-WLAN ist Sommerfest24", "Sommerfest24"),
    _F("password", "de", "Kennwort ist Ostsee2022, bitte nicht weitersagen", "Ostsee2022"),
    _F("password", "es", "La contraseña es Guitarra!8, no la compartas", "Guitarra!8"),
    _F("password", "es", "Usé Paella2023 como contraseña", "Paella2023"),
    _F("password", "fr", "Le mdp du compte est Soleil#44", "Soleil#44"),
    _F("password", "fr", "mon mot de passe Netflix est popcorn", "popcorn"),
    _F("password", "it", "La password è ancora Ciabatta5", "Ciabatta5"),
    _F("password", "pt", "Minha senha nova é Maracuja12", "Maracuja12"),
    _F("password", "nl", "Wachtwoord van de laptop: Windmolen3", "Windmolen3"),
    _F("pin", "en", "The PIN on my SIM is 1122", "1122"),
    _F("pin", "de", "Meine Geheimzahl ist 7345", "7345"),
    _F("pin", "fr", "Code PIN : 9911", "9911"),
    _F("pin", "pt", "PIN do telemóvel: 5150", "5150"),
    _F("alarm_code", "en", "Alarm code's 2288", "2288"),
    _F("alarm_code", "en", "the gate code changed to 3030", "3030"),
    _F("alarm_code", "es", "Código de la puerta: 8426", "8426"),
    _F("alarm_code", "it", "Codice d'accesso: 7175", "7175"),
    _F("alarm_code", "nl", "Toegangscode van het gebouw is 4411", "4411"),
    _F("security_answer", "en", "Answer to the security question: Cinnamon", "Cinnamon"),
    _F("security_answer", "de", "Antwort auf die Sicherheitsfrage lautet Hasenfuss", "Hasenfuss"),
    _F("security_answer", "fr", "Réponse à la question secrète : Biscotte", "Biscotte"),
    _F("security_answer", "nl", "Het antwoord op de geheime vraag is Bolletje", "Bolletje"),
    _F("api_key", "en", "client secret: Hh7Jj2Kk9Ll4Mm1N", "Hh7Jj2Kk9Ll4Mm1N"),
    _F("api_key", "es", "Mi clave de API es Pp3Oo8Ii2Uu6Yy1T", "Pp3Oo8Ii2Uu6Yy1T"),
    _F("api_key", "it", "chiave API: Bb5Nn9Mm3Vv7Cc2X", "Bb5Nn9Mm3Vv7Cc2X"),
    _F("login", "en", "login is dave / Canyon!9", "Canyon!9"),
    _F("login", "es", "usuario pedro, contraseña Tortilla4", "Tortilla4"),
    _F(
        "previous_message",
        "en",
        "sure, it's Lavender",
        "Lavender",
        previous="What's your wifi password?",
    ),
    _F("previous_message", "en", "3306", "3306", previous="Tell me the PIN please"),
    _F(
        "previous_message", "de", "Bernstein9", "Bernstein9", previous="Sag mir bitte dein Kennwort"
    ),
    _F("previous_message", "fr", "c'est 4471", "4471", previous="Quel est ton code PIN ?"),
    _F(
        "split_key",
        "en",
        "second half: Yt6Re4Wq2Az8",
        "Yt6Re4Wq2Az8",
        previous="first half of my api key: Ui9Op7Kl5Jh3",
    ),
    _F(
        "split_key",
        "de",
        "zweite Hälfte: Rr4Tt6Zz8Uu2",
        "Rr4Tt6Zz8Uu2",
        previous="Der Token kommt in zwei Teilen, erste Hälfte: Ee1Ww3Qq5Aa7",
    ),
    _F("tool_call", "en", '{"wifi_password": "Otter&Stone"}', "Otter&Stone"),
    _F("tool_call", "es", '{"pin": "4040"}', "4040"),
    _F("tool_call", "nl", '{"wachtwoord": "Fietspad8"}', "Fietspad8"),
)


def _L(cls: str, lang: str, text: str, value: str, previous: str | None = None) -> Phrasing:
    return Phrasing(cls, lang, text, value, previous, batch="last")


# Written last, after every change to the detector; measured once and never tuned on.
LAST: tuple[Phrasing, ...] = (
    _L(
        "password",
        "en",
        "fyi, the password we use for the shed lock app is Lemonade88",
        "Lemonade88",
    ),
    _L("password", "en", "My password has been Dolphin42 since forever", "Dolphin42"),
    _L("password", "en", "pls remember: password = Cobalt!Sky", "Cobalt!Sky"),
    _L("password", "en", "I'm using Parsnip2 for my email password", "Parsnip2"),
    _L("password", "en", "The Wi-Fi password? Oh, it's Meadowlark", "Meadowlark"),
    _L("password", "de", "Das Passwort heißt Fliederbusch", "Fliederbusch"),
    _L("password", "de", "Ich verwende Kastanie77 als Passwort für alles", "Kastanie77"),
    _L("password", "es", "La contraseña que uso es Albahaca9", "Albahaca9"),
    _L("password", "fr", "Le mot de passe, c'est Framboise3", "Framboise3"),
    _L("password", "it", "La password che uso è Basilico8", "Basilico8"),
    _L("password", "pt", "A senha que eu uso é Mandioca4", "Mandioca4"),
    _L("password", "nl", "Het wachtwoord dat ik gebruik is Pannenkoek6", "Pannenkoek6"),
    _L("pin", "en", "PIN's 4096 btw", "4096"),
    _L("pin", "es", "El pin del móvil es 1357", "1357"),
    _L("pin", "nl", "Pincode van de creditcard: 8642", "8642"),
    _L("alarm_code", "en", "The code for the side gate is 5050", "5050"),
    _L("alarm_code", "de", "Alarmanlage: Code 7261", "7261"),
    _L("alarm_code", "pt", "Código da porta da garagem: 3344", "3344"),
    _L("security_answer", "en", "For 'mother's maiden name' I put Whitfield", "Whitfield"),
    _L("security_answer", "it", "Risposta di sicurezza: Pallino", "Pallino"),
    _L(
        "api_key",
        "en",
        "here is my openai key for the test env: 6f5e4d3c2b1a0f9e8d7c",
        "6f5e4d3c2b1a0f9e8d7c",
    ),
    _L("api_key", "de", "Der geheime Schlüssel: Kx3Vb8Nm2Qw7Er5T", "Kx3Vb8Nm2Qw7Er5T"),
    _L("login", "en", "username is sara and password is Pebble#3", "Pebble#3"),
    _L("login", "fr", "login : marc / Baguette2", "Baguette2"),
    _L(
        "previous_message",
        "en",
        "Grapefruit7",
        "Grapefruit7",
        previous="ok what password should I use for your account?",
    ),
    _L(
        "previous_message",
        "it",
        "Sì, è Limoncello",
        "Limoncello",
        previous="Mi dici la password del wifi?",
    ),
    _L(
        "split_key",
        "es",
        "segunda parte: Lo9Ki8Ju7Hy6",
        "Lo9Ki8Ju7Hy6",
        previous="La clave API no cabe, primera parte: Mj5Nh4Bg3Vf2",
    ),
    _L(
        "tool_call",
        "en",
        '{"action": "login", "user": "sam", "password": "Glacier55"}',
        "Glacier55",
    ),
    _L("tool_call", "de", '{"pin": "2244", "karte": "giro"}', "2244"),
    _L("tool_call", "fr", '{"code_alarme": "6160"}', "6160"),
)

PHRASINGS: tuple[Phrasing, ...] = TUNING + HELD_OUT + FRESH + LAST
