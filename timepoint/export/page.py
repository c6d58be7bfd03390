"""The run page: one HTML document with the run's report, its figures and every dialog.

Rendered from the structured narrative (`timepoint.analysis.narrative`) and the plotly figures
(`timepoint.analysis.figures`) through a Jinja2 template shipped in the package, with every generated
text autoescaped. Each figure's JSON is embedded and drawn by plotly.js, which is inlined (a standalone
file that needs no network) unless the caller serves it at `plotly_js_url` (the dashboard does). The
sections carry `data-testid`s for browser tests.
"""

from __future__ import annotations

from functools import cache

import plotly.graph_objects as go
from jinja2 import Environment, PackageLoader
from markupsafe import Markup
from plotly.offline import get_plotlyjs

from ..analysis.figures import figures
from ..analysis.narrative import narrative
from ..history import RunHistory
from ..mechanisms import MECHANISMS
from ..store import RunStore

ENV = Environment(loader=PackageLoader("timepoint.export", "templates"), autoescape=True, trim_blocks=True,
                  lstrip_blocks=True)


@cache
def plotly_js() -> Markup:
    """The plotly.js bundled with the plotly package (it holds no `</script`, so it can be inlined)."""
    return Markup(get_plotlyjs())


def figure_json(fig: go.Figure) -> Markup:
    """A figure's JSON, safe inside a <script> element: `<`, `>` and `&` only occur in JSON strings,
    where their \\u escapes mean the same."""
    text = fig.to_json().replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text)


def run_page(source: RunStore | RunHistory, *, plotly_js_url: str | None = None, home_url: str | None = None) -> str:
    h = RunHistory.of(source)
    return ENV.get_template("run.html.j2").render(
        report=narrative(h), figures={fid: figure_json(fig) for fid, fig in figures(h).items()},
        names={eid: ent.name for eid, ent in h.entities.items()}, mechanism_names=MECHANISMS,
        plotly_js=None if plotly_js_url else plotly_js(), plotly_js_url=plotly_js_url, home_url=home_url)
