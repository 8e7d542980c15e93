"""MDX and inline HTML in Markdown prose -> plain Markdown.

Doc sites write Markdown with JSX components (`<Banner>`, `<Image .../>`,
`<GraphQLCodeTabs query={`...`} />`, `<Collapse title="...">`) and bits of HTML. The
components are layout, except for three things a reader needs: their children (kept),
a `title` on a container (a FAQ question in `<Collapse>`: kept as a sub-heading) and code
passed as a prop (a GraphQL query in a template literal: kept as a fenced code block).

A tag is parsed with its props, whose values may hold `>`, quotes, braces and newlines,
so it is only recognised when it parses completely: "a < b", "<5 minutes" and
placeholders such as `<API_KEY>` or `<your-token>` stay as written. Inline code spans are
copied verbatim.
"""
from __future__ import annotations

import re
import textwrap

# Components are PascalCase (`Banner`, `Tabs.Item`); ALL_CAPS placeholders are not.
_COMPONENT = re.compile(r"[A-Z][A-Za-z0-9]*[a-z][A-Za-z0-9]*(?:\.[A-Z][A-Za-z0-9]*)*")
_HTML_BLOCK = {
    "div", "p", "br", "hr", "ul", "ol", "li", "table", "thead", "tbody", "tr", "td", "th",
    "details", "summary", "section", "article", "figure", "figcaption", "blockquote", "center",
    "h1", "h2", "h3", "h4", "h5", "h6", "dl", "dt", "dd", "picture", "video", "source", "iframe", "pre",
}
_HTML_INLINE = {"a", "span", "strong", "em", "b", "i", "u", "small", "sup", "sub", "kbd", "mark", "img", "abbr", "del", "ins", "s", "code"}
_HTML_TAGS = _HTML_BLOCK | _HTML_INLINE
_TAG_NAME = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9.]*)")
_ATTR_NAME = re.compile(r"[A-Za-z_:][\w:.-]*")
_JSX_TEXT = re.compile(r"""\{\s*(["'])(.*?)\1\s*\}""")  # {" "} in prose
_JSX_COMMENT = re.compile(r"\{/\*.*?\*/\}", re.DOTALL)
_INTERESTING = re.compile(r"[`<{]")
MAX_TAG_CHARS = 20_000  # a "tag" longer than this is prose with a stray '<'
# Props whose object or array value is example input worth keeping as code.
_CODE_PROPS = {"code", "query", "variables", "example", "snippet", "command"}
_TITLE_PROPS = ("title", "summary", "question")
SUBHEADING = "\x00subheading "  # resolved to a real heading level by `resolve_subheadings`


def strip_markup(prose: str) -> str:
    """Prose (no fenced code) with component and HTML tags removed, children kept."""
    prose = _JSX_COMMENT.sub("", prose)
    out: list[str] = []
    position = 0
    while True:
        match = _INTERESTING.search(prose, position)
        if not match:
            out.append(prose[position:])
            break
        i = match.start()
        out.append(prose[position:i])
        position = _consume(prose, i, out)
    lines = [line.rstrip() for line in "".join(out).split("\n")]
    return "\n".join(lines)


def _consume(prose: str, i: int, out: list[str]) -> int:
    """Handle the construct at prose[i] (` < or {); append its replacement; return where to go on."""
    char = prose[i]
    if char == "`":
        run = len(prose[i:]) - len(prose[i:].lstrip("`"))
        close = prose.find("`" * run, i + run)
        if close != -1 and "\n\n" not in prose[i:close]:
            out.append(prose[i:close + run])
            return close + run
        out.append("`" * run)
        return i + run
    if char == "{":
        literal = _JSX_TEXT.match(prose, i)
        if literal:
            out.append(literal.group(2))
            return literal.end()
        if prose[i + 1:i + 64].lstrip().startswith("`"):  # {`code`} as a component's children
            end = _skip_braces(prose, i, min(len(prose), i + MAX_TAG_CHARS))
            code = _code_in("children", prose[i:end]) if end > 0 else None
            if code:
                out.append(f"\n\n```\n{code}\n```\n\n")
                return end
        out.append(char)
        return i + 1
    tag = _parse_tag(prose, i)
    if tag is None:
        out.append(char)
        return i + 1
    out.append(tag.replacement())
    return tag.end


