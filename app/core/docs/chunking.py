"""Structure-aware chunks with stable content-hash ids.

A document is split at its headings into sections; each section's blocks (paragraphs,
lists, code fences) are packed into chunks that fit the embedder's window. A block too
big for one chunk is split at sentence, then word boundaries. Every chunk keeps its
heading path and its character offsets in the document's text, so a citation can point
at the exact passage.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Callable, Iterator

HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t]*#*[ \t]*$")
FENCE = re.compile(r"^\s*(```|~~~)")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(\[])")
# [CLS] + [SEP] and the "heading path" line prepended for embedding eat into the window.
SPECIAL_TOKENS = 2
SLIVER_TOKENS = 4  # a chunk shorter than this is folded into its neighbour when it fits
_WORD = re.compile(r"[^\W_]")


@dataclass(frozen=True)
class Chunk:
    id: str
    text: str
    heading: str
    start: int
    end: int

    def embedding_text(self) -> str:
        # The heading path disambiguates short passages ("Limits" under "Team plan").
        return f"{self.heading}\n{self.text}" if self.heading else self.text


@dataclass
class _Block:
    start: int
    end: int
    tokens: int = 0


def chunk_document(
    file: str, text: str, count_tokens: Callable[[list[str]], list[int]], max_tokens: int = 128, root: str = "",
) -> list[Chunk]:
    """Split `text` into chunks of at most `max_tokens` tokens (as counted by `count_tokens`).

    `root` is the docs folder `file` is relative to; it is part of every chunk id.
    """
    chunks: list[Chunk] = []
    seen: dict[tuple[str, str], int] = {}
    for heading, blocks in _sections(text):
        if not blocks:
            continue
        budget = max(16, max_tokens - SPECIAL_TOKENS - count_tokens([heading])[0])
        counts = count_tokens([text[b.start:b.end] for b in blocks])
        for block, tokens in zip(blocks, counts):
            block.tokens = tokens
        for start, end in _without_slivers(text, list(_pack(text, blocks, budget, count_tokens)), budget, count_tokens):
            body = text[start:end]
            key = (heading, body)
            occurrence = seen.get(key, 0)
            seen[key] = occurrence + 1
            chunks.append(Chunk(chunk_id(root, file, heading, body, occurrence), body, heading, start, end))
    return chunks


def _without_slivers(text: str, spans: list[tuple[int, int]], budget: int, count_tokens) -> list[tuple[int, int]]:
    """Fold tiny leftovers ("```", "});", "Yes.") into the chunk before them when that still fits.

    A leftover alone would be a passage that matches on its heading and shows nothing; one
    with no word in it that doesn't fit is dropped (a closing fence or bracket says nothing).
    """
    if len(spans) < 2:
        return spans
    counts = count_tokens([text[s:e] for s, e in spans])
    kept: list[tuple[int, int]] = []
    kept_tokens: list[int] = []
    for (start, end), tokens in zip(spans, counts):
        wordless = not _WORD.search(text[start:end])
        if kept and (wordless or tokens < SLIVER_TOKENS):
            merged = count_tokens([text[kept[-1][0]:end]])[0]
            if merged <= budget:
                kept[-1], kept_tokens[-1] = (kept[-1][0], end), merged
                continue
            if wordless:
                continue
        kept.append((start, end))
        kept_tokens.append(tokens)
    return kept


def chunk_id(root: str, file: str, heading: str, text: str, occurrence: int = 0) -> str:
    # The same text under the same heading twice in one file needs two records; the same
    # file in two docs folders needs two too, or each ingest would take the other's over.
    digest = hashlib.sha256(f"{root}\x00{file}\x00{heading}\x00{text}\x00{occurrence}".encode()).hexdigest()
    return digest[:32]


def _sections(text: str) -> Iterator[tuple[str, list[_Block]]]:
    """Yield (heading path, blocks) per section. Headings inside code fences don't count."""
    path: list[tuple[int, str]] = []
    blocks: list[_Block] = []
    offset = 0
    block_start: int | None = None
    in_fence = False

    def close_block(end: int) -> None:
        nonlocal block_start
        if block_start is not None and text[block_start:end].strip():
            blocks.append(_Block(block_start, _rstrip_end(text, block_start, end)))
        block_start = None

    for line in text.splitlines(keepends=True):
        line_end = offset + len(line)
        stripped = line.strip()
        if FENCE.match(line):
            if not in_fence:
                close_block(offset)
                block_start = offset
                in_fence = True
            else:
                in_fence = False
                close_block(line_end)
        elif in_fence:
            pass
        elif match := HEADING.match(stripped):
            close_block(offset)
            yield _path_text(path), blocks
            blocks = []
            level = len(match.group(1))
            path = [(lvl, title) for lvl, title in path if lvl < level] + [(level, match.group(2).strip())]
        elif not stripped:
            close_block(offset)
        elif block_start is None:
            block_start = offset
        elif stripped[:2] in ("- ", "* ", "+ ") or re.match(r"\d+[.)]\s", stripped):
            close_block(offset)  # each list item is its own block, so lists split between items
            block_start = offset
        offset = line_end
    close_block(offset)
    yield _path_text(path), blocks


def _path_text(path: list[tuple[int, str]]) -> str:
    return " > ".join(title for _, title in path)


def _rstrip_end(text: str, start: int, end: int) -> int:
    while end > start and text[end - 1].isspace():
        end -= 1
    return end


def _pack(text: str, blocks: list[_Block], budget: int, count_tokens, split: bool = True) -> Iterator[tuple[int, int]]:
    """Greedily merge consecutive blocks while they fit; split blocks that never fit.

    With split=False (pieces already cut at words) an oversized piece, such as one very
    long token-like string, becomes a chunk of its own and the embedder truncates it.
    """
    current: list[_Block] = []
    used = 0
    for block in blocks:
        if block.tokens > budget:
            if current:
                yield current[0].start, current[-1].end
                current, used = [], 0
            if split:
                yield from _split_block(text, block, budget, count_tokens)
            else:
                yield block.start, block.end
            continue
        if current and used + block.tokens > budget:
            yield current[0].start, current[-1].end
            current, used = [], 0
        current.append(block)
        used += block.tokens
    if current:
        yield current[0].start, current[-1].end


def _split_block(text: str, block: _Block, budget: int, count_tokens) -> Iterator[tuple[int, int]]:
    """Split one oversized block at sentence ends (or lines, for code and tables), then at words."""
    segment = text[block.start:block.end]
    # Code and tables split between lines: half a table row pairs a price with nothing.
    by_line = bool(FENCE.match(segment)) or segment.lstrip().startswith("|")
    pieces = _spans(segment, r"\n" if by_line else SENTENCE_END.pattern)
    counts = count_tokens([segment[s:e] for s, e in pieces])
    pieces_with_counts = []
    for (start, end), tokens in zip(pieces, counts):
        if tokens > budget:
            words = _spans(segment[start:end], r"\s+")
            word_counts = count_tokens([segment[start + s:start + e] for s, e in words])
            pieces_with_counts.extend(_Block(start + s, start + e, c) for (s, e), c in zip(words, word_counts))
        else:
            pieces_with_counts.append(_Block(start, end, tokens))
    for start, end in _pack(segment, pieces_with_counts, budget, count_tokens, split=False):
        yield block.start + start, block.start + end


def _spans(segment: str, separator: str) -> list[tuple[int, int]]:
    spans, position = [], 0
    for match in re.finditer(separator, segment):
        if segment[position:match.start()].strip():
            spans.append((position, match.start()))
        position = match.end()
    if segment[position:].strip():
        spans.append((position, len(segment)))
    return spans
