"""The extractive fallback answer: the docs' own sentences, quoted and cited.

When no model answer survives the grounding check (or no model is available), the desk
answers with the docs' own sentences, quoted and cited: it cannot state anything the
docs don't say. Sentences are cut by `app.core.text.split_sentences`, as the grounding
check cuts them, so the answer and the passages are always cut the same way.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.core.trust.attribution import content_words
from app.core.trust.stated_facts import starts_with_date
from app.core.text import (CITATION_MARK, EXTRACTIVE_PREFIX, NO_MATCH_ANSWER, clean_sentence, numbers, split_sentences,
                           table_cells, table_rows, word_count)

if TYPE_CHECKING:  # the embedder pulls in torch; only its type is needed here
    from app.core.docs.embeddings import Embedder
    from app.core.passage import Passage

MIN_QUOTE_WORDS = 4
# Up to five sentences, and a short passage whole when its sentence is the best: a fact often
# spans the sentences around the best-matching one. Of 319 answerable labelled questions
# (bench/calibrate_local_tier.py prints these), quotes of three held the whole labelled fact
# for 177, of five for 197, of eight for 205. (A first count, which missed questions labelled
# with several files, put quotes of three without whole passages at 125 and of five at 162.)
QUOTE_SENTENCES = 5
WHOLE_PASSAGE_SENTENCES = 6
# A quote reads further down the retrieved passages than the local draft (prompts.LOCAL_PASSAGES):
# it costs no model time, and the passage that answers is often ranked 4th or 5th. The first
# five retrieved passages hold the whole labelled fact for 87% of the answerable questions, the
# first three for 77% (bench/calibrate_local_tier.py); quotes of five sentences from five
# passages held it for 210 of 319 questions, from three for 199. The lines beneath a kept
# draft (pipeline `_add_docs_lines`) still come from the draft's three: on bench/answers.py,
# lines from five pushed out lines that held the fact, for lines about other pages ("Having
# trouble with your domain configuration?" beneath "Application failed to respond").
QUOTE_PASSAGES = 5
# Extra sentences must be nearly as relevant as the best one: a padded answer that drifts
# to other topics reads as if the docs said more than they do.
MAX_SCORE_GAP = 0.25
# A quoted line beneath a kept draft is left out when the draft already states all its numbers
# and this share of its words (`Quote.lines_beyond`): a copied or reworded line. On the bench
# sets' kept drafts, 0.6 and 0.8 added the same labelled facts; at 0.8 a reworded line ("you
# must be a workspace admin with 2FA already enabled …", 7 of 9 words) was said twice.
ALREADY_SAID = 0.6


@dataclass(frozen=True)
class Quote:
    """A quoted answer and how well its best sentence matched the question (judged in `relevance`)."""
    text: str
    best_score: float = 0.0  # cosine similarity of the best sentence (in its section's context) to the question
    numbers: tuple[int, ...] = ()  # 1-based passages quoted, in the order they appear
    passages: tuple = ()  # the passages its [n] marks count (set by the pipeline)

    @property
    def sentences_text(self) -> str:
        return "\n".join(clean_sentence(line[2:]) for line in self.text.splitlines() if line.startswith("> "))

    def lines_beyond(self, draft: str) -> list[str]:
        """The quoted lines ("> … [n]") that say what `draft` doesn't. A line is already said
        when the draft states all its numbers and ALREADY_SAID of its words."""
        said_words, said_numbers = _words_and_numbers(draft)
        lines = []
        for line in self.text.splitlines():
            if not line.startswith("> "):
                continue
            words, numbers = _words_and_numbers(_STEP.sub("", line[2:], count=1))  # "3. " is no fact
            if not numbers <= said_numbers or len(words & said_words) < ALREADY_SAID * len(words):
                lines.append(line)
        return lines


def _words_and_numbers(text: str) -> tuple[set[str], set[str]]:
    text = CITATION_MARK.sub("", text)
    return content_words(text), numbers(text)


def extractive_answer(question: str, passages: list[Passage], embedder: Embedder, max_sentences: int = QUOTE_SENTENCES,
                      whole_passage: int = WHOLE_PASSAGE_SENTENCES) -> str:
    """The passages' most relevant sentences, quoted and cited as `[n]` (1-based, retrieval order);
    the best sentence's whole passage when it has at most `whole_passage` sentences."""
    return extractive_quote(question, passages, embedder, max_sentences, whole_passage).text


