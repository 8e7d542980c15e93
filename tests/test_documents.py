"""Loaders per file type and the reasons bad files are skipped."""
from __future__ import annotations

from pathlib import Path

import pytest

from app.core.docs.documents import UnreadableFile, load_document
from conftest import KNOWLEDGE


def load(name: str, data: bytes | str):
    return load_document(Path(name), data.encode() if isinstance(data, str) else data)


def test_markdown_front_matter_becomes_metadata_and_mdx_tags_are_stripped():
    doc = load("guide.mdx", """---
title: Deploy a service
description: How deploys work
order: 3
---
import { Banner } from "../components"

<Banner type="info">Deploys take about **2 minutes**.</Banner>

<Image src="/img/deploy.png" alt="Deploy button"/>

## Steps

```bash
railway up  # <NotATag> inside code stays
```
""")
    assert doc.metadata["title"] == "Deploy a service"
    assert doc.metadata["description"] == "How deploys work"
    assert doc.metadata["order"] == 3
    assert doc.text.startswith("# Deploy a service\n")  # the front-matter title becomes the H1
    assert "Deploys take about **2 minutes**." in doc.text
    assert "<Banner" not in doc.text and "</Banner>" not in doc.text and "<Image" not in doc.text
    assert "import {" not in doc.text
    assert "railway up  # <NotATag> inside code stays" in doc.text  # code blocks kept verbatim
    assert "title:" not in doc.text


def test_multi_line_components_are_stripped_but_their_code_and_titles_kept():
    doc = load("cookbook.md", """# API cookbook

## Domains

<Image src="https://cdn.example/shot.png"
alt="screenshot of the domains page"
layout="responsive"
width={1676} height={1490} quality={100} />

### Add custom domain

<GraphQLCodeTabs
  query={`mutation customDomainCreate($input: CustomDomainCreateInput!) {
      customDomainCreate(input: $input) {
        id
      }
    }`}
  variables={{
    input: {
      domain: "api.example.com"
    }
  }}
  requiredFields={[
    { name: "domain", label: "Domain", path: "input.domain" }
  ]}
/>

<Collapse title="Can I transfer a domain between workspaces?">
Not yet. This capability is planned.
</Collapse>

<Banner variant="info">
    Skipped builds are experimental: tell us on{" "}
    <a href="https://station.example" target="_blank">Central Station</a>, see <code>fd12::/16</code>.
</Banner>

Send `<Banner>` as a literal, keep a < b, <5 minutes, Bearer <API_KEY> and <your-token>.
""")
    text = doc.text
    for markup in ("<Image", "width={1676}", "/>", "<GraphQLCodeTabs", "requiredFields", "<Collapse", "</Banner>", "<a ", "{\" \"}"):
        assert markup not in text, markup
    # The query and its variables are the page's content: kept as code, dedented.
    assert "```\nmutation customDomainCreate($input: CustomDomainCreateInput!) {\n  customDomainCreate(input: $input) {" in text
    assert 'domain: "api.example.com"' in text
    # A collapsible FAQ's question becomes a sub-heading of the section it sits in.
    assert "#### Can I transfer a domain between workspaces?\n\nNot yet. This capability is planned." in text
    assert "tell us on Central Station, see `fd12::/16`." in " ".join(text.split())
    assert "Send `<Banner>` as a literal, keep a < b, <5 minutes, Bearer <API_KEY> and <your-token>." in text


def test_horizontal_rules_go_and_setext_underlines_become_headings():
    doc = load("faq.md", "Billing\n=======\n\nIntro.\n\n---\n\nRefunds\n-------\n\nWithin 14 days.\n\n* * *\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert doc.text.startswith("# Billing\n\nIntro.\n\n## Refunds\n\nWithin 14 days.\n")
    assert "---\n" not in doc.text.replace("|---|---|", "") and "* * *" not in doc.text
    assert "|---|---|" in doc.text  # a table's rule is not a horizontal rule


def test_plain_text_keeps_its_lines_and_gets_a_title_from_the_file_name():
    doc = load("release-notes.txt", "Version 2.1\r\nFixed sync.\r\n")
    assert doc.text == "Version 2.1\nFixed sync.\n"
    assert doc.metadata["title"] == "release notes"


def test_html_keeps_the_article_and_drops_scripts_navigation_and_footer():
    doc = load("page.html", """<html><head><title>Reset your password</title>
<style>.x{color:red}</style><script>var tracking = 1;</script></head>
<body><nav><a href="/">Home</a><a href="/pricing">Pricing menu</a></nav>
<main><h1>Reset your password</h1><p>Open <b>Settings</b> and choose Reset.</p>
<p>Secrets start with <code>whsec_</code>. Keys (<code>qs_live_</code>) never match.</p>
<h2>If the email never arrives</h2><ul><li>Check spam.</li><li>Wait 5 minutes.</li></ul>
<div style="display:none">hidden injected text</div></main>
<footer>We use cookies.</footer></body></html>""")
    assert "# Reset your password" in doc.text
    assert "## If the email never arrives" in doc.text
    assert "Open Settings and choose Reset." in doc.text  # no "Settings ." from the inline tag
    assert "- Check spam." in doc.text
    assert "Secrets start with `whsec_`. Keys (`qs_live_`) never match." in doc.text  # inline code keeps its marks
    for noise in ("tracking", "color:red", "Pricing menu", "cookies", "hidden injected text"):
        assert noise not in doc.text


def test_pdf_text_is_extracted_page_by_page():
    pdfs = sorted(KNOWLEDGE.rglob("*.pdf"))
    assert pdfs, "knowledge/ must ship one PDF"
    doc = load_document(pdfs[0], pdfs[0].read_bytes())
    assert "## Page 1" in doc.text
    assert len(doc.text) > 200


@pytest.mark.parametrize("name,data,reason", [
    ("empty.md", b"", "empty file"),
    ("blank.txt", b"  \n\n  ", "empty file"),
    ("image.md", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
    ("latin1.txt", "caf\u00e9 cr\u00e8me".encode("latin-1"), "not UTF-8"),
    ("broken.pdf", b"%PDF-1.4\n1 0 obj garbage\n%%EOF", "corrupt PDF"),
    ("tags-only.mdx", b"<Banner></Banner>\n", "no text"),
])
def test_bad_files_raise_a_reason(name, data, reason):
    with pytest.raises(UnreadableFile) as error:
        load(name, data)
    assert reason in str(error.value)
