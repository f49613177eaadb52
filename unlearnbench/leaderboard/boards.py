"""Boards rendered from the accepted submissions: ``README.md`` (a table per task) and a
self-contained ``index.html`` (sortable tables with the original target and the oracle as
reference rows, and a forget-vs-utility scatter per task), the latter from the jinja2 template
``unlearnbench/report/templates/leaderboard.html.j2``.

Rendering reads only the stored records (never the registry or a model) and involves no clock,
so the same submissions always give the same bytes; ``stale_files`` tells when a committed
board is not what :func:`build` produces.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from unlearnbench.report.htmlpage import Scatter, axis_label, fmt, params_text, render, scatter_layout
from unlearnbench.leaderboard.submissions import DEFAULT_BOARD, SUBMISSION_FILE, read_quiet, stored_runs, task_folder
from unlearnbench.leaderboard.ranking import GOAL_ARROWS, GOAL_WORDS, Ranking, rank_tiers, ranking_for, suite_rows
from unlearnbench.leaderboard.verify import mark, tier
from unlearnbench.leaderboard import seeds
from unlearnbench.records import RECORD_FILE, harness_dirty

BOARD_FILES = ("README.md", "index.html")
# what the check column says (README's "Verified submissions" tells how a run earns each mark)
MARKS_NOTE = ("check: verified, the board scored the run again from its saved weights and got the scores it sent "
              "(unlearnbench submit --verify); recomputed, every number recomputed from the scores it sent, not from "
              "a model; references unverified, the board could not score the task's target and oracle to compare. "
              "Verified runs rank first: a recomputed run never ranks above a verified one.")


@dataclass
class Column:
    name: str
    goal: str
    lens: str
    description: str


@dataclass
class TaskBoard:
    """One table: the runs of one task (one fingerprint, one evaluation mode), ranked."""

    task: str
    suite: str
    version: str
    fingerprint: str
    mode: str
    ranking: Ranking
    columns: list[Column]  # criteria first, then the suite's other rows
    ranked: list[tuple[int, float | None, dict]]
    references: list[tuple[str, dict]]  # ("original" | "oracle" [+ #n], metrics)
    name: str = ""  # the title: the task, plus the mode and the fingerprint where needed
    seeds: seeds.SeedBoard | None = None  # runs differing only by seed, aggregated (None: no such runs)
    models: tuple[str, str] = ("", "")  # the target and oracle fingerprints most of its runs share

    def other_models(self, record: dict) -> bool:
        """Whether ``record`` was scored against another target or oracle than the board's."""
        return model_fingerprints(record) != self.models

    @property
    def anchor(self) -> str:
        return "task-" + task_folder(self.name)


def collect(board: Path = DEFAULT_BOARD) -> list[dict]:
    """The accepted records, each with ``_path`` (its folder relative to the board)."""
    board = Path(board)
    records = []
    for task_dir in stored_runs(board):
        for run in stored_runs(task_dir):
            record = read_quiet(run / RECORD_FILE)
            if isinstance(record, dict) and "run_id" in record:
                meta = read_quiet(run / SUBMISSION_FILE) or {}
                records.append(record | {"_path": f"{task_dir.name}/{run.name}", "_submission": meta})
    return records


def model_fingerprints(record: dict) -> tuple[str, str]:
    """The (target, oracle) weight fingerprints a record was scored against ("" where absent)."""
    model = record.get("model") if isinstance(record.get("model"), dict) else {}
    return tuple(str(model.get(k) or "") for k in ("target_fingerprint", "oracle_fingerprint"))


def majority_models(group: list[dict]) -> tuple[str, str]:
    """The (target, oracle) fingerprints most runs of a board share (the first run's on a tie)."""
    counts: dict[tuple[str, str], int] = {}
    for r in group:
        counts[model_fingerprints(r)] = counts.get(model_fingerprints(r), 0) + 1
    return max(counts, key=counts.get) if counts else ("", "")


