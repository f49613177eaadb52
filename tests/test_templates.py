"""The pages are jinja2 templates with autoescape: whatever a record says (a method name, a run
id, a parameter, a folder name) arrives on the leaderboard page and in the run report as text,
never as markup, a script or a link target. Built from copies of committed leaderboard runs."""

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest

from unlearnbench.leaderboard import boards
from unlearnbench.records import RECORD_FILE
from unlearnbench.report.htmlpage import render
from unlearnbench.report.runs import write_report

REPO = Path(__file__).resolve().parent.parent
SCRIPT = "<script>alert(1)</script>"
LINK = '<a href="javascript:alert(2)">click</a>'
BREAKOUT = '" onmouseover="alert(3)'  # closes an attribute and opens an event handler, unless escaped
HOSTILE = f"{SCRIPT}{LINK}{BREAKOUT}'&"


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text of every script."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self._in_script = False
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag):
        self._in_script = False

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def assert_inert(page: str) -> None:
    """No markup from a record: one script (the sorting one), no event handler, no javascript: link."""
    parsed = Elements(page)
    assert len(parsed.scripts) == 1 and "alert" not in parsed.scripts[0]
    for tag, attrs in parsed.tags:
        assert not [name for name in attrs if name.startswith("on")], (tag, attrs)
        assert not (attrs.get("href") or "").strip().lower().startswith("javascript:"), (tag, attrs)


def hostile(record: dict) -> None:
    record["method"]["name"] = HOSTILE
    record["method"]["params"] = {"note": HOSTILE, HOSTILE: 1.5}
    record["run_id"] = record["run_id"] + HOSTILE
    record["error"] = HOSTILE


@pytest.fixture(scope="module")
def hostile_board(tmp_path_factory):
    board = tmp_path_factory.mktemp("board") / "leaderboards"
    shutil.copytree(REPO / "leaderboards" / "diabetes__random-10", board / "diabetes__random-10")
    for path in board.glob(f"*/*/{RECORD_FILE}"):
        record = json.loads(path.read_text())
        hostile(record)
        path.write_text(json.dumps(record))
    first = sorted(board.glob("*/*"))[0]
    first.rename(first.with_name("javascript:alert(4)"))  # a folder name is a link target too
    boards.build(board)
    return board


def test_the_board_shows_a_hostile_method_name_as_text(hostile_board):
    page = (hostile_board / "index.html").read_text()
    assert SCRIPT not in page and LINK not in page and BREAKOUT not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;&lt;a href=&quot;javascript:alert(2)&quot;&gt;click&lt;/a&gt;" in page
    assert_inert(page)


def test_the_board_links_a_folder_named_like_a_javascript_url_as_a_relative_path(hostile_board):
    page = (hostile_board / "index.html").read_text()
    assert 'href="diabetes__random-10/javascript%3Aalert%284%29/record.json"' in page


def test_the_report_shows_a_hostile_method_name_as_text(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(sorted((REPO / "leaderboards" / "diabetes__random-10").iterdir())[0], run)
    record = json.loads((run / RECORD_FILE).read_text())
    hostile(record)
    record["metrics"][HOSTILE] = 0.5
    (run / RECORD_FILE).write_text(json.dumps(record))
    page = write_report([run], tmp_path / "report.html").read_text()
    assert SCRIPT not in page and LINK not in page and BREAKOUT not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert_inert(page)


def test_the_pages_escape_quotes_as_the_committed_board_does():
    # &#x27; and &quot; (html.escape), not markupsafe's &#39; and &#34;: the committed bytes stay
    page = render("page.html.j2", title="it's \"quoted\" <b>")
    assert "<title>it&#x27;s &quot;quoted&quot; &lt;b&gt;</title>" in page
