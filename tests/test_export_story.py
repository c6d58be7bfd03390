"""The story exporters: a Fountain screenplay checked with an independent parser (screenplain),
and the Markdown report; both read only the run store, so a copied run.db exports the same."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from screenplain.parsers import fountain as fp
from screenplain.types import Action, Dialog, Slug

from timepoint.export import fountain, markdown
from timepoint.store import RunStore


def _copy_db(run_dir: Path, dest: Path) -> Path:
    """A run directory elsewhere holding only run.db."""
    dest.mkdir(parents=True)
    return Path(shutil.copy(run_dir / "run.db", dest / "run.db"))


def _export(db: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    store = RunStore(db)
    try:
        fountain.export(store, out)
        markdown.export(store, out)
    finally:
        store.close()
    return out


def _parse(out: Path):
    """Through `parse`, which also drops /* boneyard */, as a reader of the file would."""
    with (out / "screenplay.fountain").open(encoding="utf-8") as f:
        return fp.parse(f)


def _one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def rows(finished_run) -> dict:
    """What the screenplay and report must show, straight from the store's tables."""
    store = finished_run.store()
    try:
        timepoints = [t for t in store.rows("timepoints", "idx") if t["timeline_id"] == "main"]
        tp_order = {t["timepoint_id"]: t["idx"] for t in timepoints}
        dialog_tp = {d["dialog_id"]: d["timepoint_id"] for d in store.rows("dialogs")}
        turns = sorted(store.rows("turns"), key=lambda t: (tp_order[dialog_tp[t["dialog_id"]]], t["idx"]))
        return {"run": store.run(), "timepoints": timepoints, "turns": turns,
                "names": {e["entity_id"]: e["name"] for e in store.rows("entities")},
                "mechanisms": {m["mechanism"] for m in store.rows("mechanism_usage")}}
    finally:
        store.close()


@pytest.fixture(scope="module")
def exported(finished_run, tmp_path_factory) -> Path:
    return _export(finished_run.run_dir / "run.db", tmp_path_factory.mktemp("story"))


def test_screenplay_has_a_scene_per_timepoint_and_a_dialog_block_per_turn(exported, rows):
    script = _parse(exported)
    slugs = [p for p in script if isinstance(p, Slug)]
    dialogs = [p for p in script if isinstance(p, Dialog)]
    speakers = [rows["names"][t["speaker"]].upper() for t in rows["turns"]]

    assert script.title_page["Title"] == [rows["run"]["title"]]
    assert script.title_page["Author"] == ["Timepoint"]
    assert len(slugs) == len(rows["timepoints"]) > 0
    assert all(str(s.line).startswith("INT. ") for s in slugs)
    assert len(dialogs) == len(rows["turns"]) > 0
    assert {str(d.character) for d in dialogs} == set(speakers)
    assert [str(d.character) for d in dialogs] == speakers, "turns out of story order"
    assert [str(d.blocks[-1][1]) for d in dialogs] == [_one_line(t["content"]) for t in rows["turns"]]


def test_screenplay_keeps_generated_text_in_its_element(finished_run, rows, tmp_path):
    """Model text that looks like Fountain markup (headings, cues, boneyard, notes) stays action or dialog."""
    db = _copy_db(finished_run.run_dir, tmp_path / "run")
    tricky = ["THE VOTE IS CALLED.", "Int. a line that reads like a heading", ". The room goes quiet",
              "> The lights dim <", "@Marcus ~ hums", "# Not a section = not a synopsis"]
    speakers = list(dict.fromkeys(t["speaker"] for t in rows["turns"]))
    first, second = speakers[0], speakers[1]
    with sqlite3.connect(db) as conn:
        for tp, event, summary in zip(rows["timepoints"], tricky[::2], tricky[1::2]):
            conn.execute("UPDATE timepoints SET event = ? WHERE timepoint_id = ?", (event, tp["timepoint_id"]))
            conn.execute("UPDATE dialogs SET summary = ? WHERE timepoint_id = ?", (summary, tp["timepoint_id"]))
        conn.execute("UPDATE entities SET name = ? WHERE entity_id = ?", ("Dr. Ama O'Neil", first))
        conn.execute("UPDATE entities SET name = ? WHERE entity_id = ?", ("李明", second))
        turns = rows["turns"]
        for turn, content in ((turns[0], "It costs /* more"), (turns[1], "than [[the model]] says */ today")):
            conn.execute("UPDATE turns SET content = ? WHERE dialog_id = ? AND idx = ?",
                         (content, turn["dialog_id"], turn["idx"]))
    conn.close()

    script = _parse(_export(db, tmp_path / "out"))
    actions = {_one_line(" ".join(str(line) for line in p.lines)) for p in script if isinstance(p, Action)}
    dialogs = [p for p in script if isinstance(p, Dialog)]

    assert len([p for p in script if isinstance(p, Slug)]) == len(rows["timepoints"])
    assert set(tricky[:2 * len(rows["timepoints"])]) <= actions
    assert len(dialogs) == len(rows["turns"]), "a boneyard or note swallowed dialog"
    assert str(dialogs[0].blocks[-1][1]) == "It costs /* more"
    assert {"DR. AMA O'NEIL", "李明"} <= {str(d.character) for d in dialogs}


def test_report_tells_the_story(exported, rows):
    report = _one_line((exported / "report.md").read_text(encoding="utf-8"))
    run = rows["run"]

    assert report.startswith(f"# {run['title']}")
    assert _one_line(run["premise"]) in report
    assert all(name in report for name in rows["names"].values())
    assert all(_one_line(tp["event"]) in report for tp in rows["timepoints"])
    assert f"**Cost:** ${run['cost_usd']:.4f}" in report
    assert all(f"| {m} |" in report for m in rows["mechanisms"])
    assert "## Timelines" not in report, "a single timeline needs no table"


def test_report_lists_competing_timelines(finished_run, tmp_path):
    db = _copy_db(finished_run.run_dir, tmp_path / "run")
    with sqlite3.connect(db) as conn:
        run_id = conn.execute("SELECT run_id FROM runs").fetchone()[0]
        conn.execute("INSERT INTO timelines (run_id, timeline_id, parent_timeline_id, branch_point, mode, rank,"
                     " coherence, flags, metadata) VALUES (?, 'branch_1', 'main', 'tp_001', 'branching', 1, 0.42,"
                     " '[\"low_coherence\"]', '{}')", (run_id,))
    conn.close()

    report = (_export(db, tmp_path / "out") / "report.md").read_text(encoding="utf-8")

    assert "## Timelines" in report
    assert "| `branch_1` | branching | 1 | 0.42 | 0 | low_coherence | main | tp_001 |" in report


def test_export_from_a_copied_run_db_is_identical(finished_run, exported, tmp_path):
    out = _export(_copy_db(finished_run.run_dir, tmp_path / "elsewhere"), tmp_path / "out")

    for name in ("screenplay.fountain", "report.md"):
        assert (out / name).read_bytes() == (exported / name).read_bytes(), name
