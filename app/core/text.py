"""Reading Markdown-ish text: sentence spans, prose, word counts, table rows, citation marks.

Shared by the docs quote (`app.core.answer.extractive`) and the trust checks
(`app.core.trust`): the answer and the passages must be cut into sentences the same way,
and trust sits below answer, so neither side may own these.
"""
from __future__ import annotations

import re

# How the docs quote opens, and what the desk says when the docs have nothing. They live
# here, not in extractive.py, because the grounding check must recognise them as framing
# (no claim to check) and may not import from app.core.answer.
EXTRACTIVE_PREFIX = "This answer is quoted directly from the docs:"
NO_MATCH_ANSWER = "I couldn't find this in the docs."
# Heads the docs' own lines the pipeline puts beneath a kept local draft (what the draft left out).
DOCS_LINES_HEADING = "From the docs:"

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


_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")


def numbers(text: str) -> set[str]:
    """The numbers a text states, as written but for grouping and trailing zeros: "5,000" is
    5000 and "$12.00" is 12. Compares what two texts say (is a line already said? is a fact stated?)."""
    found = set()
    for raw in _NUMBER.findall(text):
        value = raw.replace(",", "") if re.fullmatch(r"\d{1,3}(,\d{3})+", raw) else raw
        if re.fullmatch(r"\d+\.\d+", value):
            value = value.rstrip("0").rstrip(".")
        found.add(value)
    return found


def below(value: float, bound: float, bound_name: str = "") -> str:
    """"value < [bound_name ]bound" for a reason shown to the user, with the decimals that tell
    them apart: 0.4996 against 0.50 reads "0.4996 < 0.5000", not "0.50 < 0.50", and 0.722
    against 0.748 not "0.72 < 0.75"."""
    places = 2
    while places < 6 and (round(bound, places) != bound or round(value, places) >= round(bound, places)):
        places += 1
    return f"{value:.{places}f} < {bound_name + ' ' if bound_name else ''}{bound:.{places}f}"


def word_count(sentence: str) -> int:
    return len(_WORD.findall(sentence))


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


def table_cells(row: str) -> list[str]:
    return [" ".join(cell.split()) for cell in row.strip().strip("|").split("|")]


# --- input from people, and stored text shown on a terminal -------------------------------

# Python hands over argv's undecodable bytes as lone surrogates (surrogateescape), which no
# UTF-8 writer accepts: not the ledger, not the tokenizer, not a strict terminal.
_SURROGATE = re.compile("[\ud800-\udfff]")
# C0 controls but tab and newline, DEL and C1 (\x9b is a one-byte CSI): in a question they
# mean nothing, and a NUL or an escape sequence would be stored and replayed on a terminal.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_input(text: str) -> str:
    """A question as the user meant it, safe to embed, log and print.

    Each undecodable byte becomes U+FFFD rather than a guess at a legacy encoding: a wrong
    guess would log plausible text the user never typed, while U+FFFD shows where the
    input was damaged. Control characters other than tab and newline are dropped.
    """
    return _CONTROL.sub("", _SURROGATE.sub("\ufffd", text))


def printable(text: str) -> str:
    """Stored text for a terminal (CLI and TUI alike): control characters shown as symbols (ESC as ␛), so an
    escape sequence in an old question is visible and never acted on."""
    return _CONTROL.sub(_symbol, text or "")


def _symbol(match: re.Match) -> str:
    code = ord(match.group())
    # U+2400.. pictures C0 controls and U+2421 DEL; C1 has no pictures.
    return chr(0x2400 + code) if code < 0x20 else "\u2421" if code == 0x7f else "\ufffd"


_DOCS_LINES_BREAK = f"\n\n{DOCS_LINES_HEADING}\n"


def with_docs_lines(draft: str, lines: list[str]) -> str:
    """A local draft with quoted docs lines beneath it, under DOCS_LINES_HEADING."""
    return draft + _DOCS_LINES_BREAK + "\n".join(lines)


def draft_part(answer: str) -> str:
    """A local answer without the quoted docs lines the pipeline added beneath the draft."""
    return answer.split(_DOCS_LINES_BREAK, 1)[0]
