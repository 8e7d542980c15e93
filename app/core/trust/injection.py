"""Documents are data: passages that talk to the assistant are quarantined.

Retrieved passages that address the model ("ignore previous instructions", "SYSTEM:",
"the assistant must ...", forged <passage>/<system> delimiters) never reach a model, an
extractive answer or the grounding evidence. This is one layer: prompts also delimit
passages and say they are data, and the grounding check rejects claims no clean passage
supports. Patterns are specific to text aimed at an AI, so ordinary docs ("ignore this
warning if ...") pass: no chunk of the sample docs or the Railway docs is held back.

Text is matched as a reader sees it (see `normalise`), so zero-width characters, full-width
letters and Cyrillic look-alikes don't hide a phrase, and the heading and file name are
screened as well as the text, since both reach the model as section="…" and source="…".
"""
from __future__ import annotations

import re
import unicodedata

from app.core.passage import Passage

# Letters from other scripts that render like Latin ones ("Іgnore" with a Cyrillic І).
# Only the look-alikes an attacker needs to spell English instructions; matching reads
# the mapped text, the passage itself is never changed.
_CONFUSABLES = str.maketrans({
    **dict(zip("АВЕЅІЈКМНОРСТХУаеіјоросхуѕԁһӏ", "ABESIJKMHOPCTXYaeijopocxysdhl")),  # Cyrillic
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧαεικνορτυχ", "ABEZHIKMNOPTYXaeikvoptux")),  # Greek
    "ı": "i", "ℓ": "l",
})
# Chat-template control tokens of the common open models (ChatML, Llama 2/3, Mistral,
# Gemma, Phi); a document has no business containing them.
_CONTROL_TOKENS = (
    r"<\|[a-z_]+\|>|\[/?INST\]|<</?SYS>>|<(?:start|end)_of_turn>|\[/?(?:SYSTEM_PROMPT|AVAILABLE_TOOLS|TOOL_CALLS)\]"
)
_AI = r"(?:assistants?|chat ?bots?|(?:language )?models?|LLMs?|AIs?|bots?|agents?|copilots?)"
_ORDER = r"(must|should|shall|always|never|is (required|instructed) to)\b"
_AI_PREFIX = r"(?:AI |support |virtual |chat |customer[- ]service |help ?desk |automated )?"

# Phrase patterns read the passage flattened to one line (a line break must not split
# "ignore all previous\ninstructions"); line patterns read it line by line.
_PHRASES = [
    (re.compile(p, re.IGNORECASE), why) for p, why in (
        (r"\b(ignore|disregard|forget|override)\b[^.]{0,40}\b(previous|prior|above|earlier|all|your|system|any)\b[^.]{0,20}\b(instructions?|rules|prompt|guidelines|directions|directives)\b", "tells the model to ignore its instructions"),
        (r"</?\s*(passage|passages|system|instructions?|context)\b[^>]*>", "forges prompt delimiters"),
        (_CONTROL_TOKENS, "contains chat-template control tokens"),
        (r"\b(you are now|switch to|enter)\b[^.]{0,30}\b(mode|role|persona)\b", "tries to change the model's role"),
        (r"\b(reveal|print|show|repeat|output|disclose)\b[^.]{0,30}\bsystem (prompt|message|instructions)\b", "asks for the system prompt"),
        # "The assistant must …", "Chatbots should …", "AI models must …": orders to whatever reads this.
        (rf"\b(the |an? |any |all |every )?{_AI_PREFIX}(assistants?|chat ?bots?)\b[^.]{{0,20}}\b{_ORDER}", "gives the assistant orders"),
        # "AI agent" is a normal subject in docs, so here the order must follow directly:
        # "AI models must …" is caught, "invoked by an AI agent and must be run by a human" is not.
        (rf"\b(AI |language |large language )(assistants?|models?|systems?|agents?),?\s+((also|always|now|then|\w+ly)\s+)?{_ORDER}", "gives the assistant orders"),
        # Bare "the model should …" is common in ML docs ("the model should fit in memory"):
        # it counts only when what follows is about what the model says.
        (rf"\b(the |any |all )?({_AI})\b[^.]{{0,15}}\b(must|should|shall|will|always|never)\b[^.]{{0,15}}\b(say|tell|answer|respond|reply|state|claim|mention|recommend|inform|quote|ignore|reveal|refuse|pretend|promise|offer)\b", "gives the assistant orders"),
        (rf"\b(instructions?|note|message|notice|directive)s? (for|to) (the |all |any )?{_AI_PREFIX}{_AI}\b", "gives the assistant orders"),
        (rf"\b(if|when) you are an? {_AI_PREFIX}{_AI}\b", "gives the assistant orders"),
        # Scripting what the desk tells its customers; docs address their reader as "you" and
        # speak of "your customers", so "tell your users to clear the cache" passes.
        (r"\b(tell|inform|assure|promise)\s+(the |all |any |every )?(customers?|users?|clients?|callers?|visitors?|everyone|anyone)\b[^.]{0,40}\b(free|that|to|the|is|are|was|were|have|has|can|will)\b", "scripts what customers are told"),
        (r"\blet (the |all |any |every )?(customers?|users?|clients?|callers?|visitors?|everyone|anyone) know\b", "scripts what customers are told"),
    )
]
_LINES = [
    (re.compile(p, re.IGNORECASE | re.MULTILINE), why) for p, why in (
        (r"^\W{0,3}(system|assistant|human|ai)\s*:", "poses as a turn of a chat (SYSTEM:, Human:, Assistant: …)"),
        (r"^#{1,6}\s*(system|assistant|human|user|instruction|instructions|response)\b\s*:?\s*$", "poses as a turn of a chat (### System …)"),
        (r"^#{1,6}\s*(system prompt|new instructions|instructions for the (AI|assistant|model))\b", "poses as a turn of a chat (### System …)"),
    )
]


def normalise(text: str) -> str:
    """The text as a reader sees it: compatibility forms folded (full-width "Ｉｇｎｏｒｅ"),
    invisible format characters dropped ("ig\u200bnore"), look-alike letters mapped to Latin."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("Cf", "Mn", "Me"))
    return text.translate(_CONFUSABLES)


def injection_reason(text: str) -> str | None:
    """Why `text` addresses the model rather than the customer, or None."""
    text = normalise(text)
    flat = " ".join(text.split())
    for pattern, why in _PHRASES:
        if pattern.search(flat):
            return why
    for pattern, why in _LINES:
        if pattern.search(text):
            return why
    return None


def passage_injection_reason(passage: Passage) -> str | None:
    """Screens everything about a passage that a model is shown: its text, its heading path
    (sent as section="…") and its file name (sent as source="…")."""
    why = injection_reason(passage.text)
    if why:
        return why
    # Heading levels and path folders become lines, so "SYSTEM: …" as a heading reads as one.
    for label, value in (("heading", passage.heading.replace(" > ", "\n")), ("file name", _words_of_path(passage.file))):
        why = injection_reason(value)
        if why:
            return f"{why} (in its {label})"
    return None


def _words_of_path(file: str) -> str:
    # "ignore-previous-instructions.md" reads as the words it spells
    return re.sub(r"[-_.]+", " ", file.replace("\\", "/")).replace("/", "\n")


def quarantine(passages: list[Passage]) -> tuple[list[Passage], list[tuple[Passage, str]]]:
    """Split passages into (clean, [(quarantined passage, why)])."""
    clean, held = [], []
    for passage in passages:
        why = passage_injection_reason(passage)
        (held.append((passage, why)) if why else clean.append(passage))
    return clean, held
