"""Hand-written notes inside generated reports.

A report page is generated from run directories, but what its grids show and the caveats of a run are written
by hand. Those notes live in the page itself, between two markers: rendering the page again keeps them, so they
exist in one place only. ``--notes FILE`` replaces them.
"""

from __future__ import annotations

from pathlib import Path

BEGIN = "<!-- notes: written by hand, kept when this page is rendered again -->"
END = "<!-- /notes -->"


def page_notes(out: str | Path, notes: str | Path | None = None) -> str:
    """The notes block for the page ``out``: the text of ``notes`` when given, else the notes already in the
    page; "" when there are none.

    Raises:
        ValueError: for a ``notes`` file that does not exist.
    """
    if notes is not None:
        if not Path(notes).is_file():
            raise ValueError(f"notes file {notes} not found")
        text = Path(notes).read_text(encoding="utf-8")
    else:
        text = existing_notes(out)
    return f"{BEGIN}\n{text.strip()}\n{END}\n" if text.strip() else ""


def existing_notes(page: str | Path) -> str:
    """The notes between the markers of an existing page ("" when the page or the markers are missing)."""
    page = Path(page)
    if not page.is_file():
        return ""
    text = page.read_text(encoding="utf-8")
    start, end = text.find(BEGIN), text.find(END)
    return text[start + len(BEGIN):end].strip() if 0 <= start < end else ""