def extractive_quote(question: str, passages: list[Passage], embedder: Embedder, max_sentences: int = QUOTE_SENTENCES,
                     whole_passage: int = WHOLE_PASSAGE_SENTENCES) -> Quote:
    """`extractive_answer` with the score the pipeline judges its confidence by."""
    candidates: list[tuple[int, int, str]] = []  # (passage number, start, sentence)
    for number, passage in enumerate(passages, start=1):
        headings = {part.strip().lower() for part in passage.heading.split(">")}
        rows = table_rows(passage.text)
        for start, end in split_sentences(passage.text):
            if start in rows:
                header = rows[start]
                if header is None:
                    continue  # a header row alone says nothing
                sentence = labelled_row(header, passage.text[start:end])
            else:
                sentence = clean_sentence(passage.text[start:end])
            if _is_quotable(sentence, headings):
                candidates.append((number, start, sentence))
    if not candidates or max_sentences < 1:
        return Quote(NO_MATCH_ANSWER)
    # Scored in the context of its section, as chunks are embedded: "Business | $24" means
    # little alone and a price under "Plan overview".
    leaves = [passage.heading.rsplit(">", 1)[-1].strip() for passage in passages]
    scored = [f"{leaves[number - 1]}: {sentence}" if leaves[number - 1] else sentence for number, _, sentence in candidates]
    vectors = embedder.embed([question] + scored)
    scores = vectors[1:] @ vectors[0]
    # Ties break on retrieval rank then position, so the same inputs quote the same lines.
    ranked = sorted(range(len(candidates)), key=lambda i: (-round(float(scores[i]), 6), candidates[i][0], candidates[i][1]))
    best = float(scores[ranked[0]])
    chosen = [i for i in ranked[:max_sentences] if float(scores[i]) >= best - MAX_SCORE_GAP]
    in_best = [i for i in range(len(candidates)) if candidates[i][0] == candidates[ranked[0]][0]]
    if len(in_best) <= whole_passage:
        chosen = [ranked[0]] + [i for i in in_best if i != ranked[0]] + [i for i in chosen if i not in in_best]
    steps = [numbered_steps(passage.text) for passage in passages]
    chosen = _with_whole_procedures(chosen, candidates, steps, [p.text for p in passages])
    # Passages in retrieval order, document order inside each. Retrieval ranks whole chunks by
    # meaning and keywords, and leads with the page that answers more often than one sentence's
    # similarity does: the first line held part of the labelled fact for 197 of 319 answerable
    # questions this way, for 172 in order of each passage's best sentence (five passages read).
    passage_order = sorted({candidates[i][0] for i in chosen})
    lines = [EXTRACTIVE_PREFIX]
    date_said = ""
    quoted: list[int] = []  # passages with a line in the quote
    said: set[str] = set()
    for number in passage_order:
        texts = passages[number - 1].text
        for i in sorted((i for i in chosen if candidates[i][0] == number), key=lambda i: candidates[i][1]):
            if candidates[i][2] in said:
                # Quoted once: passages overlap when one opening mid-procedure is extended with
                # the chunk before it (`Reading.with_procedure_start`) and that chunk was retrieved too.
                continue
            said.add(candidates[i][2])
            if number not in quoted:
                quoted.append(number)
            start = candidates[i][1]
            step = steps[number - 1].get(start)
            if step is None and _step_of(texts, steps[number - 1], start) and lines[-1].endswith(f" [{number}]"):
                # A later sentence of the same step ("The link works once and expires after
                # 60 minutes.") stays on its step's line.
                lines[-1] = f"{lines[-1][:-len(f' [{number}]')]} {candidates[i][2]} [{number}]"
                continue
            line = f"{step[1] + '. ' if step else ''}{candidates[i][2]}"
            # In a changelog the date is what a line means ("now last 30 days"): said once per section.
            dated = dated_title(texts, leaves[number - 1], start)
            if dated and dated != date_said:
                line, date_said = f"{' '.join(dated.split())}: {line}", dated
            lines.append(f"> {line} [{number}]")
    return Quote("\n".join(lines), best, tuple(quoted))


