"""The reports people open: `narrative` (the report as JSON), `html` (the run page, standalone) and `pdf`
(the screenplay typeset). Checked against the store's own tables, on the board_meeting run and on a
PORTAL and a BRANCHING run made with `exporters=all`, as a user makes them."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import pypdf
import pytest
from markupsafe import escape

from timepoint.export import narrative as narrative_export
from timepoint.export import pdf
from timepoint.export.page import run_page
from timepoint.store import RunStore

MODE_TEMPLATES = ("mars_mission_portal", "castaway_colony_branching")
FIGURE_IDS = ("fig-timeline", "fig-arcs", "fig-trust", "fig-knowledge", "fig-costs")


@pytest.fixture(scope="module")
def mode_runs(tmp_path_factory) -> dict[str, Path]:
    """A PORTAL and a BRANCHING run on the test model with every exporter, by template."""
    tmp = tmp_path_factory.mktemp("modes")
    runs = {}
    for template in MODE_TEMPLATES:
        run_dir = tmp / template
        proc = subprocess.run([sys.executable, "-m", "timepoint", "model=test", f"template={template}", "exporters=all",
                               f"hydra.run.dir={run_dir}"], capture_output=True, text=True, cwd=tmp,
                              env={**os.environ, "TIMEPOINT_HOME": str(tmp / "home")}, timeout=600)
        assert proc.returncode == 0, proc.stderr
        assert json.loads((run_dir / "run.json").read_text())["export_errors"] == {}
        runs[template] = run_dir
    return runs


def _tables(run_dir: Path) -> dict[str, list[dict]]:
    store = RunStore(run_dir / "run.db")
    try:
        return {t: store.rows(t) for t in ("runs", "timepoints", "timelines", "dialogs", "turns", "mechanism_usage",
                                           "llm_calls", "entities", "exposure_events", "gaps")}
    finally:
        store.close()


def _check_narrative(report: dict, rows: dict[str, list[dict]]) -> None:
    """The narrative says what the store's tables say."""
    run = rows["runs"][0]
    assert report["run"]["id"] == run["run_id"] and report["run"]["status"] == run["status"]
    assert report["run"]["calls"]["total"] == run["llm_calls"] and report["run"]["cost_usd"] == run["cost_usd"]
    main = sorted((t for t in rows["timepoints"] if t["timeline_id"] == "main"), key=lambda t: t["idx"])
    assert [t["id"] for t in report["timeline"]] == [t["timepoint_id"] for t in main]
    assert sorted(t["id"] for t in report["timelines"]) == sorted(t["timeline_id"] for t in rows["timelines"])
    stored = {t["timeline_id"]: t for t in rows["timelines"]}
    for t in report["timelines"]:
        assert (t["rank"], t["parent"], t["branch_point"]) == (stored[t["id"]]["rank"],
                                                                stored[t["id"]]["parent_timeline_id"],
                                                                stored[t["id"]]["branch_point"])
    turns = Counter(t["dialog_id"] for t in rows["turns"])
    assert {d["id"]: len(d["turns"]) for d in report["dialogs"]} == dict(turns)
    assert {d["id"] for d in report["dialogs"]} == {d["dialog_id"] for d in rows["dialogs"]}
    dialog_of = {d["timepoint_id"]: d["dialog_id"] for d in rows["dialogs"]}
    assert [tp["dialog_turns"] for tp in report["timeline"]] == [turns[dialog_of.get(t["timepoint_id"])] for t in main]
    assert {m["id"]: m["uses"] for m in report["mechanisms"]["usage"]} == dict(
        Counter(u["mechanism"] for u in rows["mechanism_usage"]))
    assert sum(r["calls"] for r in report["costs"]) == len(rows["llm_calls"])
    assert sum(r["tokens_in"] for r in report["costs"]) == sum(c["tokens_in"] or 0 for c in rows["llm_calls"])
    assert [c["id"] for c in report["cast"]] == [e["entity_id"] for e in rows["entities"]]
    entities = {e["entity_id"] for e in rows["entities"]}
    told = [e for e in rows["exposure_events"] if e["source"] in entities and e["source"] != e["entity_id"]]
    assert [(k["from"], k["to"], k["information"]) for k in report["knowledge_flow"]] == \
        [(e["source"], e["entity_id"], e["information"]) for e in told]
    assert len(report["gaps"]) == len(rows["gaps"])


