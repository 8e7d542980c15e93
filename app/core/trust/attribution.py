"""Which passages each answer sentence rests on, and how well they support it by meaning.

A claim sentence's `[n]` marks are its attribution when it has them; otherwise it is
attributed to the passages closest to it: by meaning (the best cosine to a passage sentence
or run of up to WINDOW consecutive ones) blended with the share of its content words the
passage uses, or by shared words alone without an embedder. The grounding check
(`app.core.trust.grounding`) checks each sentence's facts against these passages and judges
the answer's support from these scores; the constants here were calibrated with its
thresholds (see the table there).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.core.text import CITATION_MARK, prose_text, split_sentences, word_count

if TYPE_CHECKING:
    from app.core.docs.embeddings import Embedder
    from app.core.passage import Passage

# Fewer words: no claim without a fact, too short to judge by meaning or to call copied. Defined
# here, not in grounding, because grounding imports from this module and not the reverse.
MIN_CLAIM_WORDS = 4
WINDOW = 3  # passage sentences an answer sentence may merge or sum up
COVERAGE_BASE, COVERAGE_WEIGHT = 0.6, 0.5
# Passages this close to the best also support the sentence: retrieved passages often say the
# same thing, and a sentence's figure may come from any of them. A passage much further away
# in meaning is another subject, and its figures may not dress up this sentence.
ATTRIBUTION_MARGIN = 0.12
MAX_ATTRIBUTED = 3
# A passage a little further off may still lend a sentence the one figure, link or name its
# nearer passages lack: retrieved passages on one subject split its details ("FHA loans need
# 3.5% down" sits in the second-closest FHA passage). Far off (another subject) it may not.
# Only with an embedder: shared words alone are too coarse to tell "near" from "other".
FACT_MARGIN = 0.3
MIN_SHARED_WORDS = 2
_WORD_TOKEN = re.compile(r"[a-z][a-z0-9'-]*")
_STOPWORDS = set("""a about above after again against all also am an and any are as at be because been before being
below between both but by can cannot could did do does doing done during each either etc few for from further had has
have having he her here hers him his how i if in into is it its itself just may me might more most much must my no nor
not now of off on once only or other our ours out over own per same she should so some such than that the their theirs
them then there these they this those through to too under until up upon us very via was we were what when where whether
which while who whom whose why will with within without would yes yet you your yours don't doesn't can't isn't aren't
won't it's you're they're there's that's i'm get gets got getting make makes made use uses used using need needs
want go goes take takes give gives see know like""".split())  # function words and verbs too common to say where a sentence came from


@dataclass(frozen=True)
class SentenceSupport:
    """One claim sentence of the answer and the passages it rests on."""
    start: int
    end: int
    passages: tuple[int, ...]  # 0-based, best first: the ones it cites, else the ones it was attributed to
    score: float  # support by its passages: similarity blended with word overlap (word overlap alone without an embedder)
    cited: bool = False  # the answer cited these passages itself with [n]
    near: tuple[int, ...] = ()  # further passages within FACT_MARGIN: they may support its facts, not its meaning


def attribute(answer: str, claims: list[tuple[int, int, str]], passages: list[Passage],
              embedder: Embedder | None) -> list[SentenceSupport]:
    """Each claim's passages, best first, and how well they support it."""
    count = len(passages)
    similarity, coverage, union_coverage = support_features([prose for _, _, prose in claims], passages, embedder)
    words = [content_words(prose) for _, _, prose in claims]
    # A sentence copied from a passage is supported by it, whatever the embedder makes of a
    # sentence cut out of its context (a copied doc sentence scored 0.73 against its own passage).
    passage_texts = [_plain(f"{p.heading} {p.text}") for p in passages]
    copied = [{p for p in range(count) if len(_plain(prose).split()) >= MIN_CLAIM_WORDS and _plain(prose) in passage_texts[p]}
              for _, _, prose in claims]

    def shared(i: int, p: int) -> int:
        return round(coverage[i][p] * len(words[i]))

    results = []
    for i, (start, end, _) in enumerate(claims):
        cited = cited_passages(answer[start:end], count)
        candidates = cited or tuple(range(count))
        strength = {p: 1.0 if p in copied[i] else _blend(similarity[i][p] if similarity else None, coverage[i][p])
                    for p in candidates}
        order = sorted(candidates, key=lambda p: (-strength[p], p))
        if cited:
            chosen = tuple(order)
        elif not order or (similarity is None and shared(i, order[0]) < MIN_SHARED_WORDS):
            chosen = ()  # words alone: one shared word ("get") is no sign of where a sentence came from
        else:
            chosen = tuple(p for p in order if strength[p] >= strength[order[0]] - ATTRIBUTION_MARGIN)[:MAX_ATTRIBUTED]
        score = _blend(max(similarity[i][p] for p in chosen) if similarity and chosen else None,
                       union_coverage(i, chosen)) if chosen else 0.0
        if copied[i] & set(chosen):
            score = max(score, 1.0)
        near = () if cited or not chosen or similarity is None else tuple(
            p for p in order if p not in chosen and strength[p] >= strength[order[0]] - FACT_MARGIN)
        results.append(SentenceSupport(start, end, chosen, round(score, 4), bool(cited), near))
    return results