_STEP = re.compile(r"^[ \t]*(?:>[ \t]*)*(\d{1,3})[.)][ \t]+")
# A plain-text section title: a line underlined with --- or === (setext, as in a CHANGELOG.txt).
_UNDERLINED_TITLE = re.compile(r"^([^\n|]*\S[^\n|]*)\n[ \t]*(?:-{3,}|={3,})[ \t]*$", re.MULTILINE)
# A page's date stamp: "Last updated 3 April 2025", "_Last reviewed: May 2025_", "Updated: 2025-03-18".
_DATE_STAMP = re.compile(r"[*_]*(?:last\s+)?(?:updated|modified|reviewed|edited)(?:\s+on)?[\s:*_]+"
                         r"[\w ,/.-]*\b(?:19|20)\d\d(?!\d)[\w ,/.-]*$", re.IGNORECASE)
MAX_STEPS = 16  # sentences of one procedure (a step may have several)


def dated_title(text: str, section_title: str, start: int) -> str:
    """The dated title a line at `start` of a passage sits under, or "": the last underlined title
    above it in the passage (plain text keeps its sections in the text), else its section's."""
    above = _UNDERLINED_TITLE.findall(text[:start])
    title = above[-1].strip() if above else section_title
    return title if starts_with_date(title) else ""


def numbered_steps(text: str) -> dict[int, tuple[int, str]]:
    """Where each numbered list item's text starts -> (where its list starts, its number)."""
    steps: dict[int, tuple[int, str]] = {}
    list_start: int | None = None
    offset = 0
    for line in text.splitlines(keepends=True):
        line_start, offset = offset, offset + len(line)
        step = _STEP.match(line)
        if step:
            list_start = line_start if list_start is None else list_start
            steps[line_start + step.end()] = (list_start, step.group(1))
        elif line.strip() and not line[:1].isspace():
            list_start = None  # a paragraph ends the list; an indented line continues an item
    return steps


def opens_mid_procedure(text: str) -> str:
    """The step's number when the text starts at a numbered step other than the first ("4. Click …"), else ""."""
    first = _STEP.match(text.lstrip("\n"))
    return first.group(1) if first and first.group(1) != "1" else ""


def _step_of(text: str, steps: dict[int, tuple[int, str]], start: int) -> tuple[int, str] | None:
    """The numbered step a sentence belongs to: its own, or the one whose line it continues."""
    item = max((s for s in steps if s <= start), default=None)
    if item is None or "\n" in text[item:start]:
        return None
    return steps[item]


def _with_whole_procedures(chosen: list[int], candidates: list[tuple[int, int, str]],
                           steps: list[dict[int, tuple[int, str]]], texts: list[str]) -> list[int]:
    """When the best quoted step belongs to a numbered procedure, quote that procedure's steps
    in order (step 4 of a password reset is no answer without steps 1 to 3). Steps of other
    procedures are left out: interleaved "1. … 2. … 1. …" from two lists reads as nonsense.
    """
    def list_of(i: int) -> tuple[int, int] | None:
        number, start, _ = candidates[i]
        step = _step_of(texts[number - 1], steps[number - 1], start)
        return (number, step[0]) if step else None

    procedure = next((list_of(i) for i in chosen if list_of(i)), None)
    if procedure is None:
        return chosen
    in_procedure = [i for i in range(len(candidates)) if list_of(i) == procedure][:MAX_STEPS]
    others = [i for i in chosen if list_of(i) is None]
    return in_procedure + others


def labelled_row(header: list[str], row: str) -> str:
    """"Business | $24 per seat" under "Plan | Monthly billing" -> "Plan: Business; Monthly billing: $24 per seat"."""
    cells = table_cells(row)
    if len(header) != len(cells):
        return " | ".join(cells)
    return "; ".join(f"{name}: {cell}" if name else cell for name, cell in zip(header, cells) if cell)


def _is_quotable(sentence: str, headings: set[str]) -> bool:
    if word_count(sentence) < MIN_QUOTE_WORDS:
        return False
    if sentence.strip("*_#: ").lower() in headings:  # a heading repeated inside the chunk
        return False
    if _DATE_STAMP.match(sentence) and word_count(sentence) <= 6:  # "Last updated 3 April 2025" answers nothing
        return False
    # Code that slipped outside a fence (shell prompts, braces) is not an answer to quote.
    if sentence.startswith(("$ ", "{", "}", "<")) or sentence.count("`") >= 4:
        return False
    # "The header looks like this:" introduces a code block or list the quote can't carry.
    if sentence.rstrip().endswith(":"):
        return False
    letters = sum(ch.isalpha() for ch in sentence)
    return letters >= len(sentence) * 0.5
