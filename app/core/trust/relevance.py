"""Does an answer answer the question asked? (Faithful is not right.)

The grounding check asks whether an answer is true to its passages; this asks whether it is
about what the customer asked. A draft that faithfully copies how to *change* a password
answers "I forgot my password, how do I reset it?" with a true but useless text. Two cheap
signals, both calibrated on labelled questions by `bench/calibrate_local_tier.py`:

- coverage: the share of the question's content words ("forgot", "reset", "password") that
  the answer, or the section titles of the passages it rests on, contain (the section's own
  title only: a page titled "... and resetting your password" covers every section in it). Words are
  compared by a crude stem (plural "s", "-ing"/"-ed"/"-e" dropped, first five letters), so
  "forgotten" meets "Forgot" and "resetting" meets "reset".
- similarity: cosine similarity (the bundled embedder) of the question to the answer read
  in the context of its section heading, as chunks and quote candidates are embedded.

A third, a rule: a question that asks for a quantity ("how long…", "how many…", "how often…")
is answered only by a text that states one. A draft saying "Railway deletes your data as per
the timeline below" to "how long will you keep my data?" is on topic, faithful and no answer.

The same signals judge a docs quote (is the quote confident enough to answer without
paying the frontier?), its lines beneath a kept draft (do they add to the answer?) and a
local draft (does it answer the question asked?), with thresholds calibrated separately:
a quote picks its sentences for the question and a draft does not, and lines beneath an
answer need only add some of what was asked.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

from app.core.text import below, prose_text

if TYPE_CHECKING:
    from app.core.docs.embeddings import Embedder
    from app.core.passage import Passage

# Calibrated by bench/calibrate_local_tier.py (--home with the Railway docs ingested) on the
# labelled questions of tests/data/knowledge_questions.jsonl, bench/data/railway_questions.jsonl
# and bench/data/railway_eval.jsonl that clear the relevance floor, on a grid of similarity
# 0.30-0.75 and coverage 0-1, and tested on tests/data/sample_eval.jsonl (held out: long,
# chatty customer questions). The figures include the quantity rule below, which rejected
# no good quote or simulated draft there.
#
# Quotes (extractive.py: up to 5 sentences from the first QUOTE_PASSAGES passages, a short
# passage whole): 255 fitted on (152 good: the labelled facts' numbers and most of their words,
# and a labelled file cited; 103 wrong, most of them on topic but missing part of the facts),
# 82 held out (58 good, 24 wrong).
#   similarity  coverage   fitted: good rejected / wrong through   held out: good rejected / wrong through
#     0.70        3/5             59.9% / 17.5%                            87.9% / 16.7%   (fewest errors)
#     0.45        3/5             25.0% / 55.3%                            58.6% / 41.7%   (the rule's pick)
#     0.60        1/2             24.3% / 56.3%                            46.6% / 25.0%   <- in use
# The two signals separate quotes only roughly (a quote missing one number of the facts reads
# as on topic as a whole one), and on the long held-out questions hardly at all. When several
# pairs make about as many errors (within 3 points), the one rejecting fewest good quotes is
# chosen, because the errors don't cost the same: a rejected good quote is a frontier call,
# a wrong one let through is verbatim docs that answer part of the question (or none of it),
# never a false statement. 0.60 / 1/2 was that pick while quotes read three passages (24.0% /
# 46.8% fitted, 50.9% / 27.6% held out). From five, the fitted sweep is flat: 0.60 / 1/2 makes
# 3.4 points more errors than the fewest, 0.4 outside the band; it rejects fewer good quotes
# than the rule's pick even there, and on the held-out questions it rejects fewer good ones and
# lets fewer wrong ones through. It stays.
QUOTE_MIN_SIMILARITY = 0.60
QUOTE_MIN_COVERAGE = 1 / 2
# A quote's lines beneath a kept draft (pipeline `_add_docs_lines`; quoted from the draft's own
# passages) ask less: the draft already answers, and the lines only add what it leaves out, so
# a quote is good here when it holds any part of the labelled facts, wrong when it holds none
# of them (or the question is unanswerable). Same questions, same rule (fewest errors, then the fewest good rejected within 3 points):
#   similarity  coverage   fitted: good rejected / wrong through   held out: good rejected / wrong through
#     0.60        2/5             25.8% / 32.4%                            46.7% / 0.0%    (fewest errors)
#     0.55        2/5             16.3% / 44.1%                            34.7% / 14.3%   <- chosen
#     0.60        1/2             31.2% / 29.4%                            54.7% / 0.0%    (the quote's own gate)
# 221 good and 34 wrong fitted, 75 and 7 held out: most quotes hold some of the facts. A wrong
# one let through is verbatim, cited docs beneath an answer that already answers.
LINES_MIN_SIMILARITY = 0.55
LINES_MIN_COVERAGE = 2 / 5
# Drafts: simulated (one or two consecutive sentences of the passages the local model is
# given): 833 fitted on (363 good: state the facts; 470 wrong: from a passage with nothing of
# the facts, or for an unanswerable question), 296 held out (106 good, 190 wrong).
#   similarity  coverage   fitted: good rejected / wrong through   held out: good rejected / wrong through
#     0.50        2/5             37.2% / 23.6%                            50.0% / 7.4%    <- chosen
#     0.40        2/5             27.8% / 33.0%                            40.6% / 9.5%    (fewest errors, by 0.004 points)
# The two tie on the fitted samples. The real 0.5B drafts of bench/answers.py decide: 0.40
# would keep all 4 of its drafts between 0.40 and 0.50, and each is wrong ("No. You can leave
# the hard limit blank…" to "will you warn me before I hit my hard usage limit?", SOC 2 for "is
# Railway ISO 27001 certified?", the reset steps for a Google sign-in, the support email
# without the hours); 3 of those questions get a right docs quote now.
# "Good rejected" counts single sentences that hold the facts but not the question's words
# (a real draft usually says more); "wrong let through" counts sentences of the right section
# that hold no part of the labelled facts. The change-vs-reset draft covers 1 of 3 words.
DRAFT_MIN_SIMILARITY = 0.50
DRAFT_MIN_COVERAGE = 2 / 5

# The quantity rule (module doc). On the calibration's samples no good quote or simulated
# draft for such a question lacked a quantity; it rejected 2 of 111 wrong quotes and 39 of
# 478 wrong drafts (bench/calibrate_local_tier.py prints it per set).
_ASKS_FOR_QUANTITY = re.compile(
    r"\bhow (long|many|much|often|frequently|big|large|soon|fast|far)\b|\bwhat(?:'s| is)? the (max|maximum|min|minimum)\b", re.I)
# A digit, a number word, or a word that is an answer to "how long/many/often" on its own.
_STATES_QUANTITY = re.compile(
    r"\d|\b(zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|forty|fifty|"
    r"sixty|ninety|hundred|thousand|million|dozen|once|twice|single|unlimited|never|forever|indefinitely|immediately|"
    r"instantly|free|hourly|daily|weekly|monthly|yearly|annually)\b", re.I)
_WORD = re.compile(r"[a-z0-9]+")
# Function words and the filler of customer questions ("how do I", "can you tell me"): they
# say nothing about what is asked, so neither side is scored on them.
_STOP = frozenset("""
a about above after again against all am an and any are as at be because been before being below between both but by
can could did do does doing done down during each few for from further had has have having he her here hers him his how
i if in into is it its itself just me more most my myself no nor not now of off on once only or other our ours out over
own same she should so some such than that the their them then there these they this those through to too under until
up very was we were what when where which while who whom why will with would you your yours yourself yourselves
hi hello hey thanks thank please okay ok also still ever really anyway anything something someone way ways
get gets got getting want wants need needs able tell let lets know go going make sure mean means one im ive dont cant
""".split())


def word_keys(text: str) -> set[str]:
    """The content words of `text`, each as a crude stem."""
    keys = set()
    for word in _WORD.findall(text.lower().replace("\u2019", "'").replace("'", "")):
        if word in _STOP or (len(word) < 3 and not word.isdigit()):
            continue
        keys.add(_stem(word))
    return keys


# Irregular forms common in support questions, which no suffix rule joins to their verb
# ("sent" to "sending", "paid" to "pay").
_IRREGULAR = {"sent": "send", "paid": "pay", "lost": "lose", "left": "leave", "kept": "keep", "bought": "buy",
              "made": "make", "took": "take", "taken": "take", "gave": "give", "given": "give", "forgot": "forget",
              "forgotten": "forget", "chose": "choose", "chosen": "choose", "wrote": "write", "written": "write",
              "ran": "run"}


def _stem(word: str) -> str:
    if word.isdigit():
        return word
    word = _IRREGULAR.get(word, word)
    if len(word) > 4 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    for suffix in ("ing", "ed", "e"):
        if len(word) - len(suffix) >= 4 and word.endswith(suffix):
            word = word[: -len(suffix)]
            break
    return word[:5]


def coverage(question: str, text: str) -> float:
    """Share of the question's content words that `text` contains (1.0 when it has none)."""
    wanted = word_keys(question)
    if not wanted:
        return 1.0
    return len(wanted & word_keys(text)) / len(wanted)