def test_narrative_agrees_with_the_store(finished_run, tmp_path):
    store = finished_run.store()
    try:
        [path] = narrative_export.export(store, tmp_path)
    finally:
        store.close()
    report = json.loads(path.read_text(encoding="utf-8"))
    _check_narrative(report, _tables(finished_run.run_dir))
    assert report["knowledge_flow"], "board_meeting's dialogs tell things"


@pytest.mark.parametrize("template", MODE_TEMPLATES)
def test_narrative_of_portal_and_branching_runs(mode_runs, template):
    run_dir = mode_runs[template]
    report = json.loads((run_dir / "narrative.json").read_text(encoding="utf-8"))
    _check_narrative(report, _tables(run_dir))
    assert len(report["timelines"]) > 1
    # the shadow report is the one the engine wrote, computed again from the store
    assert report["shadow"] == json.loads((run_dir / "shadow_report.json").read_text())


class _Page(HTMLParser):
    """Every tag's attributes, every element id and test id, and the JSON of each figure."""

    def __init__(self):
        super().__init__()
        self.attrs: list[tuple[str, dict]] = []
        self.figures: dict[str, dict] = {}
        self._figure: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.attrs.append((tag, attrs))
        self._figure = attrs.get("data-figure") if tag == "script" else None

    def handle_data(self, data):
        if self._figure:
            self.figures[self._figure] = json.loads(data)
            self._figure = None

    def ids(self, key: str = "id") -> list[str]:
        return [a[key] for _, a in self.attrs if key in a]


def _parse(page: str) -> _Page:
    parser = _Page()
    parser.feed(page)
    return parser


def _check_page(page: str, rows: dict[str, list[dict]]) -> _Page:
    parsed = _parse(page)
    links = [value for _, attrs in parsed.attrs for key, value in attrs.items() if key in ("src", "href") and value]
    assert not [u for u in links if re.match(r"(https?:)?//", u)], "the page must need no network"
    assert not [tag for tag, attrs in parsed.attrs if tag == "script" and "src" in attrs], "plotly.js is inlined"
    assert "plotly.js v" in page and "Plotly.newPlot" in page
    assert set(FIGURE_IDS) <= set(parsed.ids()) and set(FIGURE_IDS) <= set(parsed.figures)
    assert {"timeline-graph", "arcs-plot", "trust-network", "dialogs"} <= set(parsed.ids("data-testid"))
    # every dialog, turn by turn, with its speaker, move and tone
    assert parsed.ids("data-testid").count("dialog") == len(rows["dialogs"])
    assert parsed.ids("data-testid").count("turn") == len(rows["turns"])
    names = {e["entity_id"]: e["name"] for e in rows["entities"]}
    for turn in rows["turns"]:
        assert str(escape(turn["content"])) in page
        assert f'<span class="speaker">{escape(names[turn["speaker"]])}</span>' in page
    # the timeline graph has a node for every timepoint of every timeline, its event in the hover
    hover = "".join(text for trace in parsed.figures["fig-timeline"]["data"] for text in trace.get("hovertext") or [])
    assert all(f"<b>{t['timepoint_id']}</b>" in hover for t in rows["timepoints"])
    return parsed


def test_html_is_one_standalone_file_with_the_figures_and_every_turn(finished_run, tmp_path):
    run_dir = finished_run.run_dir
    shutil.copy(run_dir / "run.db", tmp_path / "run.db")
    store = RunStore(tmp_path / "run.db")
    try:
        page = run_page(store)
    finally:
        store.close()
    _check_page(page, _tables(run_dir))


@pytest.mark.parametrize("template", MODE_TEMPLATES)
def test_html_of_portal_and_branching_runs_marks_the_mode(mode_runs, template):
    run_dir = mode_runs[template]
    rows = _tables(run_dir)
    parsed = _check_page((run_dir / "run.html").read_text(encoding="utf-8"), rows)
    traces = parsed.figures["fig-timeline"]["data"]
    chosen = [t for t in traces if t.get("name", "").endswith("· chosen")]
    assert len(chosen) == 1 and chosen[0]["legendgroup"] == "main"
    assert {t["legendgroup"] for t in traces} == {t["timeline_id"] for t in rows["timelines"]}
    notes = " ".join(a.get("text", "") for a in parsed.figures["fig-timeline"]["layout"].get("annotations", []))
    if template == "mars_mission_portal":
        assert "origin" in notes and "endpoint" in notes
    else:
        names = {json.loads(t["metadata"])["name"] for t in rows["timelines"]}
        assert all(html.escape(name) in notes for name in names)
        forks = {t["branch_point"] for t in rows["timelines"] if t["branch_point"]}
        symbols = {text.split("</b>")[0][3:]: symbol for t in traces if t.get("hovertext")
                   for text, symbol in zip(t["hovertext"], t["marker"]["symbol"])}
        assert forks and all(symbols[f] == "diamond" for f in forks), "branch points are marked"