def task_boards(records: Iterable[dict]) -> list[TaskBoard]:
    """Group the records by (task, fingerprint, mode) and rank each group."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for r in records:
        key = (r["task"]["name"], r["task"].get("fingerprint", ""), str(r.get("mode") or "standard"))
        groups.setdefault(key, []).append(r)
    boards = []
    for (name, fp, mode), group in sorted(groups.items()):
        group.sort(key=lambda r: r["run_id"])
        suite = group[0]["task"].get("suite", "")
        rows = suite_rows(suite)
        present = {m for r in group for m in r.get("metrics", {})}
        ranking = ranking_for(suite, rows, present)
        row_by_name = {r.name: r for r in rows}
        columns = [Column(c.metric, c.goal, getattr(row_by_name.get(c.metric), "lens", ""),
                          getattr(row_by_name.get(c.metric), "description", "")) for c in ranking.criteria]
        taken = {c.name for c in columns}
        columns += [Column(r.name, r.direction, r.lens, r.description) for r in rows if r.name in present and r.name not in taken]
        taken = {c.name for c in columns}
        columns += [Column(m, "info", "", "") for m in sorted(present - taken)]
        references, seen = [], []
        for r in group:
            key = json.dumps(r.get("reference", {}), sort_keys=True)
            if key in seen:
                continue
            seen.append(key)
            suffix = "" if len(seen) == 1 else f" #{len(seen)}"
            references += [(f"original{suffix}", r.get("reference", {}).get("original", {})),
                           (f"oracle{suffix}", r.get("reference", {}).get("oracle", {}))]
        boards.append(TaskBoard(name, suite, str(group[0]["task"].get("version", "")), fp, mode, ranking, columns,
                                rank_tiers(group, ranking, tier), references, seeds=seeds.seed_board(group, ranking),
                                models=majority_models(group)))
    worlds = {}
    for b in boards:
        worlds.setdefault(b.task, set()).add(b.fingerprint)
    for b in boards:  # several worlds under one task name: the fingerprint tells them apart
        b.name = b.task + ("" if b.mode == "standard" else f" · {b.mode}") + (
            f" ({b.fingerprint[:8]})" if len(worlds[b.task]) > 1 else "")
    return boards


def placement(board: Path, run_id: str) -> str:
    """Where a stored run ranks: "rank 2 of 5 on <task>"."""
    for b in task_boards(collect(board)):
        for position, _, r in b.ranked:
            if r["run_id"] == run_id:
                return f"rank {position} of {len(b.ranked)} on {b.name}"
    return f"{run_id} is not on the board"


def rich_table(b: TaskBoard):
    """The ranking for the terminal (``unlearnbench leaderboard show``)."""
    from rich.table import Table
    from rich.text import Text

    # every string from a record is a Text: never parsed as markup (a name like "evil[/]" or
    # "[link=...]" is shown as it is, not interpreted)
    crit = b.columns[: len(b.ranking.criteria)]
    table = Table(title=Text(f"{b.name} · ranked {ranking_text(b.ranking)}"), title_justify="left")
    for col, justify in (("#", "right"), ("method", "left"), ("check", "left"), ("seed", "right")):
        table.add_column(col, justify=justify)
    for c in crit:
        table.add_column(f"{c.name} {GOAL_ARROWS.get(c.goal, '')}", justify="right")
    if len(crit) > 1:
        table.add_column("mean rank", justify="right")
    table.add_column("params", overflow="fold")
    for position, score, r in b.ranked:
        cells = [str(position), str(r["method"]["name"]) + (" †" if harness_dirty(r) else "") + (" ‡" if b.other_models(r) else ""),
                 mark(r), str(r["seed"])]
        cells += [fmt(r["metrics"].get(c.name)) for c in crit] + ([f"{score:g}"] if len(crit) > 1 else [])
        table.add_row(*map(Text, cells), Text(params_text(r["method"].get("params"))))
    table.add_section()
    for label, metrics in b.references:
        table.add_row("ref", Text(label, style="italic"), "", "", *[fmt(metrics.get(c.name)) for c in crit],
                      *([""] if len(crit) > 1 else []), "")
    return table


def ranking_text(ranking: Ranking) -> str:
    if not ranking.criteria:
        return "no ranked metric; ordered by run id"
    crit = ", ".join(f"{c.metric} ({GOAL_WORDS[c.goal]}" + (f", {c.floor:g} at best" if c.floor is not None else "") + ")"
                     for c in ranking.criteria)
    how = "by mean rank over " if len(ranking.criteria) > 1 else "by "
    return f"{how}{crit}. Source: {ranking.source}."


# What Markdown (GitHub's) would read as syntax in a table cell: HTML (tags, entities,
# autolinks in <...>), links and images ([..](..)), code spans, emphasis and the cell bar.
# Each becomes text: & < > as HTML entities, the others backslash-escaped; "_" only where it
# could open or close emphasis (at a word boundary), so snake_case names read as they are.
_MD_SPECIAL = re.compile(r"[\\`*\[\]|~]|_+")
_MD_CODE = re.compile(r"[A-Za-z0-9._/+=-]*")


def _md(text: str) -> str:
    """``text`` as literal Markdown: no HTML, no link, no emphasis can come from it."""
    text = html.escape(" ".join(str(text).splitlines()), quote=False)

    def escaped(m: re.Match) -> str:
        run, before, after = m.group(0), text[m.start() - 1: m.start()], text[m.end(): m.end() + 1]
        if run[0] == "_" and before.isalnum() and after.isalnum():  # inside a word: never emphasis
            return run
        return "".join("\\" + c for c in run)

    return _MD_SPECIAL.sub(escaped, text)


def _md_code(text: str) -> str:
    """An identifier in a code span, or escaped text when it is not a plain identifier."""
    return f"`{text}`" if _MD_CODE.fullmatch(str(text)) else _md(text)


def _md_models(b: TaskBoard) -> str:
    target, oracle = b.models
    return (f"Target weights {_md_code(target or 'unknown')}, oracle {_md_code(oracle or 'none')} "
            "(the fingerprints most runs share).")


def render_markdown(boards: list[TaskBoard]) -> str:
    out = ["# Leaderboards", "",
           "Rendered by `unlearnbench leaderboard build` from the submissions in this folder (one folder per task, "
           "one per run); do not edit by hand. Submit a run with `unlearnbench submit runs/<run_id>`; "
           "`index.html` is the same board, sortable, with a forget-vs-utility plot per task.", "", MARKS_NOTE, ""]
    if not boards:
        out += ["No submissions yet.", ""]
    for b in boards:
        crit = [c for c in b.columns[: len(b.ranking.criteria)]]
        out += [f"## {_md(b.name)}", "",
                f"Suite {_md_code(b.suite)}, task version {_md(b.version)}, fingerprint {_md_code(b.fingerprint)}. "
                f"Ranked {ranking_text(b.ranking)}", "", _md_models(b), ""]
        header = ["#", "method", "check", "params", "seed"] + [f"{c.name} {GOAL_ARROWS.get(c.goal, '')}".strip() for c in crit]
        header += ["mean rank"] if len(crit) > 1 else []
        header += ["run"]
        out += ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if h not in ("method", "check", "params", "run") else "---" for h in header) + "|"]
        for position, score, r in b.ranked:
            name = _md(r["method"]["name"]) + (" †" if harness_dirty(r) else "") + (" ‡" if b.other_models(r) else "")
            cells = [str(position), name, mark(r), _md(params_text(r["method"].get("params"))), _md(r["seed"])]
            cells += [fmt(r["metrics"].get(c.name)) for c in crit]
            cells += [f"{score:g}"] if len(crit) > 1 else []
            cells += [f"[{_md(r['run_id'])}]({quote(r['_path'])}/{RECORD_FILE})"]
            out.append("| " + " | ".join(cells) + " |")
        for label, metrics in b.references:
            cells = ["ref", f"*{label}*", "", "", ""] + [fmt(metrics.get(c.name)) for c in crit]
            cells += [""] if len(crit) > 1 else []
            out.append("| " + " | ".join(cells + [""]) + " |")
        out.append("")
        if any(harness_dirty(r) for _, _, r in b.ranked):
            out += ["† made from a harness with uncommitted changes (accepted with `--allow-dirty`).", ""]
        if any(b.other_models(r) for _, _, r in b.ranked):
            others = "; ".join(f"{_md_code(r['run_id'])} {_md_code(fp[0] or 'unknown')} / {_md_code(fp[1] or 'none')}"
                               for _, _, r in b.ranked if b.other_models(r) for fp in [model_fingerprints(r)])
            out += [f"‡ scored against another target / oracle than the fingerprints above ({others}): "
                    "its numbers do not compare with the others'.", ""]
        if b.seeds is not None:
            out += seeds.markdown_lines(b.seeds, fmt, params_text, _md)
    return "\n".join(out).rstrip() + "\n"


def _goal(board: TaskBoard, metric: str) -> str:
    return next((c.goal for c in board.columns if c.name == metric), "info")


def board_scatter(board: TaskBoard) -> Scatter | None:
    r = board.ranking
    if not (r.x and r.y):
        return None
    points = [(f"{rec['method']['name']} s{rec['seed']}", rec["metrics"].get(r.x), rec["metrics"].get(r.y), "run")
              for _, _, rec in board.ranked]
    points += [(label, m.get(r.x), m.get(r.y), label.split()[0]) for label, m in board.references]
    return scatter_layout(points, axis_label(r.x, _goal(board, r.x), r.log_x),
                          axis_label(r.y, _goal(board, r.y), r.log_y), r.log_x, r.log_y)


@dataclass(frozen=True)
class Slot:
    """One column of a board's metric block: a metric, or the mean rank. With several
    criteria the mean rank follows them ("mean_rank", with a title saying what it is), or
    ends the table when there is no other metric ("mean_rank_last")."""

    kind: str  # metric | mean_rank | mean_rank_last
    name: str = ""
    title: str = ""
    arrow: str = ""
    criterion: bool = False


def _slots(b: TaskBoard) -> list[Slot]:
    n_crit = len(b.ranking.criteria)
    slots = [Slot("metric", c.name, f"{c.description} ({GOAL_WORDS.get(c.goal, c.goal)})".strip(),
                  GOAL_ARROWS.get(c.goal, ""), i < n_crit) for i, c in enumerate(b.columns)]
    if n_crit > 1:
        slots.insert(n_crit, Slot("mean_rank" if len(b.columns) > n_crit else "mean_rank_last"))
    return slots


def _board_view(b: TaskBoard) -> dict[str, Any]:
    """What ``leaderboard.html.j2`` shows of one board."""
    rows = [{"position": position, "score": score, "run_id": r["run_id"], "method": r["method"]["name"],
             "dirty": harness_dirty(r), "other_models": b.other_models(r), "check": mark(r), "params": params_text(r["method"].get("params")), "seed": r["seed"],
             "metrics": r["metrics"], "path": r["_path"]} for position, score, r in b.ranked]
    return {"name": b.name, "anchor": b.anchor, "suite": b.suite, "version": b.version, "fingerprint": b.fingerprint,
            "ranking_text": ranking_text(b.ranking), "slots": _slots(b), "rows": rows, "references": b.references,
            "dirty": any(row["dirty"] for row in rows), "scatter": board_scatter(b),
            "seeds": seeds.seed_view(b.seeds, fmt, params_text), "target_fingerprint": b.models[0],
            "oracle_fingerprint": b.models[1], "other_models": any(row["other_models"] for row in rows)}


def render_html(boards: list[TaskBoard]) -> str:
    return render("leaderboard.html.j2", title="unlearnbench leaderboard", boards=[_board_view(b) for b in boards],
                  record_file=RECORD_FILE, marks_note=MARKS_NOTE)


def build(board: Path = DEFAULT_BOARD, *, write: bool = True) -> dict[str, str]:
    """Render ``README.md`` and ``index.html`` from the stored submissions; returns
    file name -> content (and writes them unless ``write`` is False)."""
    boards = task_boards(collect(board))
    files = {"README.md": render_markdown(boards), "index.html": render_html(boards)}
    if write:
        Path(board).mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (Path(board) / name).write_text(text, encoding="utf-8")
    return files


def stale_files(board: Path = DEFAULT_BOARD) -> list[str]:
    """Board files that differ from what :func:`build` would write."""
    return [name for name, text in build(board, write=False).items()
            if not (Path(board) / name).is_file() or (Path(board) / name).read_text(encoding="utf-8") != text]