def heading_leaf(passage: Passage) -> str:
    return passage.heading.rsplit(">", 1)[-1].strip()


@dataclass(frozen=True)
class Relevance:
    similarity: float
    coverage: float
    ok: bool
    why: str


def clears(similarity: float, covered: float, min_similarity: float, min_coverage: float,
           quantity_missing: bool = False) -> bool:
    """The judgement's verdict: both thresholds, and the quantity rule (module doc)."""
    # Coverage is a fraction of a few words: 2 of 3 must clear a threshold of 2/3 however
    # either was rounded.
    return not quantity_missing and similarity >= min_similarity and covered >= min_coverage - 1e-9


def asked_quantity_missing(question: str, text: str) -> str:
    """What quantity the question asks for ("how long") when `text` states none; else ""."""
    asked = _ASKS_FOR_QUANTITY.search(question)
    return asked.group(0).lower() if asked and not _STATES_QUANTITY.search(prose_text(text)) else ""


def judge(similarity: float, covered: float, min_similarity: float, min_coverage: float, what: str,
          missing: str = "") -> Relevance:
    """`missing`: the quantity the question asks for that the text doesn't state (see above)."""
    ok = clears(similarity, covered, min_similarity, min_coverage, bool(missing))
    if missing:
        why = f"{what} states no number, and the question asks “{missing}”"
    elif ok:
        why = f"{what} matches the question (similarity {similarity:.2f}, covers {covered:.0%} of its words)"
    elif similarity < min_similarity:
        why = f"{what} is not close to the question (similarity {below(similarity, min_similarity)})"
    else:
        why = f"{what} leaves out what the question asks (covers {covered:.0%} of its words < {min_coverage:.0%})"
    return Relevance(similarity, covered, ok, why)


