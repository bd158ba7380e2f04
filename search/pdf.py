"""A published document as PDF, for examiners who file copies of the prior art they cite."""

from __future__ import annotations

import datetime
from pathlib import Path

from fpdf import FPDF, XPos, YPos

from search.models import Patent

# DejaVu Sans (see fonts/LICENSE-DejaVu.txt): patent text has Greek letters, degrees and math signs
# that the PDF core fonts lack.
FONTS = Path(__file__).resolve().parent / "fonts"


def render(patent: Patent, url: str) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title(patent.title)
    pdf.set_author("All the Patents")
    pdf.set_subject(f"{patent.public_id}, published {patent.published_at:%Y-%m-%d}")
    pdf.set_creation_date(patent.published_at.astimezone(datetime.UTC))
    pdf.add_font("DejaVu", "", str(FONTS / "DejaVuSans.ttf"))
    pdf.add_font("DejaVu", "B", str(FONTS / "DejaVuSans-Bold.ttf"))
    pdf.set_margins(20, 18, 20)
    pdf.set_auto_page_break(auto=True, margin=18)
    pdf.add_page()

    pdf.set_font("DejaVu", size=9)
    published = patent.published_at.astimezone(datetime.UTC)
    header = f"{patent.public_id}" + (f" · {patent.source_id}" if patent.source_id else "")
    paragraph(pdf, 5, f"{header}\nPublished {published:%Y-%m-%dT%H:%M:%SZ} · {url}")
    if patent.is_generated:
        paragraph(pdf, 5, f"Machine-generated text. Model: {patent.model_name} {patent.model_revision}".strip())
    pdf.ln(3)
    pdf.set_font("DejaVu", "B", 15)
    paragraph(pdf, 7, patent.title)
    pdf.ln(2)
    _section(pdf, "Abstract", patent.abstract)
    pdf.set_font("DejaVu", "B", 11)
    paragraph(pdf, 7, "Claims")
    pdf.set_font("DejaVu", size=10)
    for number, text in patent.numbered_claims:
        paragraph(pdf, 5, f"{number}. {text}")
        pdf.ln(1.5)
    pdf.ln(3)
    pdf.set_font("DejaVu", size=8)
    paragraph(pdf, 4, f"SHA-256 of the published text: {patent.sha256}")
    return bytes(pdf.output())


def paragraph(pdf: FPDF, height: float, text: str) -> None:
    """A paragraph across the page, the next one starting below it at the left margin.

    (fpdf2's multi_cell leaves the cursor after its last line by default, which put the text after
    a one-line heading in a narrow column against the right margin.)
    """
    pdf.multi_cell(pdf.epw, height, text, new_x=XPos.LMARGIN, new_y=YPos.NEXT)


def _section(pdf: FPDF, heading: str, text: str) -> None:
    pdf.set_font("DejaVu", "B", 11)
    paragraph(pdf, 7, heading)
    pdf.set_font("DejaVu", size=10)
    paragraph(pdf, 5, text)
    pdf.ln(3)
