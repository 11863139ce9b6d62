"""One table model for every text table ebm-bench writes: a header, rows of text cells, a title and a note.

The leaderboard, `compare`, the reliability table, the probes and the experiment analyses build a TextTable from
their numbers (the cells are already formatted: each caller knows its digits) and render it as markdown, CSV,
LaTeX or HTML here; the terminal view (`ebm-bench leaderboard` in a terminal) reads the same header and rows. So a
table reads the same in every format, and a fix to one format's escaping reaches every table.
"""

from __future__ import annotations

import csv
import html
import io
from dataclasses import dataclass, field

from .errors import ConfigError

FORMATS = ("markdown", "csv", "latex", "html")
_LATEX = (("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"), ("_", "\\_"), ("#", "\\#"), ("±", "$\\pm$"),
          ("↑", "$\\uparrow$"), ("↓", "$\\downarrow$"))


@dataclass
class TextTable:
    header: list[str]
    rows: list[list[str]] = field(default_factory=list)
    title: str = ""  # markdown: a bold line above the table; HTML: its heading
    note: str = ""  # what the cells mean, under the table
    text_columns: int = 1  # the leading columns that hold words (left-aligned in HTML); the rest hold numbers

    def __post_init__(self):
        width = len(self.header)
        for row in self.rows:
            if len(row) != width:
                raise ValueError(f"a table row has {len(row)} cells, its header {width}: {row!r}")

    def markdown_body(self) -> str:
        """The title and the table, without the note or a final newline (see `markdown_document`)."""
        def line(cells) -> str:
            return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

        lines = ([f"**{self.title}**", ""] if self.title else []) + [line(self.header), "|" + "---|" * len(self.header)]
        return "\n".join(lines + [line(row) for row in self.rows])

    def markdown(self) -> str:
        return markdown_document([self], self.note)

    def csv(self) -> str:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(self.header)
        writer.writerows(self.rows)
        return buffer.getvalue()

    def latex(self) -> str:
        def tex(text: str) -> str:
            for a, b in _LATEX:
                text = text.replace(a, b)
            return text

        lines = ["\\begin{tabular}{" + "l" * len(self.header) + "}", "\\hline",
                 " & ".join(tex(h) for h in self.header) + " \\\\", "\\hline"]
        lines += [" & ".join(tex(c) for c in row) + " \\\\" for row in self.rows]
        return "\n".join(lines + ["\\hline", "\\end{tabular}"]) + "\n"

    def html(self, page_title: str = "") -> str:
        """A self-contained page, headed by `page_title` (else the table's title)."""
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>\n" for row in self.rows)
        title = html.escape(page_title or self.title or "ebm-bench")
        left = f"td:nth-child(-n+{self.text_columns}),th:nth-child(-n+{self.text_columns}){{text-align:left}}"
        note = f"<p>{html.escape(self.note)}</p>\n" if self.note else ""
        return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                f"<title>{title}</title>\n<style>body{{font-family:sans-serif;margin:2em}}"
                "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}"
                f"{left}th{{background:#eee}}</style>\n</head>\n"
                f"<body>\n<h1>{title}</h1>\n<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
                f"{body}</tbody>\n</table>\n{note}</body>\n</html>\n")

    def render(self, fmt: str) -> str:
        if fmt not in FORMATS:
            raise ConfigError(f"unknown format {fmt!r}; use {', '.join(FORMATS)}")
        return getattr(self, fmt)()


def markdown_document(tables: list[TextTable], note: str = "") -> str:
    """Tables one after another (a blank line between), then the note, as markdown ending in a newline."""
    text = "\n\n".join(table.markdown_body() for table in tables)
    return text + (f"\n\n{note}\n" if note else "\n")