class _Tag:
    def __init__(self, name: str, closing: bool, props: dict[str, str], self_closing: bool, end: int):
        self.name, self.closing, self.props, self.self_closing, self.end = name, closing, props, self_closing, end

    def replacement(self) -> str:
        name = self.name.lower()
        if not self.name[0].isupper():  # HTML
            if name == "code":
                return "`"
            if name == "br":
                return "\n"
            return "\n" if name in _HTML_BLOCK else ""
        parts: list[str] = []
        title = next((self.props[p] for p in _TITLE_PROPS if p in self.props and _is_text(self.props[p])), None)
        if title and not self.closing and not self.self_closing:
            parts.append(f"\n\n{SUBHEADING}{_unquote(title)}\n\n")
        for prop, value in self.props.items():
            code = _code_in(prop, value)
            if code:
                parts.append(f"\n\n```\n{code}\n```\n\n")
        return "".join(parts)


def _parse_tag(prose: str, i: int) -> _Tag | None:
    head = _TAG_NAME.match(prose, i)
    if not head:
        return None
    closing, name = head.group(1) == "/", head.group(2)
    if not (_COMPONENT.fullmatch(name) or name in _HTML_TAGS):
        return None
    props: dict[str, str] = {}
    j, limit = head.end(), min(len(prose), i + MAX_TAG_CHARS)
    if j < limit and not (prose[j].isspace() or prose[j] in "/>"):
        return None  # "<Bannerish" is not a tag name followed by props
    while j < limit:
        while j < limit and prose[j].isspace():
            j += 1
        if prose.startswith("/>", j):
            return _Tag(name, closing, props, True, j + 2)
        if j < limit and prose[j] == ">":
            return _Tag(name, closing, props, False, j + 1)
        if j < limit and prose[j] == "{":  # {...spread}
            j = _skip_braces(prose, j, limit)
            if j < 0:
                return None
            continue
        attr = _ATTR_NAME.match(prose, j, limit)
        if not attr or closing:
            return None
        j = attr.end()
        while j < limit and prose[j].isspace():
            j += 1
        if j >= limit or prose[j] != "=":
            props[attr.group()] = "true"
            continue
        j += 1
        while j < limit and prose[j].isspace():
            j += 1
        value_start = j
        if j < limit and prose[j] in "\"'":
            j = prose.find(prose[j], j + 1, limit)
            if j < 0:
                return None
            j += 1
        elif j < limit and prose[j] == "{":
            j = _skip_braces(prose, j, limit)
            if j < 0:
                return None
        else:
            while j < limit and not prose[j].isspace() and prose[j] not in "/>":
                j += 1
        props[attr.group()] = prose[value_start:j]
    return None


def _skip_braces(text: str, i: int, limit: int) -> int:
    """Index just after the `}` that closes text[i] == '{', minding strings; -1 if none."""
    depth = 0
    j = i
    while j < limit:
        char = text[j]
        if char in "\"'`":
            j = _skip_string(text, j, limit)
            if j < 0:
                return -1
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return j + 1
        j += 1
    return -1


def _skip_string(text: str, i: int, limit: int) -> int:
    quote, j = text[i], i + 1
    while j < limit:
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == quote:
            return j + 1
        if quote != "`" and text[j] == "\n":
            return -1
        j += 1
    return -1


def _is_text(value: str) -> bool:
    return len(value) >= 2 and value[0] in "\"'" and value[-1] == value[0]


def _unquote(value: str) -> str:
    return " ".join(value[1:-1].split())


def _code_in(prop: str, value: str) -> str | None:
    """Code a prop carries: a multi-line template literal, or example input in a code prop."""
    if not value.startswith("{") or "\n" not in value:
        return None
    inner = value[1:-1].strip()
    if inner.startswith("`") and inner.endswith("`"):
        return _dedent(inner[1:-1].strip("\n"))
    if prop in _CODE_PROPS and inner[:1] in "{[":
        return _dedent(inner)
    return None


def _dedent(code: str) -> str:
    """Dedent code whose first line starts right after the opening quote or brace.

    `query={`mutation x {` puts the first line at column 0 and the rest at the prop's
    indentation, so the lines after the first set the margin.
    """
    first, _, rest = code.partition("\n")
    if not first.strip() or first[:1].isspace():
        return textwrap.dedent(code).strip("\n")
    return (first + "\n" + textwrap.dedent(rest)).rstrip()


def resolve_subheadings(text: str) -> str:
    """Give each component title a heading one level below the heading it sits under."""
    if SUBHEADING not in text:
        return text
    level = 1
    lines = []
    in_fence = False
    for line in text.split("\n"):
        if re.match(r"\s*(```|~~~)", line):
            in_fence = not in_fence
        elif not in_fence:
            heading = re.match(r"(#{1,6})\s", line)
            if heading:
                level = len(heading.group(1))
            elif line.startswith(SUBHEADING):
                line = "#" * min(level + 1, 6) + " " + line[len(SUBHEADING):]
        lines.append(line)
    return "\n".join(lines)
