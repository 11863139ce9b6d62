"""The one table model (ebm_bench.table): every format written out by hand for one small table."""

from __future__ import annotations

import pytest

from ebm_bench.errors import ConfigError
from ebm_bench.table import TextTable, markdown_document

TABLE = TextTable(["method", "FID ↓", "a|b"], [["ebgan", "1.5 ± 0.2", "x"], ["gan_2", "3 & 4", "50%"]],
                  note="Mean ± std.", text_columns=1)


def test_markdown_escapes_pipes_and_ends_with_the_note():
    assert TABLE.markdown() == ("| method | FID ↓ | a\\|b |\n|---|---|---|\n| ebgan | 1.5 ± 0.2 | x |\n"
                                "| gan_2 | 3 & 4 | 50% |\n\nMean ± std.\n")


def test_titled_tables_follow_each_other_with_one_note():
    one, two = TextTable(["a"], [["1"]], title="first"), TextTable(["b"], [["2"]], title="second")
    assert markdown_document([one, two], "note") == ("**first**\n\n| a |\n|---|\n| 1 |\n\n"
                                                     "**second**\n\n| b |\n|---|\n| 2 |\n\nnote\n")
    assert TextTable(["a"], [["1"]]).markdown() == "| a |\n|---|\n| 1 |\n"  # no note: no blank line


def test_csv_quotes_what_needs_quoting():
    assert TABLE.csv() == 'method,FID ↓,a|b\nebgan,1.5 ± 0.2,x\ngan_2,3 & 4,50%\n'
    assert TextTable(["a"], [["x, y"]]).csv() == 'a\n"x, y"\n'


def test_latex_escapes_its_special_characters():
    assert TABLE.latex() == ("\\begin{tabular}{lll}\n\\hline\nmethod & FID $\\downarrow$ & a|b \\\\\n\\hline\n"
                             "ebgan & 1.5 $\\pm$ 0.2 & x \\\\\ngan\\_2 & 3 \\& 4 & 50\\% \\\\\n\\hline\n"
                             "\\end{tabular}\n")


def test_html_is_a_page_with_escaped_cells_and_left_aligned_text_columns():
    page = TextTable(["m", "v"], [["<b>", "1"]], title="t & u", note="n").html()
    assert "<title>t &amp; u</title>" in page and "<h1>t &amp; u</h1>" in page
    assert "<tr><td>&lt;b&gt;</td><td>1</td></tr>" in page and "<p>n</p>" in page
    assert "td:nth-child(-n+1),th:nth-child(-n+1){text-align:left}" in page
    assert TextTable(["m"], [["1"]]).html(page_title="board").count("board") == 2


def test_a_ragged_row_and_an_unknown_format_are_refused():
    with pytest.raises(ValueError, match="2 cells, its header 1"):
        TextTable(["a"], [["1", "2"]])
    with pytest.raises(ConfigError, match="unknown format 'pdf'"):
        TABLE.render("pdf")
    assert TABLE.render("csv") == TABLE.csv()
