"""Chunk boundaries, metadata and ids."""
from __future__ import annotations

import pytest

from app.core.docs.chunking import chunk_document
from app.core.docs.embeddings import Tokenizer


@pytest.fixture(scope="module")
def count():
    return Tokenizer().count_many


DOC = """# Billing

Intro paragraph about billing.

## Plans

### Team plan

Team costs $12 per seat per month.

### Business plan

Business costs $24 per seat per month.

```python
# not a heading
print("hi")
```

## Refunds

""" + " ".join(f"Sentence number {i} explains one more refund rule in detail." for i in range(60)) + "\n"


def test_chunks_follow_headings_and_know_their_path_and_offsets(count):
    chunks = chunk_document("billing.md", DOC, count, max_tokens=128)
    headings = [c.heading for c in chunks]
    assert headings[0] == "Billing"
    assert "Billing > Plans > Team plan" in headings
    assert "Billing > Plans > Business plan" in headings
    assert "Billing > Plans > Business plan > not a heading" not in headings  # '#' inside code is not a heading
    for chunk in chunks:
        assert DOC[chunk.start:chunk.end] == chunk.text  # offsets point at the exact text
    team = next(c for c in chunks if c.heading.endswith("Team plan"))
    assert team.text == "Team costs $12 per seat per month."
    business = next(c for c in chunks if c.heading.endswith("Business plan"))
    assert 'print("hi")' in business.text and business.text.rstrip().endswith("```")  # code block kept whole


def test_every_chunk_fits_the_embedder_window(count):
    chunks = chunk_document("billing.md", DOC, count, max_tokens=128)
    refunds = [c for c in chunks if c.heading == "Billing > Refunds"]
    assert len(refunds) >= 5  # the long section was split...
    for chunk in chunks:
        assert count([chunk.embedding_text()])[0] + 2 <= 128  # ...and every piece fits with [CLS]/[SEP]
    assert all(c.text.endswith("detail.") for c in refunds)  # ...at sentence boundaries


def test_ids_are_stable_content_hashes(count):
    first = chunk_document("billing.md", DOC, count)
    again = chunk_document("billing.md", DOC, count)
    assert [c.id for c in first] == [c.id for c in again]
    assert len({c.id for c in first}) == len(first)
    edited = chunk_document("billing.md", DOC.replace("$24", "$25"), count)
    changed = {c.id for c in edited} ^ {c.id for c in first}
    assert len(changed) == 2  # only the edited chunk's id changed (old one out, new one in)
    other_file = chunk_document("other.md", DOC, count)
    assert not {c.id for c in other_file} & {c.id for c in first}


def test_repeated_text_gets_distinct_ids(count):
    text = "# A\n\nSame line.\n\n# A\n\nSame line.\n"
    chunks = chunk_document("dup.md", text, count)
    assert len(chunks) == 2 and chunks[0].id != chunks[1].id


def test_a_giant_word_does_not_loop_forever(count):
    text = "# Key\n\n" + "x" * 5000 + "\n"
    chunks = chunk_document("key.md", text, count)
    assert chunks and "".join(c.text for c in chunks) == "x" * 5000


def test_no_chunk_is_a_sliver_that_only_matches_on_its_heading(count):
    code = "```js\n" + "\n".join(f"const value{i} = compute({i}, options);" for i in range(40)) + "\n});\n```"
    text = "# Guide\n\n## Install\n\n" + code + "\n\nYes.\n"
    chunks = chunk_document("guide.md", text, count, max_tokens=128)
    assert len(chunks) >= 3  # the code block was split across chunks...
    for chunk in chunks:
        assert any(ch.isalnum() for ch in chunk.text), repr(chunk.text)  # ...and no piece is only "});\n```"
        assert count([chunk.embedding_text()])[0] + 2 <= 128
    assert "Yes." in chunks[-1].text and chunks[-1].text != "Yes."  # a two-word tail joins its neighbour
