"""What may leave the machine: redaction of personal data and secrets, and local-only docs.

Everything sent to a frontier model passes `redact` first. Detectors are precise rather
than greedy: a support answer full of `[PHONE]` where prices and dates used to be is
useless, so card numbers must pass Luhn, IBANs their mod-97 checksum, phone numbers need
phone punctuation, and long tokens count as secrets only when they look random.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterable

if TYPE_CHECKING:
    from app.core.passage import Passage

PLACEHOLDERS = {"secret": "[SECRET]", "email": "[EMAIL]", "iban": "[IBAN]", "card": "[CARD]", "phone": "[PHONE]"}


@dataclass(frozen=True)
class Redaction:
    text: str
    count: int = 0
    kinds: dict[str, int] = field(default_factory=dict)


# Secrets with a known shape. Each pattern's "secret" group is what gets replaced, so
# "Authorization: Bearer [SECRET]" still tells the model what kind of thing was there.
_TOKEN_CHARS = r"[A-Za-z0-9._~+/=-]"
_KNOWN_SECRETS = [re.compile(pattern) for pattern in (
    r"(?P<secret>\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)",  # JWT
    r"(?P<secret>\bsk-ant-[A-Za-z0-9_-]{10,})",  # Anthropic
    r"(?P<secret>\bsk-(?:proj-|live-|test-)?[A-Za-z0-9_-]{16,})",  # OpenAI-style
    r"(?P<secret>\b[rsp]k_(?:live|test)_[A-Za-z0-9]{10,})",  # Stripe
    r"(?P<secret>\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}|\bgithub_pat_[A-Za-z0-9_]{20,})",  # GitHub
    r"(?P<secret>\bglpat-[A-Za-z0-9_-]{20,})",  # GitLab personal access token
    r"(?P<secret>\bxox[abposr]-[A-Za-z0-9-]{10,}|\bxapp-\d-[A-Za-z0-9-]{10,})",  # Slack bot/user/app tokens
    r"(?P<secret>\b(?:AKIA|ASIA)[0-9A-Z]{16}\b)",  # AWS access key id
    r"(?P<secret>\bAIza[0-9A-Za-z_-]{35})",  # Google API key
)]
# Header values: a digit or length marks a credential, so "Bearer authentication" stays.
_BEARER = re.compile(rf"\b(?i:bearer|basic)\s+(?P<secret>(?=\S*\d){_TOKEN_CHARS}{{8,}}|{_TOKEN_CHARS}{{20,}})")
# Credentials named by a label. The value decides: "password: hunter22" goes, while
# "password: process.env.DB_PASSWORD", "<PROJECT_TOKEN>" or "YOUR_CLIENT_SECRET" in a
# docs code sample is a reference or placeholder, not a secret (see _is_placeholder).
_CREDENTIAL_WORD = r"(?:password|passwd|passphrase|pwd|secret|token|api[ _-]?key|apikey|access[ _-]?key|private[ _-]?key|credentials?)"
# "Authorization: Token abc…": whatever the scheme, the header's value is the credential,
# even one made of letters only.
_AUTH_HEADER = re.compile(
    r"(?i:\bauthorization)[\"']?\s*[:=]\s*[\"'`]?(?:(?i:bearer|basic|token|bot|digest|apikey)\s+)?(?P<secret>[^\s\"'`,;]{6,})")
# aws_secret_access_key=…, DB_PASSWORD: …, "api key" = "…": the label may be one part of a
# longer name, but not "max_tokens" or "token_expiry".
_LABELLED = re.compile(
    rf"(?<![\w-])(?i:(?:[a-z0-9]+[_-])*{_CREDENTIAL_WORD}(?:[_-](?:access|key|id|value|secret|token|string))*)"
    r"[\"']?\s*(?:[:=]|=>)\s*[\"'`]?(?P<secret>[^\s\"'`,;]{6,})")
# "my password is hunter2": a person telling us a credential, whatever it looks like.
_FIRST_PERSON = re.compile(
    rf"\b(?i:my|our)\s+(?:\w+\s+)?(?i:{_CREDENTIAL_WORD}|pin|passcode)\s+(?i:is|was)\s*[:=]?\s*[\"'“]?(?P<secret>[^\s\"'”,;.!?]{{4,}})")
# A value right after a credential word with no ":" or "=" ("API key 9aKd83jf…") counts
# only when it looks like a key: 16+ characters, letters and digits.
_NAMED_KEY = re.compile(rf"\b(?i:{_CREDENTIAL_WORD})\s+(?P<secret>(?=[^\s]*\d)(?=[^\s]*[A-Za-z])[A-Za-z0-9_\-+/=.]{{16,}})")
# Words that follow a label without being the credential: "my password is wrong",
# "Authorization: Bearer`" in prose about the header.
_NOT_A_SECRET = frozenset((
    "bearer", "basic", "token", "digest", "password", "secret", "header",
    "not", "wrong", "incorrect", "invalid", "expired", "correct", "too", "being", "still", "the", "a", "an",
    "rejected", "locked", "no", "also", "right", "saved", "stored", "set", "reset", "changed", "working",
    "accepted", "fine", "strong", "weak", "long", "short", "case", "at", "in", "on", "from", "same",
    "different", "very", "really", "now", "already", "just", "and", "but", "what", "how", "correctly",
    "definitely", "probably", "never", "always", "empty", "blank", "missing", "lost", "forgotten", "compromised",
))
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
# process.env.X, os.environ[…], redisURL.password, getenv(…): code that looks a secret up.
_CODE_REFERENCE = re.compile(r"[A-Za-z_$]+(?:\??\.[A-Za-z_$][\w$]*)+|[A-Za-z_]\w*[(\[]")
_WORDS = re.compile(r"[A-Za-z]+(?:[-_.][A-Za-z]+)*")
# Candidates for unnamed secrets: long runs of base64/hex alphabet, judged by `_looks_random`.
_LONG_TOKEN = re.compile(r"(?<![A-Za-z0-9+/_=-])[A-Za-z0-9+/_-]{32,}={0,2}(?![A-Za-z0-9+/_=-])")
# A path segment that is a plain word ("/organizations/") marks a path, not a key.
_WORD_SEGMENT = re.compile(r"(?:^|/)[a-z]{3,}(?:-[a-z]+)*(?:/|$)")
_PIECE = re.compile(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+")
_VOWEL = re.compile(r"[aeiouyAEIOUY]")
# Vowel-less acronyms that identifiers are built from (NodeStreamableHTTPServerTransport).
_ACRONYMS = frozenset(("HTTP", "HTTPS", "URL", "URLS", "XML", "SQL", "TCP", "DNS", "SSL", "TLS", "JWT", "CLI", "SDK", "RPC", "GRPC", "MCP", "SMTP", "SSH", "CSS", "HTML"))
_RUNS = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789"
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}(?![\w-])")
# Any case and grouping ("de89 3704 …", "nl91abna…"): people type IBANs as they like. The
# mod-97 checksum (and 8+ digits after the bank code) keeps prose and hashes out.
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?:[ -]?[A-Za-z0-9]{4}){2,7}(?:[ -]?[A-Za-z0-9]{1,3})?\b")
_CARD = re.compile(r"(?<![\d.,/-])[2-6]\d{3}(?:[ -]?\d){9,15}(?![\d-]|[.,]\d)")
_PHONE = re.compile(
    r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\w-])"  # +44 20 7946 0958, +1 (415) 555-0100
    r"|(?<![\w$.,/-])(?:1[ .-])?\(\d{3}\)[ .-]?\d{3}[ .-]\d{4}(?![\w-])"  # (415) 555-0100
    r"|(?<![\w$.,/-])(?<!\d )(?:1[ .-])?\d{3}([ .-])\d{3}\1\d{4}(?![\w-]|[.,]\d)"  # 415-555-0100 (not "25 465 587 2525")
    r"|(?<![\w+])00[1-9]\d{0,2}(?:[ .-]?\(?\d{1,4}\)?){2,5}(?![\w-])"  # 0049 30 1234567: 00 dials abroad like +
    r"|(?<![\w$.,/-])0\d{2,4}[ -]\d{3,4}[ -]?\d{3,4}(?![\w-]|[.,]\d)"  # 020 7946 0958, 07700 900123: trunk 0
)
# A bare run of 10-11 digits is an order or ticket number as often as a phone number, so it
# counts only right after a word that says "phone" ("call me on 5551234567").
_PHONE_CUE = re.compile(
    r"\b(?i:call|phone|tel|telephone|mobile|cell|cellphone|sms|whatsapp|fax|ring|dial)\b[^\d\n]{0,20}?(?<!\d)(?P<number>\d{10,11})(?![\w-]|[.,]\d)"
)


def redact(text: str, keep: Iterable[str] = ()) -> Redaction:
    """Replace secrets, emails, IBANs, payment cards and phone numbers with placeholders.

    `keep` lists email addresses that may be sent as they are (the docs' own published
    addresses, e.g. support@quillstack.example); everything else personal is replaced.
    """
    keep_lower = {address.lower() for address in keep}
    spans: list[tuple[int, int, str]] = []  # detectors run in priority order; first claim wins

    def claim(start: int, end: int, kind: str) -> None:
        if not any(start < taken_end and taken_start < end for taken_start, taken_end, _ in spans):
            spans.append((start, end, kind))

    for pattern in _KNOWN_SECRETS:
        for match in pattern.finditer(text):
            claim(match.start("secret"), match.end("secret"), "secret")
    for pattern in (_BEARER, _AUTH_HEADER, _LABELLED, _NAMED_KEY):
        for match in pattern.finditer(text):
            if not _is_placeholder(match.group("secret")):
                claim(match.start("secret"), match.end("secret"), "secret")
    for match in _FIRST_PERSON.finditer(text):
        if match.group("secret").lower() not in _NOT_A_SECRET:
            claim(match.start("secret"), match.end("secret"), "secret")
    for match in _LONG_TOKEN.finditer(text):
        for start, end in _random_segments(match.group(0), match.start()):
            claim(start, end, "secret")
    for match in _EMAIL.finditer(text):
        if match.group(0).lower() not in keep_lower:
            claim(match.start(), match.end(), "email")
    for match in _IBAN.finditer(text):
        iban = _valid_iban_prefix(match.group(0))
        if iban:
            claim(match.start(), match.start() + len(iban), "iban")
    _claim_valid(text, _CARD, _is_card, "card", claim)
    _claim_valid(text, _PHONE, _is_phone, "phone", claim)
    for match in _PHONE_CUE.finditer(text):
        claim(match.start("number"), match.end("number"), "phone")

    kinds = Counter(kind for _, _, kind in spans)
    for start, end, kind in sorted(spans, reverse=True):
        text = text[:start] + PLACEHOLDERS[kind] + text[end:]
    return Redaction(text, len(spans), dict(kinds))


def _claim_valid(text: str, pattern: re.Pattern, valid: Callable[[str], bool], kind: str, claim) -> None:
    for match in pattern.finditer(text):
        if valid(match.group(0)):
            claim(match.start(), match.end(), kind)


def _is_placeholder(value: str) -> bool:
    """True for a labelled value that is not a credential: a variable, a lookup in code, an
    elided or template example ("XXXX-XXXX", "qs_live_4f9c..."), or plain words."""
    if value.rstrip("\"'`,;)").endswith(("...", "…")):
        return True
    value = value.strip("\"'`.,:)")
    if value.lower() in _NOT_A_SECRET or value[:1] in "<{[($%*#":
        return True
    if _ENV_NAME.fullmatch(value) or _CODE_REFERENCE.match(value) or value.lower().startswith(("your", "example")):
        return True
    if len(set(value.lower()) - set("-_.")) <= 1:  # xxxxxxxx, XXXX-XXXX, 00000000
        return True
    # Words ("a-strong-password", "myProjectToken"): random keys measured at most ~75% word-like
    # when mixed-case; a digit ("Sup3rSecret") or an unpronounceable run ("XkqPzWm") is a secret.
    return bool(_WORDS.fullmatch(value)) and _wordiness(value) >= (0.6 if value.islower() else 0.8)


def _random_segments(token: str, offset: int) -> list[tuple[int, int]]:
    """Spans of `token` that look like secrets. Paths are judged per segment, so
    /v2/organizations/members keeps its words while a random id inside it goes."""
    if _looks_random(token) and not token.startswith("/"):
        return [(offset, offset + len(token))]
    spans, position = [], 0
    for segment in token.split("/"):
        if len(segment) >= 32 and _looks_random(segment):
            spans.append((offset + position, offset + position + len(segment)))
        position += len(segment) + 1
    return spans


def _looks_random(token: str) -> bool:
    body = token.rstrip("=")
    if len(body) < 32 or _UUID.match(body) or _WORD_SEGMENT.search(body):
        return False
    if any(body[i:i + 6] in _RUNS for i in range(len(body) - 5)):  # "abcdef…0123…": an alphabet, not a key
        return False
    classes = sum(any(test(ch) for ch in body) for test in (str.islower, str.isupper, str.isdigit))
    if classes < 2:  # one class is a long number or a shouted word, not a key
        return False
    if all(ch in "0123456789abcdefABCDEF" for ch in body):  # digests and hex keys: 16 symbols
        return _entropy(body) >= 3.0
    # Identifiers and slugs are made of pronounceable words; measured on random keys,
    # word-like pieces cover at most ~75% of a mixed-case key and ~95% of a lowercase one.
    if _wordiness(body) >= (0.6 if "-" in body or "_" in body else 0.9):
        return False
    return _entropy(body) >= 3.5


def _wordiness(token: str) -> float:
    """Share of letters and digits in vowel-bearing word pieces of 3+ letters (camelCase split)."""
    covered = sum(len(piece) for piece in _PIECE.findall(token)
                  if len(piece) >= 3 and piece.isalpha() and (_VOWEL.search(piece) or piece in _ACRONYMS))
    return covered / max(1, sum(ch.isalnum() for ch in token))


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _is_card(candidate: str) -> bool:
    digits = [int(ch) for ch in candidate if ch.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def _valid_iban_prefix(candidate: str) -> str:
    """The longest valid IBAN that starts the candidate, cutting whole groups off its end:
    "de89 3704 0044 0532 0130 00 info" is the IBAN and then a word."""
    while candidate:
        if _is_iban(candidate):
            return candidate
        cut = max(candidate.rfind(" "), candidate.rfind("-"))
        candidate = candidate[:cut] if cut > 0 else ""
    return ""


def _is_iban(candidate: str) -> bool:
    compact = re.sub(r"[ -]", "", candidate).upper()
    if not 15 <= len(compact) <= 34 or sum(ch.isdigit() for ch in compact[4:]) < 8:
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _is_phone(candidate: str) -> bool:
    digits = sum(ch.isdigit() for ch in candidate)
    if candidate.startswith("+"):
        return 7 <= digits <= 15
    if candidate.startswith("00"):  # 00 + a country code + the number: E.164 allows 15 after the 00
        return 9 <= digits <= 17
    return digits in (10, 11)


def is_local_only(file: str, globs: Iterable[str], root: str = "") -> bool:
    """True when `file` (relative to the docs folder `root`) matches a local-only pattern.

    Patterns follow .gitignore, so they fail closed the way people expect:
    - a pattern without a slash ("notes.md", "*.pdf", "hr") matches that name at any depth;
    - a leading slash anchors at the docs folder ("/internal/"), as does a slash inside
      ("billing/refunds.md"); an absolute path inside `root` works too;
    - a trailing slash means a folder and everything under it ("hr/"); a pattern matching a
      folder covers everything under it anyway;
    - "*" and "?" stay within one folder, "**" spans zero or more folders ("billing/**/x.md");
    - matching ignores case (refunds.MD), as the file systems of most laptops do.
    There is no "!" negation: this list only ever adds files.
    """
    path, root = _posix(file), _posix(root).rstrip("/")
    if root and _under(path, root):
        path = path[len(root):]
    # An absolute file with no known root: any folder on its path may be the docs folder,
    # so anchored patterns are tried at each of them (more files stay local, never fewer).
    starts = [path.lstrip("/")]
    if path.startswith("/") and not root:
        parts = starts[0].split("/")
        starts = ["/".join(parts[i:]) for i in range(len(parts))]
    for glob in globs:
        glob = _posix(glob.strip())
        if root and _under(glob.rstrip("/") + "/", root):
            glob = glob[len(root):] if glob[len(root):].strip("/") else "**"  # the docs folder itself: all of it
        compiled = _gitignore_regex(glob)
        if compiled is None:
            continue
        regex, folder_only = compiled
        for start in starts:
            parts = start.split("/")
            folders = ["/".join(parts[:i]) for i in range(1, len(parts))]
            candidates = folders if folder_only else folders + [start]
            if any(regex.fullmatch(candidate) for candidate in candidates):
                return True
    return False


def _posix(path: str) -> str:
    path = re.sub(r"^[A-Za-z]:(?=/)", "", path.replace("\\", "/"))  # C:\docs -> /docs
    while path.startswith("./"):
        path = path[2:]
    return path


def _under(path: str, folder: str) -> bool:
    return path.lower().startswith(folder.lower() + "/")


def _gitignore_regex(glob: str) -> tuple[re.Pattern, bool] | None:
    """(regex over a root-relative path, whether the pattern names only folders)."""
    folder_only = glob.endswith("/")
    glob = glob.rstrip("/")
    anchored = "/" in glob  # a slash at the start or in the middle ties the pattern to the root
    glob = glob.lstrip("/")
    if not glob:
        return None
    segments = glob.split("/")
    regex = "" if anchored else "(?:[^/]+/)*"  # unanchored: the name at any depth
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            regex += ".*" if last else "(?:[^/]+/)*"  # zero or more folders
        else:
            regex += _segment_regex(segment) + ("" if last else "/")
    return re.compile(regex, re.IGNORECASE), folder_only


def _segment_regex(segment: str) -> str:
    out, i = [], 0
    while i < len(segment):
        ch = segment[i]
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[" and segment.find("]", i + 2) != -1:  # a character class, "!" or "^" negating
            close = segment.find("]", i + 2)
            body = segment[i + 1:close]
            negate = body[:1] in "!^"
            body = (body[1:] if negate else body).replace("\\", "\\\\").replace("[", "\\[")
            out.append("[" + ("^" if negate else "") + body + "]")
            i = close
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def published_emails(passages: list[Passage]) -> set[str]:
    """Role addresses the company publishes (support@, billing@ ...): not personal, so not redacted.

    A role name alone is not enough: billing@acme-corp.com in a passage about a customer is
    the customer's. The company's own domain recurs across its docs, so a role address is
    kept only when its domain (subdomains folded: sign.quillstack.example counts as
    quillstack.example) appears, in an address or a link, in passages from at least two
    different files. One file naming a domain, however often, does not make it ours.
    """
    roles = {"support", "help", "billing", "sales", "security", "privacy", "legal", "info", "contact", "noreply",
             "no-reply", "abuse", "dpo", "team", "hello", "partners", "press", "bugbounty", "compliance", "feedback"}

    def site(host: str) -> str:
        labels = host.lower().rstrip(".").split(".")
        # acme.co.uk is one site, as quillstack.example is
        keep = 3 if len(labels) > 2 and len(labels[-1]) == 2 and labels[-2] in {"co", "com", "org", "net", "ac", "gov", "edu"} else 2
        return ".".join(labels[-keep:])

    files_by_site: dict[str, set[str]] = {}
    candidates = set()
    for passage in passages:
        for email in re.findall(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", passage.text):
            local, host = email.split("@")
            files_by_site.setdefault(site(host), set()).add(passage.file)
            if local.lower() in roles:
                candidates.add(email)
        for host in re.findall(r"https?://([\w-]+(?:\.[\w-]+)+)", passage.text):
            files_by_site.setdefault(site(host), set()).add(passage.file)
    return {email for email in candidates if len(files_by_site[site(email.split("@")[1])]) >= 2}
