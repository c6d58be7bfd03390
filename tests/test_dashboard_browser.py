"""The dashboard in a real headless browser (Debian's chromium driven by Playwright, no browser download):
the run list, and a PORTAL and a BRANCHING run page from model=test runs, render their timeline graph,
arcs, trust network and dialogs with no console error and no request leaving 127.0.0.1 (offline: no CDN).
Screenshots go to $TIMEPOINT_SCREENSHOTS, else the test's tmp dir."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import pytest
from serving import make_runs, served

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at "
                                "/usr/bin/chromium (apt-get install -y chromium; .ci/run does)")
TEMPLATES = ("mars_mission_portal", "castaway_colony_branching")
PLOTS = ("fig-timeline", "fig-arcs", "fig-trust")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    root = tmp_path_factory.mktemp("dashboard")
    made = make_runs(root, list(TEMPLATES))
    with served(root / "home") as base:
        yield base, {template: ids[0] for template, ids in made.items()}


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("TIMEPOINT_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    """A page that records console errors, page errors and every request not to 127.0.0.1 (refused)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.problems, page.outside = [], []
    page.on("console", lambda msg: msg.type == "error" and page.problems.append(f"console: {msg.text}"))
    page.on("pageerror", lambda exc: page.problems.append(f"pageerror: {exc}"))

    def local_only(route):
        if urlparse(route.request.url).hostname == "127.0.0.1":
            return route.continue_()
        page.outside.append(route.request.url)
        return route.abort()

    page.route("**/*", local_only)
    yield page
    page.close()


def _clean(page) -> None:
    assert page.problems == [], page.problems
    assert page.outside == [], f"requests left 127.0.0.1: {page.outside}"


def _plots_drawn(page) -> None:
    for fid in PLOTS:
        page.wait_for_selector(f"#{fid}.js-plotly-plot .main-svg", timeout=30_000)
        assert page.locator(f"#{fid} .main-svg").count() >= 1, fid
        assert page.locator(f"#{fid} .plot-container").is_visible(), fid


def _timeline_traces(page) -> list[str]:
    return page.evaluate("() => document.getElementById('fig-timeline').data.map(t => t.name).filter(n => n)")


def _dialogs_shown(page) -> None:
    dialogs, turns = page.locator("[data-testid=dialog]"), page.locator("[data-testid=turn]")
    assert dialogs.count() >= 1 and turns.count() >= dialogs.count()
    assert turns.first.locator(".speaker").inner_text().strip()
    assert turns.first.is_visible()


def test_run_list(site, page, shots):
    base, run_ids = site
    page.goto(base + "/", wait_until="networkidle")
    rows = page.locator("#runs tbody tr")
    assert rows.count() == len(TEMPLATES)
    text = page.locator("#runs").inner_text()
    assert all(t in text for t in TEMPLATES) and "completed" in text and "test" in text
    for run_id in run_ids.values():
        assert page.locator(f"a[href='/runs/{run_id}']").count() == 1
    page.select_option("select[name=mode]", "portal")
    page.click("form.filters button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.locator("#runs tbody tr").count() == 1 and "mars_mission_portal" in page.locator("#runs").inner_text()
    page.goto(base + "/", wait_until="networkidle")
    page.screenshot(path=shots / "run_list.png", full_page=True)
    _clean(page)


def test_portal_run_page(site, page, shots):
    base, run_ids = site
    page.goto(base + "/", wait_until="networkidle")
    page.click(f"a[href='/runs/{run_ids['mars_mission_portal']}']")
    page.wait_for_load_state("networkidle")
    _plots_drawn(page)
    traces = _timeline_traces(page)
    assert len(traces) > 1 and sum("chosen" in t for t in traces) == 1, traces  # explored paths, one chosen
    assert page.locator("#fig-timeline .legendtext", has_text="chosen").count() == 1
    _dialogs_shown(page)
    page.screenshot(path=shots / "mars_mission_portal.png", full_page=True)
    _clean(page)


def test_branching_run_page(site, page, shots):
    base, run_ids = site
    page.goto(f"{base}/runs/{run_ids['castaway_colony_branching']}", wait_until="networkidle")
    _plots_drawn(page)
    traces = _timeline_traces(page)
    assert sum(t.startswith("branch_") for t in traces) >= 1 and sum("chosen" in t for t in traces) == 1, traces
    _dialogs_shown(page)
    page.screenshot(path=shots / "castaway_colony_branching.png", full_page=True)
    _clean(page)


def test_the_api_docs_page_works_offline(site, page, shots):
    base, _ = site
    page.goto(base + "/docs", wait_until="networkidle")
    page.wait_for_selector(".swagger-ui .opblock", timeout=30_000)
    assert page.locator(".opblock-summary-path", has_text="/api/runs").count() >= 1
    assert page.locator(".opblock-summary-path", has_text="/v1/chat/completions").count() == 1
    page.screenshot(path=shots / "api_docs.png")
    _clean(page)
