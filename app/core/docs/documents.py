"""Loaders per file type: bytes on disk -> Document(text, metadata).

Every loader produces Markdown-ish text (headings as `#` lines) so one chunker serves
every type. A file that can't be turned into useful text raises UnreadableFile with a
short reason the ingest summary shows next to the file name.
"""
from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from app.core.docs.mdx import resolve_subheadings, strip_markup

MARKDOWN_SUFFIXES = {".md", ".markdown", ".mdx"}
TEXT_SUFFIXES = {".txt", ".text", ".rst"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED_SUFFIXES = MARKDOWN_SUFFIXES | TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES


class UnreadableFile(Exception):
    """The file is skipped; str(self) is the reason shown to the user."""


@dataclass
class Document:
    text: str
    metadata: dict = field(default_factory=dict)


def is_supported(path: Path) -> bool:
    return path.suffix.lower() in SUPPORTED_SUFFIXES


def load_document(path: Path, data: bytes) -> Document:
    """Parse `data` (the bytes of `path`) into a Document, or raise UnreadableFile."""
    if not data.strip():
        raise UnreadableFile("empty file")
    suffix = path.suffix.lower()
    if suffix in PDF_SUFFIXES:
        document = _load_pdf(data)
    else:
        text = _decode(data)
        if suffix in MARKDOWN_SUFFIXES:
            document = _load_markdown(text)
        elif suffix in HTML_SUFFIXES:
            document = _load_html(text)
        else:
            document = Document(_normalise_newlines(text))
    if not document.text.strip():
        raise UnreadableFile("no text in file")
    document.metadata.setdefault("title", _first_heading(document.text) or path.stem.replace("-", " ").replace("_", " "))
    return document


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise UnreadableFile("binary file (contains NUL bytes)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise UnreadableFile(f"not UTF-8 (invalid byte at offset {error.start}); re-save it as UTF-8") from None


def _normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _first_heading(text: str) -> str | None:
    match = re.search(r"^#{1,6}\s+(.+?)\s*#*$", text, re.MULTILINE)
    return match.group(1).strip() if match else None


# --- Markdown ----------------------------------------------------------------------------

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n---[ \t]*(?:\n|\Z)", re.DOTALL)
_FENCE = re.compile(r"^(\s*)(```|~~~)")
_HTML_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_MDX_STATEMENT = re.compile(r"^(import|export)\s.+$")


def _load_markdown(text: str) -> Document:
    text = _normalise_newlines(text)
    metadata: dict = {}
    match = _FRONT_MATTER.match(text)
    if match:
        try:
            front = yaml.safe_load(match.group(1))
        except yaml.YAMLError:
            front = None  # malformed front matter is kept out of the text but not fatal
        if isinstance(front, dict):
            metadata = {str(k): v for k, v in front.items() if isinstance(v, (str, int, float, bool))}
        text = text[match.end():]
    body = _strip_mdx(text)
    title = metadata.get("title")
    if title and not re.match(r"\s*#\s", body):
        # Front-matter titles are the page's H1 in most doc sites; make them one.
        body = f"# {title}\n\n{body.lstrip()}"
    return Document(body, metadata)


def _strip_mdx(text: str) -> str:
    """Markdown without MDX/HTML markup; fenced code kept verbatim.

    Tags may span lines (`<Image src=...` / `width={1676} />`), so prose between fences is
    scanned as a whole rather than line by line.
    """
    out: list[str] = []
    prose: list[str] = []
    in_fence, fence_marker, esm = False, "", False
    for line in _HTML_COMMENT.sub("", text).split("\n"):
        fence = _FENCE.match(line)
        if fence and (not in_fence or fence.group(2) == fence_marker):
            if not in_fence:
                out.append(_rules_to_headings(strip_markup("\n".join(prose))))
                prose = []
            in_fence, fence_marker = not in_fence, fence.group(2)
            out.append(line)
        elif in_fence:
            out.append(line)
        elif _MDX_STATEMENT.match(line) or (esm and line.strip()):
            esm = True  # MDX's import/export statements run to the end of their paragraph
        else:
            esm = False
            prose.append(line)
    out.append(_rules_to_headings(strip_markup("\n".join(prose))))
    return re.sub(r"\n{3,}", "\n\n", resolve_subheadings("\n".join(out))).strip() + "\n"


_RULE = re.compile(r"^ {0,3}([-*_=])(?:[ \t]*\1){2,}[ \t]*$")


def _rules_to_headings(prose: str) -> str:
    """Setext underlines (`Title` / `---`) become `#` headings; other horizontal rules go.

    A rule alone would otherwise become a passage of its own that says nothing.
    """
    out: list[str] = []
    for line in prose.split("\n"):
        rule = _RULE.match(line)
        if not rule:
            out.append(line)
            continue
        previous = out[-1].strip() if out else ""
        if rule.group(1) in "-=" and previous and not re.match(r"([#>|*+-]|\d+[.)])\s|```|~~~", previous):
            out[-1] = ("# " if rule.group(1) == "=" else "## ") + previous
        elif rule.group(1) != "=":
            out.append("")
        else:
            out.append(line)
    return "\n".join(out)


# --- HTML --------------------------------------------------------------------------------

_NOISE_TAGS = ["script", "style", "noscript", "template", "nav", "header", "footer", "aside", "form", "iframe", "svg", "button"]
_BLOCK_TAGS = {"p", "li", "pre", "blockquote", "td", "th", "dt", "dd", "figcaption"}


_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,;:!?)\]])|(?<=[(\[])\s+")


def _load_html(text: str) -> Document:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(text, "html.parser")
    title = soup.title.get_text(" ", strip=True) if soup.title else ""
    for tag in soup(_NOISE_TAGS):
        tag.decompose()
    for tag in soup.find_all(attrs={"hidden": True}):
        tag.decompose()
    for tag in soup.find_all(style=re.compile(r"display\s*:\s*none", re.I)):
        tag.decompose()
    root = soup.find("main") or soup.find("article") or soup.body or soup
    for code in root.find_all("code"):
        if not code.find_parent("pre"):  # inline code keeps its Markdown marks, as in .md docs
            code.replace_with(f"`{code.get_text()}`")
    lines: list[str] = []
    for element in root.find_all(re.compile(r"^(h[1-6]|p|li|pre|blockquote|td|th|dt|dd|figcaption)$")):
        if element.name in _BLOCK_TAGS and element.find_parent(list(_BLOCK_TAGS - {"td", "th"})):
            continue  # nested blocks are read through their outermost block
        if element.name == "pre":
            lines.append("```\n" + element.get_text().strip("\n") + "\n```")
            continue
        # Inline tags are joined with spaces ("<b>Save</b>." reads "Save ."): close them up again.
        content = _SPACE_BEFORE_PUNCTUATION.sub(lambda m: m.group(1) or "", " ".join(element.get_text(" ", strip=True).split()))
        if not content:
            continue
        if element.name.startswith("h"):
            lines.append("#" * int(element.name[1]) + " " + content)
        elif element.name == "li":
            lines.append("- " + content)
        else:
            lines.append(content)
    body = "\n\n".join(lines)
    if not body.strip():  # pages without block markup: fall back to the visible text
        body = "\n".join(line.strip() for line in root.get_text("\n").split("\n") if line.strip())
    if title and not body.lstrip().startswith("# "):
        body = f"# {title}\n\n{body}"
    return Document(body + "\n", {"title": title} if title else {})


# --- PDF ---------------------------------------------------------------------------------

def _load_pdf(data: bytes) -> Document:
    import logging

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    logging.getLogger("pypdf").setLevel(logging.ERROR)  # pypdf warns on stderr about minor defects
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UnreadableFile("encrypted PDF; export an unencrypted copy")
        pages = [page.extract_text() or "" for page in reader.pages]
    except UnreadableFile:
        raise
    except (PdfReadError, ValueError, KeyError, TypeError, OSError, AttributeError) as error:
        raise UnreadableFile(f"corrupt PDF ({type(error).__name__}: {str(error)[:80]})") from None
    except Exception as error:  # pypdf raises a zoo of types on damaged files
        raise UnreadableFile(f"corrupt PDF ({type(error).__name__})") from None
    metadata = {}
    try:
        if reader.metadata and reader.metadata.title:
            metadata["title"] = str(reader.metadata.title)
    except Exception:
        pass
    # Pages become sections so chunks cite "Page 2" as their heading path.
    body = "\n\n".join(f"## Page {number}\n\n{_normalise_newlines(text).strip()}" for number, text in enumerate(pages, 1) if text.strip())
    if metadata.get("title"):
        body = f"# {metadata['title']}\n\n{body}"
    return Document(body + "\n" if body else "", metadata)