def test_html_escapes_generated_text(finished_run, tmp_path):
    db = Path(shutil.copy(finished_run.run_dir / "run.db", tmp_path / "run.db"))
    evil = "<script>alert('x')</script> & <b>bold</b>"
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE turns SET content = ? WHERE idx = 0", (evil,))
        conn.execute("UPDATE timepoints SET event = ?", (evil,))
    conn.close()
    store = RunStore(db)
    try:
        page = run_page(store)
    finally:
        store.close()
    assert "<script>alert" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    figure = _parse(page).figures["fig-timeline"]
    assert "&lt;script&gt;alert" in "".join(figure["data"][1]["hovertext"]), "hover text is escaped for plotly too"


def test_run_page_for_the_server_links_plotly_and_home(store):
    page = run_page(store, plotly_js_url="/static/plotly.min.js", home_url="/")
    parsed = _parse(page)
    assert ("script", {"src": "/static/plotly.min.js"}) in parsed.attrs
    assert ("a", {"href": "/"}) in parsed.attrs
    assert "plotly.js v" not in page and len(page) < 1_000_000


def _pdf_text(reader: pypdf.PdfReader) -> tuple[str, Counter, Counter, Counter]:
    """The text, and per run of text its font, size and left edge (the last two on body pages, leaving out
    the scene and page numbers in the margins)."""
    fonts, sizes, lefts = Counter(), Counter(), Counter()
    texts = []
    for n, page in enumerate(reader.pages):
        def visit(text, cm, tm, font, size, body=n > 0):
            if text.strip():
                fonts[(font or {}).get("/BaseFont")] += 1
                if body and not text.strip().rstrip(".").isdigit():
                    sizes[size] += 1
                    lefts[round(cm[4] + tm[4] * cm[0], 1)] += 1
        texts.append(page.extract_text(visitor_text=visit))
    return "\n".join(texts), fonts, sizes, lefts


def test_pdf_is_an_industry_format_screenplay(finished_run, store, tmp_path):
    [path] = pdf.export(store, tmp_path)
    reader = pypdf.PdfReader(path)
    text, fonts, sizes, lefts = _pdf_text(reader)
    assert len(reader.pages) > 1
    assert all((float(p.mediabox.width), float(p.mediabox.height)) == (612, 792) for p in reader.pages), "US Letter"
    assert all("Courier" in str(font) for font in fonts), fonts
    assert sizes.most_common(1)[0][0] == 12 and sum(sizes.values()) == sizes[12.0], "12 pt"
    assert min(lefts) == 108.0 and lefts[108.0] > 1, "1.5 in left margin"
    names = {e["entity_id"]: e["name"] for e in store.rows("entities")}
    speakers = {t["speaker"] for t in store.rows("turns")}
    assert speakers and all(f"\n{names[s].upper()}\n" in text for s in speakers), "a cue for every speaker"
    assert store.run()["title"].split()[0] in text


def test_pdf_of_a_portal_run(mode_runs):
    reader = pypdf.PdfReader(mode_runs["mars_mission_portal"] / "screenplay.pdf")
    text = "\n".join(p.extract_text() for p in reader.pages)
    assert text.count("INT. ") >= len([t for t in _tables(mode_runs["mars_mission_portal"])["timepoints"]
                                       if t["timeline_id"] == "main"])


def test_a_finished_run_keeps_its_adprs_fits_so_readers_never_fit_again(mode_runs, monkeypatch):
    """Fitting the envelopes takes seconds a run page cannot spend: the engine keeps them in the store."""
    run_dir = mode_runs["castaway_colony_branching"]
    kept = json.loads(sqlite3.connect(run_dir / "run.db").execute("SELECT shadow_fits FROM runs").fetchone()[0])
    assert kept and kept == json.loads((run_dir / "shadow_report.json").read_text())["fits"]

    def no_fitting(*args, **kwargs):
        raise AssertionError("a reader fitted an envelope again")
    monkeypatch.setattr("timepoint.mechanisms.shadow.fit_envelope", no_fitting)
    store = RunStore(run_dir / "run.db")
    try:
        assert "fig-timeline" in run_page(store, plotly_js_url="/static/plotly.min.js", home_url="/")
    finally:
        store.close()
