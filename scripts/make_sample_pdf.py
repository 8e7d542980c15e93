#!/usr/bin/env python3
"""Write knowledge/legal/service-level-agreement.pdf: a small, valid PDF 1.4.

Standard library only. The PDF is written by hand: one content stream per page
with BT/ET text objects in Helvetica and Helvetica-Bold (the standard 14 fonts,
so nothing is embedded), and a cross-reference table with exact byte offsets.

Usage:
    python scripts/make_sample_pdf.py [output-path]
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "knowledge" / "legal" / "service-level-agreement.pdf"

PAGE_W, PAGE_H = 612, 792  # US Letter, points
MARGIN_X, TOP_Y, BOTTOM_Y = 72, 740, 60

# Each entry: (style, text). Styles: title, h, p, row, gap.
# Paragraphs are wrapped; "row" lines are kept as they are (table rows).
PAGES: list[list[tuple[str, str]]] = [
    [
        ("title", "Quillstack Service Level Agreement"),
        ("p", "Version 3.1, effective 1 March 2025. Applies to Business and Enterprise subscriptions."),
        ("h", "1. Scope"),
        ("p", "This Service Level Agreement (SLA) is part of the Quillstack Terms of Service. It describes "
              "the availability Quillstack Inc. commits to for the Quillstack web application, the API at "
              "https://api.quillstack.example/v2 and e-signature sending, and the service credits a customer "
              "can claim if that commitment is missed. The Free and Team plans are provided without an SLA."),
        ("h", "2. Uptime commitment"),
        ("p", "Quillstack will make the covered services available with a Monthly Uptime Percentage of at least:"),
        ("row", "Business plan: 99.9% (about 43 minutes of downtime per 30-day month)"),
        ("row", "Enterprise plan: 99.95% (about 22 minutes of downtime per 30-day month)"),
        ("p", "Monthly Uptime Percentage is the total number of minutes in a calendar month, minus the minutes "
              "of Downtime, divided by the total number of minutes in that month. Downtime is any period of one "
              "minute or longer in which more than 5% of requests to a covered service fail with a server error "
              "or time out, as measured by Quillstack's external monitoring from at least three locations."),
        ("h", "3. Exclusions"),
        ("p", "Downtime does not include: scheduled maintenance announced at least 72 hours in advance on "
              "status.quillstack.example, limited to 4 hours per month and held on Sundays between 02:00 and "
              "06:00 UTC; emergency security patches; problems caused by the customer's own systems, networks "
              "or integrations; failures of third-party services such as a recipient's email provider; "
              "suspension for non-payment or breach of the Terms; and events beyond Quillstack's reasonable "
              "control (force majeure). Features labelled beta or preview are not covered."),
        ("h", "4. Service credits"),
        ("p", "If the Monthly Uptime Percentage falls below the commitment, the customer may claim a credit "
              "calculated as a percentage of the subscription fee paid for the affected month:"),
        ("row", "Business plan"),
        ("row", "    Uptime below 99.9% but at least 99.0%  ->  10% credit"),
        ("row", "    Uptime below 99.0% but at least 95.0%  ->  25% credit"),
        ("row", "    Uptime below 95.0%                     ->  50% credit"),
        ("row", "Enterprise plan"),
        ("row", "    Uptime below 99.95% but at least 99.9%  ->  10% credit"),
        ("row", "    Uptime below 99.9% but at least 99.0%   ->  25% credit"),
        ("row", "    Uptime below 99.0%                      ->  50% credit"),
        ("p", "Service credits for any month are capped at 50% of that month's subscription fee. Envelope "
              "overage charges and storage add-ons are not included in the amount used to calculate credits."),
    ],
    [
        ("h", "5. How to claim a credit"),
        ("p", "The workspace Owner or an Admin must email support@quillstack.example within 30 days after the "
              "end of the month in which the Downtime happened, with the subject line 'SLA credit request'. "
              "The claim must include the workspace ID, the dates and times of the Downtime in UTC, and a "
              "description of the impact. Quillstack will confirm or reject the claim within 10 business days. "
              "Approved credits are applied to the next invoice. Credits are not paid out in cash and cannot "
              "be transferred to another workspace."),
        ("h", "6. Sole remedy"),
        ("p", "Service credits are the customer's sole and exclusive remedy for any failure to meet the uptime "
              "commitment. If the Monthly Uptime Percentage is below 95.0% in three consecutive months, an "
              "Enterprise customer may terminate its contract without penalty by written notice within 30 days, "
              "and receive a refund of prepaid fees for the remaining term."),
        ("h", "7. Support response targets"),
        ("p", "For Enterprise customers, Quillstack will send a first response to Urgent (P1) incidents within "
              "1 hour, 24 hours a day, 7 days a week; to High (P2) incidents within 4 hours; and to Normal (P3) "
              "requests within 1 business day. Business customers receive a first response within 4 business "
              "hours. Response targets are not covered by service credits."),
        ("h", "8. Data durability and recovery"),
        ("p", "Quillstack keeps point-in-time backups of customer data for 35 days in a second location within "
              "the workspace's data region. In a disaster affecting a whole region, Quillstack targets a "
              "recovery point objective of 1 hour and a recovery time objective of 4 hours."),
        ("h", "9. Changes to this SLA"),
        ("p", "Quillstack may update this SLA with at least 90 days' notice. A change that reduces the "
              "commitment does not apply to an Enterprise customer until its current contract term renews."),
        ("p", "Quillstack Inc. - legal@quillstack.example - quillstack.example/legal/sla"),
    ],
]

STYLE = {  # font resource, size, space before, line height
    "title": ("F2", 18, 0, 24),
    "h": ("F2", 12, 10, 16),
    "p": ("F1", 10, 2, 13),
    "row": ("F1", 10, 0, 13),
}


def pdf_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def page_stream(items: list[tuple[str, str]], page_no: int, page_count: int) -> bytes:
    ops: list[str] = []
    y = TOP_Y
    for style, text in items:
        font, size, before, lead = STYLE[style]
        y -= before
        width_chars = 95 if size <= 10 else 70
        lines = textwrap.wrap(text, width_chars) if style in ("p", "h", "title") else [text]
        for line in lines:
            if y < BOTTOM_Y:
                raise SystemExit(f"page {page_no} overflows; move text to the next page")
            ops.append(f"BT /{font} {size} Tf {MARGIN_X} {y} Td ({pdf_escape(line)}) Tj ET")
            y -= lead
    footer = f"Quillstack Service Level Agreement - page {page_no} of {page_count}"
    ops.append(f"BT /F1 8 Tf {MARGIN_X} 36 Td ({pdf_escape(footer)}) Tj ET")
    return ("\n".join(ops) + "\n").encode("latin-1")


def build_pdf(pages: list[list[tuple[str, str]]]) -> bytes:
    n = len(pages)
    # Object numbers: 1 catalog, 2 pages, 3 Helvetica, 4 Helvetica-Bold,
    # then (page, content) pairs, then the info dictionary.
    page_ids = [5 + 2 * i for i in range(n)]
    content_ids = [6 + 2 * i for i in range(n)]
    info_id = 5 + 2 * n

    objects: dict[int, bytes] = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: ("<< /Type /Pages /Kids [" + " ".join(f"{p} 0 R" for p in page_ids)
            + f"] /Count {n} >>").encode(),
        3: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        4: b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        info_id: b"<< /Title (Quillstack Service Level Agreement) /Author (Quillstack Inc.) "
                 b"/Producer (scripts/make_sample_pdf.py) >>",
    }
    for i, items in enumerate(pages):
        stream = page_stream(items, i + 1, n)
        objects[content_ids[i]] = (f"<< /Length {len(stream)} >>\nstream\n".encode()
                                   + stream + b"endstream")
        objects[page_ids[i]] = (
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] "
            f"/Resources << /Font << /F1 3 0 R /F2 4 0 R >> >> /Contents {content_ids[i]} 0 R >>"
        ).encode()

    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets: dict[int, int] = {}
    for num in sorted(objects):
        offsets[num] = len(out)
        out += f"{num} 0 obj\n".encode() + objects[num] + b"\nendobj\n"

    size = max(objects) + 1
    xref_at = len(out)
    out += f"xref\n0 {size}\n".encode()
    out += b"0000000000 65535 f \n"
    for num in range(1, size):
        out += f"{offsets[num]:010d} 00000 n \n".encode()
    out += (f"trailer\n<< /Size {size} /Root 1 0 R /Info {info_id} 0 R >>\n"
            f"startxref\n{xref_at}\n%%EOF\n").encode()
    return bytes(out)


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(build_pdf(PAGES))
    print(f"wrote {out} ({out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
