"""The measures `frontdesk eval` reports, as pure functions of plain values.

A measure with nothing to measure is None (shown as "–"), never 0: "no question was
labelled frontier" and "every frontier question was missed" must not look alike.
"""
from __future__ import annotations

import math
import re
import string
from collections import Counter
from typing import Iterable, Sequence

from app.core.evaluation.facts import CITATION, shown_as_fact


def share(part: float, whole: float) -> float | None:
    return part / whole if whole else None


# --- routing -------------------------------------------------------------------------------

def classification(pairs: Sequence[tuple[str, str]], labels: Iterable[str] = ()) -> dict:
    """Accuracy, per-label precision/recall/F1 and the confusion matrix of (expected, predicted)
    pairs. `labels` fixes the order (and lists labels that never occur); others follow, sorted."""
    order = list(dict.fromkeys([*labels, *sorted({label for pair in pairs for label in pair} - set(labels))]))
    confusion = {expected: {predicted: 0 for predicted in order} for expected in order}
    for expected, predicted in pairs:
        confusion[expected][predicted] += 1
    per_label = {}
    for label in order:
        tp = confusion[label][label]
        expected = sum(confusion[label].values())
        predicted = sum(row[label] for row in confusion.values())
        fp, fn = predicted - tp, expected - tp
        per_label[label] = {
            "precision": share(tp, predicted),
            "recall": share(tp, expected),
            # 2tp / (2tp + fp + fn) is the harmonic mean when both are defined, and 0 when a
            # label is expected but never predicted (or predicted but never right).
            "f1": share(2 * tp, 2 * tp + fp + fn),
            "expected": expected,
            "predicted": predicted,
        }
    right = sum(confusion[label][label] for label in order)
    return {"n": len(pairs), "accuracy": share(right, len(pairs)), "labels": per_label, "confusion": confusion}


# --- retrieval -----------------------------------------------------------------------------

def first_rank(hits: Iterable[bool]) -> int | None:
    """1-based rank of the first relevant passage; None when none of them is."""
    return next((rank for rank, hit in enumerate(hits, 1) if hit), None)


def ranking_scores(ranks: Sequence[int | None]) -> dict:
    """hit@1, hit@5 and mean reciprocal rank over questions (a miss scores 0)."""
    n = len(ranks)
    return {
        "n": n,
        "hit@1": share(sum(1 for r in ranks if r is not None and r <= 1), n),
        "hit@5": share(sum(1 for r in ranks if r is not None and r <= 5), n),
        "mrr": sum(1 / r for r in ranks if r is not None) / n if n else None,
    }


_MARKUP = str.maketrans("", "", "`*")


def _heading_parts(text: str) -> list[str]:
    return [" ".join(part.translate(_MARKUP).split()).casefold() for part in text.split(">") if part.strip()]


def heading_matches(wanted: str, heading_path: str) -> bool:
    """The heading path ("Billing > Plans > Team plan", as passages store it) contains the wanted
    heading as whole parts, case-insensitively: "team plan" and "Plans > Team plan" match it, and
    so does a sub-section's path ("... > Team plan > Limits"); "plan" does not. Stored headings
    keep their Markdown ("Options for `delete`"): one copied as rendered matches too."""
    want, have = _heading_parts(wanted), _heading_parts(heading_path)
    if not want:
        return False
    return any(have[i:i + len(want)] == want for i in range(len(have) - len(want) + 1))


# --- answers -------------------------------------------------------------------------------

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower case, no punctuation, no articles, single spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


def answer_tokens(answer: str) -> list[str]:
    """An answer's tokens as a customer reads them as fact: without ⟦unverified⟧ spans or [n] markers."""
    return normalize_answer(CITATION.sub(" ", shown_as_fact(answer))).split()


def token_f1(answer: str, reference: str) -> float:
    """SQuAD-style token F1 of an answer against a reference answer."""
    got, want = answer_tokens(answer), normalize_answer(reference).split()
    if not got or not want:
        return float(got == want)
    common = sum((Counter(got) & Counter(want)).values())
    if not common:
        return 0.0
    precision, recall = common / len(got), common / len(want)
    return 2 * precision * recall / (precision + recall)


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


# --- latency and cost ----------------------------------------------------------------------

def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100), interpolated between the closest ranks (numpy's default)."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def latency(values: Iterable[float | None]) -> dict:
    """p50 and p95 in milliseconds of the values measured (None = the stage did not happen)."""
    measured = [v for v in values if v is not None]
    return {"n": len(measured), "p50_ms": percentile(measured, 50), "p95_ms": percentile(measured, 95)}


def cost(turns: Sequence[tuple[float, float, bool]]) -> dict:
    """Spend against an all-frontier desk over (cost, all-frontier cost, passed the check) turns.

    The project's rule (as the ledger's summary): only an answer that passed the grounding
    check counts at its all-frontier price; any other turn delivered nothing an all-frontier
    desk would have been paid for, so it counts at its own spend and claims no saving.
    """
    n = len(turns)
    spend = sum(spent for spent, _, _ in turns)
    all_frontier = sum(frontier if checked else spent for spent, frontier, checked in turns)
    per_1000 = (lambda usd: usd * 1000 / n) if n else (lambda usd: None)
    return {
        "questions": n,
        "spend_usd": spend,
        "all_frontier_usd": all_frontier,
        "spend_per_1000_usd": per_1000(spend),
        "all_frontier_per_1000_usd": per_1000(all_frontier),
        "savings_per_1000_usd": per_1000(all_frontier - spend),
        "savings_share": share(all_frontier - spend, all_frontier),
    }