def support_features(sentences: list[str], passages: list[Passage], embedder: Embedder | None):
    """For each sentence and passage: the best cosine to a passage sentence or run of up to
    WINDOW consecutive sentences (None without an embedder), and the share of the
    sentence's content words the passage uses; plus a function giving the share for a union
    of passages. The embedder is called once, on one batch.
    """
    words = [content_words(s) for s in sentences]
    passage_words = [content_words(f"{p.heading}\n{p.text}") for p in passages]
    coverage = [[len(w & pw) / len(w) if w else 0.0 for pw in passage_words] for w in words]

    def union_coverage(i: int, chosen: tuple[int, ...]) -> float:
        if not words[i] or not chosen:
            return 0.0
        return len(words[i] & set().union(*(passage_words[p] for p in chosen))) / len(words[i])

    if embedder is None or not sentences or not passages:
        return None, coverage, union_coverage
    units = evidence_windows(passages)
    texts = list(dict.fromkeys(text for _, text in units))
    vectors = embedder.embed(sentences + texts)
    cosine = vectors[:len(sentences)] @ vectors[len(sentences):].T
    column = {text: j for j, text in enumerate(texts)}
    columns = [[column[text] for p, text in units if p == index] for index in range(len(passages))]
    similarity = [[float(cosine[i, cols].max()) if cols else 0.0 for cols in columns] for i in range(len(sentences))]
    return similarity, coverage, union_coverage


def _blend(similarity: float | None, coverage: float) -> float:
    """Support on the similarity scale, moved by how many of the sentence's words the passages
    use: split, merged and summing-up sentences score low by cosine alone but reuse the
    passages' words; an on-topic invention brings words of its own."""
    if similarity is None:
        return coverage
    return similarity + COVERAGE_WEIGHT * (coverage - COVERAGE_BASE)


def evidence_windows(passages: list[Passage]) -> list[tuple[int, str]]:
    """(passage index, text) for each passage sentence and each run of up to WINDOW consecutive
    sentences: an answer sentence may merge several, or sum a paragraph up."""
    units = []
    for index, passage in enumerate(passages):
        sentences = evidence_sentences([passage])
        for size in range(1, WINDOW + 1):
            units += [(index, " ".join(sentences[at:at + size])) for at in range(len(sentences) - size + 1)]
    return units


def _plain(text: str) -> str:
    """Lower-case words only, one space apart: for telling a copied sentence."""
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def content_words(text: str) -> set[str]:
    """Stemmed words that carry meaning; numbers are left to the fact check."""
    return set(content_tokens(text))


def content_tokens(text: str) -> list[str]:
    """`content_words` in order, repeats kept (they weigh a sentence)."""
    return [_stem(word) for word in _WORD_TOKEN.findall(text.lower()) if word not in _STOPWORDS and len(word) > 1]


def _stem(word: str) -> str:
    word = word.strip("'-").removesuffix("'s")
    for suffix in ("ations", "ation", "ings", "ing", "ies", "ied", "ed", "es", "ly", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[:-len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
            break
    return word[:-1] if word.endswith("e") and len(word) > 4 else word


def evidence_sentences(passages: list[Passage]) -> list[str]:
    """The passage sentences an answer sentence may lean on (the calibration scores these too)."""
    sentences = (prose_text(p.text[s:e]) for p in passages for s, e in split_sentences(p.text))
    return [s for s in dict.fromkeys(sentences) if word_count(s) >= 3]


def cited_passages(text: str, passage_count: int) -> tuple[int, ...]:
    """0-based passages the text's citation marks name; numbers with no passage are left out."""
    return tuple(sorted({n - 1 for m in CITATION_MARK.finditer(text) for n in citation_numbers(m.group(1)) if 1 <= n <= passage_count}))


def citation_numbers(inner: str) -> list[int]:
    """The numbers inside one citation mark: "1, 3" -> [1, 3], "1-3" -> [1, 2, 3]."""
    numbers: list[int] = []
    for part in inner.split(","):
        bounds = [int(n) for n in re.split(r"[\u2013-]", part)]
        low, high = bounds[0], bounds[-1]
        # A range like [1-3] cites each number; a huge range is a typo, so only its ends count.
        numbers += list(range(low, high + 1)) if 0 <= high - low <= 20 else [low, high]
    return numbers
