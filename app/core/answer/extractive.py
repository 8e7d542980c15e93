"""Sentence splitting and the extractive fallback answer.

When no model answer survives the grounding check (or no model is available), the desk
answers with the docs' own sentences, quoted and cited: it cannot state anything the
docs don't say. `split_sentences` lives here and the grounding check imports it, so the
answer and the passages are always cut the same way.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the embedder pulls in torch; only its type is needed here
    from app.core.docs.embeddings import Embedder
    from app.core.passage import Passage

EXTRACTIVE_PREFIX = "This answer is quoted directly from the docs:"
NO_MATCH_ANSWER = "I couldn't find this in the docs."

MIN_QUOTE_WORDS = 4
# Extra sentences must be nearly as relevant as the best one: a padded answer that drifts
# to other topics reads as if the docs said more than they do.
MAX_SCORE_GAP = 0.25

_FENCE = re.compile(r"^\s*(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}(\s|$)")
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{2,}:?\s*(\|\s*:?-{2,}:?\s*)*\|?\s*$")
_HRULE = re.compile(r"^\s*([-*_])(\s*\1){2,}\s*$")
# Bullets, numbered items, block quotes and task boxes each start a new unit.
_MARKER = re.compile(r"^\s*(?:>\s*)*(?:(?:[-*+\u2022]|\d{1,3}[.)])\s+(?:\[[ xX]\]\s+)?)?(?:>\s*)*")
_TERMINAL = re.compile(r"[.!?]+[\"')\]\u201d\u2019]*(?=\s)")
# The pipeline's citation convention: [1], [2, 3], [1-2]; grounding checks the same markers.
# Models also write [ 1 ], footnote-style [^1] and CJK brackets 【1】: a citation the check
# didn't recognise would escape it, so all of them count. "(1)" is prose (steps, lists).
CITATION_MARK = re.compile(r"(?:\[\^?|\u3010)\s*(\d+(?:\s*[,\u2013-]\s*\d+)*)\s*[\]\u3011]")
_CITATIONS = re.compile(rf"\s*(?:{CITATION_MARK.pattern}\s*)+")
_ABBREVIATIONS = {
    "e.g", "i.e", "etc", "vs", "approx", "incl", "cf", "al", "mr", "mrs", "ms", "dr",
    "st", "no", "fig", "min", "max", "est", "dept", "jan", "feb", "mar", "apr", "jun",
    "jul", "aug", "sep", "sept", "oct", "nov", "dec",
}
# Link targets, images, tags and bold marks carry no meaning but pull markup-heavy sentences
# together; the calibration found doc-to-doc link lines among its top false accepts.
_LINK = re.compile(r"\[([^\]]+)\]\([^)\s]*\)")
_MARKUP = re.compile(r"!\[[^\]]*\]\([^)]*\)|</?[A-Za-z][^>]*>|\*\*|__")
_WORD = re.compile(r"[A-Za-z0-9$\u20ac\u00a3%][\w$%.,/'-]*")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Prose sentence spans (start, end) in `text`, in order.

    Newlines between list items, quotes, table rows and paragraphs are boundaries; a line
    starting lowercase continues a hard-wrapped sentence. Fenced code, headings and table
    rules yield nothing. Periods inside tokens ("$12.50", "v2.1", URLs) and after
    abbreviations ("e.g.") never split. Citation markers after a period stay with the
    sentence they cite.
    """
    spans: list[tuple[int, int]] = []
    in_fence = False
    block: list[int] | None = None  # [start, end] of the current prose block
    block_is_row = False
    offset = 0
    for line in text.splitlines(keepends=True):
        line_start, offset = offset, offset + len(line)
        body = line.rstrip()
        if _FENCE.match(body):
            in_fence = not in_fence
            _flush(text, block, spans)
            block = None
            continue
        if in_fence or not body.strip() or _HEADING.match(body) or _TABLE_RULE.match(body) or _HRULE.match(body):
            _flush(text, block, spans)
            block = None
            continue
        marker_end = _MARKER.match(body).end()
        is_row = body.lstrip().startswith("|")
        content_start, content_end = line_start + marker_end, line_start + len(body)
        if is_row:
            content_start, content_end = _trim_pipes(text, content_start, content_end)
        continues = (
            block is not None and not is_row and not block_is_row and marker_end == len(body) - len(body.lstrip())
            and _is_soft_wrap(text[block[0]:block[1]], text[content_start:content_end])
        )
        if continues:
            block[1] = content_end
        else:
            _flush(text, block, spans)
            block, block_is_row = [content_start, content_end], is_row
    _flush(text, block, spans)
    return spans


def _is_soft_wrap(previous: str, line: str) -> bool:
    if not line or not previous:
        return False
    if line[0].islower():
        return True
    # A long line cut mid-sentence is a hard wrap; a short unpunctuated one is a title.
    return len(previous) >= 60 and previous.rstrip()[-1] not in ".!?:"


def _trim_pipes(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start] in "| \t":
        start += 1
    while end > start and text[end - 1] in "| \t":
        end -= 1
    return start, end


def _flush(text: str, block: list[int] | None, spans: list[tuple[int, int]]) -> None:
    """Cut a prose block into sentences at terminal punctuation."""
    if block is None:
        return
    start, end = block
    cursor = start
    for match in _TERMINAL.finditer(text, start, end):
        if not _ends_sentence(text, match.start(), match.end(), end, start):
            continue
        cut = match.end()
        citations = _CITATIONS.match(text, cut, end)
        if citations:
            cut = citations.end()
        _add(text, cursor, cut, spans)
        cursor = cut
    _add(text, cursor, end, spans)