def quote_relevance(question: str, best_similarity: float, quoted_text: str, quoted: Sequence[Passage],
                    min_similarity: float = QUOTE_MIN_SIMILARITY, min_coverage: float = QUOTE_MIN_COVERAGE) -> Relevance:
    """Is a docs quote confident? `best_similarity` is its best sentence's score as the quote ranked it."""
    context = " ".join([quoted_text] + [heading_leaf(p) for p in quoted])
    return judge(best_similarity, coverage(question, context), min_similarity, min_coverage, "the docs quote",
                 asked_quantity_missing(question, quoted_text))


def draft_features(question: str, draft: str, supporting: Sequence[Passage], embedder: Embedder) -> tuple[float, float]:
    """(similarity, coverage) of a draft that rests on `supporting` (best first)."""
    prose = prose_text(draft)
    leaf = heading_leaf(supporting[0]) if supporting else ""
    vectors = embedder.embed([question, f"{leaf}: {prose}" if leaf else prose])
    similarity = float(vectors[1] @ vectors[0])
    context = " ".join([prose] + [heading_leaf(p) for p in supporting])
    return similarity, coverage(question, context)


def draft_relevance(question: str, draft: str, supporting: Sequence[Passage], embedder: Embedder,
                    min_similarity: float = DRAFT_MIN_SIMILARITY, min_coverage: float = DRAFT_MIN_COVERAGE) -> Relevance:
    """Does a checked local draft answer the question asked, not a neighbouring one?"""
    similarity, covered = draft_features(question, draft, supporting, embedder)
    return judge(similarity, covered, min_similarity, min_coverage, "the draft", asked_quantity_missing(question, draft))