def _ends_sentence(text: str, dot: int, after: int, block_end: int, block_start: int) -> bool:
    rest = text[after:block_end].lstrip()
    rest = rest[_CITATIONS.match(rest).end():] if _CITATIONS.match(rest) else rest
    if not rest:
        return False
    if rest[0].islower():  # "e.g. the", "approx. three"
        return False
    if text[dot] == ".":
        word = re.search(r"([A-Za-z][A-Za-z.]*)$", text[max(block_start, dot - 20):dot])
        if word:
            token = word.group(1).lower()
            if token in _ABBREVIATIONS or (len(token) == 1 and token.isalpha() and text[dot - 1].isupper()):
                return False
    return True


def _add(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if start < end:
        spans.append((start, end))


def clean_sentence(sentence: str) -> str:
    """The sentence as prose: citation markers removed, whitespace collapsed."""
    return " ".join(_CITATIONS.sub(" ", sentence).split())


def prose_text(sentence: str) -> str:
    """What the sentence says, without citations or markup: the text that gets embedded."""
    return " ".join(_LINK.sub(r"\1", _MARKUP.sub(" ", clean_sentence(sentence))).split())


def word_count(sentence: str) -> int:
    return len(_WORD.findall(sentence))


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


def extractive_answer(question: str, passages: list[Passage], embedder: Embedder, max_sentences: int = 3) -> str:
    """The passages' most relevant sentences, quoted and cited as `[n]` (1-based, retrieval order)."""
    return extractive_quote(question, passages, embedder, max_sentences).text


def extractive_quote(question: str, passages: list[Passage], embedder: Embedder, max_sentences: int = 3) -> Quote:
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
    steps = [numbered_steps(passage.text) for passage in passages]
    chosen = _with_whole_procedures(chosen, candidates, steps, [p.text for p in passages])
    # Passages in order of their best sentence; document order inside each passage.
    passage_order: list[int] = []
    for i in chosen:
        if candidates[i][0] not in passage_order:
            passage_order.append(candidates[i][0])
    lines = [EXTRACTIVE_PREFIX]
    for number in passage_order:
        texts = passages[number - 1].text
        for i in sorted((i for i in chosen if candidates[i][0] == number), key=lambda i: candidates[i][1]):
            start = candidates[i][1]
            step = steps[number - 1].get(start)
            if step is None and _step_of(texts, steps[number - 1], start) and lines[-1].endswith(f" [{number}]"):
                # A later sentence of the same step ("The link works once and expires after
                # 60 minutes.") stays on its step's line.
                lines[-1] = f"{lines[-1][:-len(f' [{number}]')]} {candidates[i][2]} [{number}]"
                continue
            lines.append(f"> {step[1] + '. ' if step else ''}{candidates[i][2]} [{number}]")
    return Quote("\n".join(lines), best, tuple(passage_order))


_STEP = re.compile(r"^[ \t]*(?:>[ \t]*)*(\d{1,3})[.)][ \t]+")
MAX_STEPS = 16  # sentences of one procedure (a step may have several)


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


def opens_mid_procedure(text: str) -> bool:
    """True when the text starts at a numbered step other than the first ("4. Click …")."""
    first = _STEP.match(text.lstrip("\n"))
    return bool(first) and first.group(1) != "1"


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


def table_rows(text: str) -> dict[int, list[str] | None]:
    """Where each table row's cells start -> its table's header cells (None for a header row).

    Rows of a table whose header isn't in this text map to an empty header.
    """
    rows: dict[int, list[str] | None] = {}
    header: list[str] = []
    previous: tuple[int, str] | None = None  # (cells start, line) of the row before
    offset = 0
    for line in text.splitlines(keepends=True):
        line_start, offset = offset, offset + len(line)
        body = line.strip()
        if not body.startswith("|"):
            header, previous = [], None
            continue
        if _TABLE_RULE.match(body):
            if previous:
                header = table_cells(previous[1])
                rows[previous[0]] = None
            continue
        cells_start = line_start + len(line) - len(line.lstrip(" \t|"))
        rows[cells_start] = header
        previous = (cells_start, body)
    return rows


def labelled_row(header: list[str], row: str) -> str:
    """"Business | $24 per seat" under "Plan | Monthly billing" -> "Plan: Business; Monthly billing: $24 per seat"."""
    cells = table_cells(row)
    if len(header) != len(cells):
        return " | ".join(cells)
    return "; ".join(f"{name}: {cell}" if name else cell for name, cell in zip(header, cells) if cell)


def table_cells(row: str) -> list[str]:
    return [" ".join(cell.split()) for cell in row.strip().strip("|").split("|")]


def _is_quotable(sentence: str, headings: set[str]) -> bool:
    if word_count(sentence) < MIN_QUOTE_WORDS:
        return False
    if sentence.strip("*_#: ").lower() in headings:  # a heading repeated inside the chunk
        return False
    # Code that slipped outside a fence (shell prompts, braces) is not an answer to quote.
    if sentence.startswith(("$ ", "{", "}", "<")) or sentence.count("`") >= 4:
        return False
    # "The header looks like this:" introduces a code block or list the quote can't carry.
    if sentence.rstrip().endswith(":"):
        return False
    letters = sum(ch.isalpha() for ch in sentence)
    return letters >= len(sentence) * 0.5
