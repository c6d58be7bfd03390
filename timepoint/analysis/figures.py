"""Plotly figures of a run, read through the read side: what a glance should tell that tables do not.

- `fig-timeline`: every timepoint of every timeline, linked by cause, laid out by networkx in layers
  (the step, or for CYCLICAL runs the phase, so each cycle is a row); the mode's shape is marked:
  PORTAL's chosen path among those explored, BRANCHING's branch points, interventions and outcomes,
  CYCLICAL's cycles and prophecies, DIRECTORIAL's acts;
- `fig-tension` (DIRECTORIAL only): the tension the director aimed at and the tension each scene had;
- `fig-arcs`: each entity's valence, arousal and energy along the main timeline;
- `fig-trust`: the trust network at the opening and after each timepoint (a slider and a play button);
- `fig-knowledge`: who told whom how much (a Sankey; hovering a link shows what and when);
- `fig-costs`: calls, tokens and cost by role, and the gaps.

Generated text shown in hover labels is HTML-escaped: plotly renders a few tags in them.
"""

from __future__ import annotations

import html
import textwrap
from collections import Counter, defaultdict

import networkx as nx
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from ..history import RunHistory, TimepointRecord, opening_id
from ..store import RunStore
from . import narrative

CHOSEN, OTHER = "#c0392b", "#9aa5b1"
PALETTE = [c for c in qualitative.Dark24 if c != "#FB0D0D"]  # no red that reads as the chosen path
# Trust bands of the network, low to high: (upper bound, label, colour, line width).
TRUST_BANDS = ((0.2, "hostile (< 0.2)", "#b2182b", 1.5), (0.4, "wary (0.2–0.4)", "#ef8a62", 2),
               (0.6, "neutral (0.4–0.6)", "#bababa", 2), (0.8, "trusting (0.6–0.8)", "#67a9cf", 3),
               (1.01, "close (≥ 0.8)", "#2166ac", 4.5))
ACT_COLOURS = {"setup": "#4c78a8", "rising": "#f58518", "climax": "#e45756", "falling": "#72b7b2",
               "resolution": "#54a24b"}
LAYOUT = dict(template="plotly_white", margin=dict(l=50, r=30, t=60, b=40), hoverlabel=dict(align="left"))


def _esc(text: object, width: int = 60, lines: int = 6) -> str:
    """Generated text for a hover label: escaped, wrapped, clipped."""
    wrapped = textwrap.wrap(" ".join(str(text).split()), width) or [""]
    clipped = wrapped[:lines] + (["…"] if len(wrapped) > lines else [])
    return "<br>".join(html.escape(line) for line in clipped)


def _empty(title: str, message: str) -> go.Figure:
    fig = go.Figure(layout={**LAYOUT, "title": title, "height": 200})
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def _value(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, list):
        return "; ".join(str(v) for v in value) or "—"
    return str(value)


# -- the timeline graph ------------------------------------------------------------------------

def _depth_first(h: RunHistory) -> list[TimepointRecord]:
    """Every timepoint, depth first from each root, the better-ranked timeline first at every fork:
    in this order a layered layout draws a tree without crossings."""
    def rank(tp: TimepointRecord) -> tuple:
        timeline = h.timelines.get(tp.timeline_id)
        return (tp.timeline_id != "main", timeline.rank if timeline and timeline.rank is not None else 10 ** 6,
                tp.timeline_id)

    children, roots = defaultdict(list), []
    for tp in h.all_timepoints.values():
        (children[tp.causal_parent] if tp.causal_parent in h.all_timepoints else roots).append(tp)
    order, seen, stack = [], set(), sorted(roots, key=rank, reverse=True)
    while stack:
        tp = stack.pop()
        if tp.id not in seen:
            seen.add(tp.id)
            order.append(tp)
            stack += sorted(children[tp.id], key=rank, reverse=True)
    return order


def _layer(mode: str, tp: TimepointRecord) -> int:
    """The column a timepoint stands in: its phase in a cycle for CYCLICAL runs, else its step."""
    position = tp.metadata.get("position")
    return position if mode == "cyclical" and isinstance(position, int) else tp.index


def _layout(h: RunHistory, mode: str) -> dict[str, tuple[float, float]]:
    order = _depth_first(h)
    graph = nx.DiGraph()
    graph.add_nodes_from(tp.id for tp in order)
    graph.add_edges_from((tp.causal_parent, tp.id) for tp in order if tp.causal_parent in graph)
    layers: dict[int, list[str]] = defaultdict(list)
    for tp in order:
        layers[_layer(mode, tp)].append(tp.id)
    pos = nx.multipartite_layout(graph, subset_key=dict(layers), align="vertical")
    return {node: (float(x), -float(y)) for node, (x, y) in pos.items()}  # first of a layer on top


def _timeline_label(h: RunHistory, timeline_id: str) -> str:
    t = h.timelines.get(timeline_id)
    if t is None:
        return timeline_id
    name = t.metadata.get("name")
    coherence = f", coherence {t.coherence:.2f}" if t.coherence is not None else ""
    return f"{timeline_id}{' · ' + name if name else ''} (rank {t.rank}{coherence})"


def _hover(h: RunHistory, tp: TimepointRecord) -> str:
    details = h.position(tp).details
    extra = [f"{k.replace('_', ' ')}: {_esc(_value(v), 60, 3)}" for k, v in details.items()
             if v not in (None, [], "") and k not in ("branch", "parent_timeline")]
    present = ", ".join(h.name(e) for e in tp.present) or "nobody"
    return "<br>".join([f"<b>{tp.id}</b> · {tp.timeline_id} · {tp.timestamp.replace('T', ' ')}", _esc(tp.event),
                        f"<i>present:</i> {_esc(present, 60, 2)}", *extra])


def _marker(mode: str, tp: TimepointRecord, forks: set[str]) -> str:
    """Branch points are diamonds, timepoints where an intervention or a prophecy came in are stars."""
    if mode == "branching" and tp.id in forks:
        return "diamond"
    if tp.metadata.get("interventions") or tp.metadata.get("prophecy"):
        return "star"
    return "circle"


def _node_text(mode: str, tp: TimepointRecord, previous: TimepointRecord | None) -> str:
    meta = tp.metadata
    if mode == "cyclical" and isinstance(meta.get("cycle"), int):
        return f"cycle {meta['cycle'] + 1}"
    if mode == "directorial" and meta.get("act") and (previous is None or previous.metadata.get("act") != meta["act"]):
        return str(meta["act"])
    return ""


def timeline_graph(h: RunHistory) -> go.Figure:
    mode = h.run.mode or "forward"
    title = f"Timeline graph ({mode})"
    if not h.all_timepoints:
        return _empty(title, "No timepoint was recorded.")
    pos = _layout(h, mode)
    forks = {t.branch_point for t in h.timelines.values() if t.branch_point}
    by_timeline: dict[str, list[TimepointRecord]] = defaultdict(list)
    for tp in h.all_timepoints.values():
        by_timeline[tp.timeline_id].append(tp)
    order = sorted(by_timeline, key=lambda t: (t != "main", h.timelines[t].rank if t in h.timelines
                                               and h.timelines[t].rank is not None else 10 ** 6, t))
    fig = go.Figure(layout={**LAYOUT, "title": title, "height": max(360, 60 * max(
        Counter(x for x, _ in pos.values()).values()) + 160), "hovermode": "closest"})
    for n, timeline_id in enumerate(order):
        tps = sorted(by_timeline[timeline_id], key=lambda tp: tp.index)
        chosen = timeline_id == "main"
        colour = CHOSEN if chosen else (OTHER if mode == "portal" else PALETTE[n % len(PALETTE)])
        xs, ys = [], []
        for tp in tps:
            if tp.causal_parent in pos:
                (x0, y0), (x1, y1) = pos[tp.causal_parent], pos[tp.id]
                xs += [x0, x1, None]
                ys += [y0, y1, None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", hoverinfo="skip", showlegend=False, legendgroup=timeline_id,
                                 line=dict(color=colour, width=4 if chosen else 1.5)))
        colours = [ACT_COLOURS.get(tp.metadata.get("act"), colour) for tp in tps] if mode == "directorial" else colour
        fig.add_trace(go.Scatter(
            x=[pos[tp.id][0] for tp in tps], y=[pos[tp.id][1] for tp in tps], mode="markers+text",
            name=_timeline_label(h, timeline_id) + (" · chosen" if chosen and len(order) > 1 else ""),
            legendgroup=timeline_id, text=[_node_text(mode, tp, prev) for prev, tp in zip([None, *tps], tps)],
            textposition="top center", hovertext=[_hover(h, tp) for tp in tps], hoverinfo="text",
            marker=dict(size=15 if chosen else 10, color=colours, symbol=[_marker(mode, tp, forks) for tp in tps],
                        line=dict(width=1, color="#333"))))
    _annotate(h, fig, mode, pos, by_timeline)
    _columns(h, fig, mode, pos)
    fig.update_yaxes(visible=False)
    return fig


def _annotate(h: RunHistory, fig: go.Figure, mode: str, pos: dict, by_timeline: dict) -> None:
    """The mode's landmarks: PORTAL's origin and endpoint, each branch's outcome and interventions."""
    main = sorted(by_timeline.get("main", []), key=lambda tp: tp.index)
    if mode == "portal" and main:
        for tp, label in ((main[0], "origin"), (main[-1], "endpoint")):
            fig.add_annotation(x=pos[tp.id][0], y=pos[tp.id][1], text=label, ax=0, ay=-36, font=dict(color=CHOSEN))
    if mode == "branching":
        for timeline_id, tps in by_timeline.items():
            timeline = h.timelines.get(timeline_id)
            if timeline is None:
                continue
            leaf = max(tps, key=lambda tp: tp.index)
            interventions = timeline.metadata.get("interventions") or []
            label = html.escape(str(timeline.metadata.get("name") or timeline.metadata.get("outcome") or timeline_id))
            if interventions:
                label += "<br>⚑ " + _esc(_value(interventions), 40, 2)
            fig.add_annotation(x=pos[leaf.id][0], y=pos[leaf.id][1], text=label, xanchor="left", showarrow=False,
                               xshift=12, align="left", font=dict(size=11))
        fig.update_xaxes(range=[min(x for x, _ in pos.values()) - 0.1, max(x for x, _ in pos.values()) + 0.45])


def _columns(h: RunHistory, fig: go.Figure, mode: str, pos: dict) -> None:
    """Label each column: its phase (CYCLICAL) or the time of the main timeline's timepoint there."""
    labels: dict[float, str] = {}
    for tp in h.all_timepoints.values():
        x = round(pos[tp.id][0], 6)
        if mode == "cyclical" and tp.metadata.get("phase"):
            labels.setdefault(x, str(tp.metadata["phase"]))
        elif tp.timeline_id == "main" or x not in labels:
            labels[x] = f"{tp.index}<br>{tp.timestamp[:10]}"
    fig.update_xaxes(tickvals=list(labels), ticktext=list(labels.values()), showgrid=False, zeroline=False)


# -- directorial tension ------------------------------------------------------------------------

def tension_curve(h: RunHistory) -> go.Figure | None:
    """DIRECTORIAL only: target and actual tension per scene of the main timeline, acts shaded."""
    tps = [tp for tp in h.timepoints if tp.metadata.get("tension") is not None]
    if (h.run.mode or "") != "directorial" or not tps:
        return None
    fig = go.Figure(layout={**LAYOUT, "title": "Tension: the director's curve and the scenes'", "height": 360})
    x = [tp.index for tp in tps]
    hover = [f"<b>{tp.id}</b> · {html.escape(str(tp.metadata.get('act')))}<br>{_esc(tp.event)}" for tp in tps]
    fig.add_trace(go.Scatter(x=x, y=[tp.metadata.get("tension_target") for tp in tps], name="target",
                             mode="lines", line=dict(dash="dash", color="#555")))
    fig.add_trace(go.Scatter(x=x, y=[tp.metadata["tension"] for tp in tps], name="actual", mode="lines+markers",
                             line=dict(color=CHOSEN, width=3), hovertext=hover, hoverinfo="text+y"))
    start = 0
    for n, tp in enumerate(tps):
        act = tp.metadata.get("act")
        if n + 1 == len(tps) or tps[n + 1].metadata.get("act") != act:
            fig.add_vrect(x0=tps[start].index - 0.5, x1=tp.index + 0.5, opacity=0.12, line_width=0,
                          fillcolor=ACT_COLOURS.get(act, OTHER), annotation_text=html.escape(str(act)),
                          annotation_position="top left")
            start = n + 1
    fig.update_xaxes(tickvals=x, ticktext=[tp.id for tp in tps], title="scene")
    fig.update_yaxes(range=[0, 1.05], title="tension")
    return fig


# -- arcs ----------------------------------------------------------------------------------------

def _moments(h: RunHistory) -> list[tuple[str, str, str]]:
    """(snapshot id, label, hover) along the main timeline: its opening, then the end of each timepoint."""
    if not h.timepoints:
        return []
    first = h.timepoints[0]
    return [(opening_id(first.id), "opening", "before the story"),
            *((tp.id, tp.id, f"{tp.timestamp.replace('T', ' ')}<br>{_esc(tp.event, 60, 3)}") for tp in h.timepoints)]


def arcs(h: RunHistory) -> go.Figure:
    moments = _moments(h)
    if not moments or not h.states:
        return _empty("Emotional arcs", "No entity state was recorded along the main timeline.")
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        subplot_titles=("Valence (−1 to 1)", "Arousal (0 to 1)", "Energy (0 to 100)"))
    for n, (entity_id, ent) in enumerate(h.entities.items()):
        points = [(label, hover, h.states[(entity_id, snap)].cognitive) for snap, label, hover in moments
                  if (entity_id, snap) in h.states]
        if not points:
            continue
        colour = PALETTE[n % len(PALETTE)]
        for row, field in enumerate(("valence", "arousal", "energy"), start=1):
            fig.add_trace(go.Scatter(
                x=[p[0] for p in points], y=[getattr(p[2], field) for p in points], mode="lines+markers",
                name=html.escape(ent.name), legendgroup=entity_id, showlegend=row == 1, line=dict(color=colour),
                customdata=[p[1] for p in points],
                hovertemplate=f"<b>{html.escape(ent.name)}</b> {field} %{{y:.2f}}<br>%{{customdata}}<extra></extra>"),
                row=row, col=1)
    fig.update_layout(**LAYOUT, title="Emotional arcs along the main timeline", height=720, hovermode="closest")
    fig.update_yaxes(range=[-1.05, 1.05], row=1, col=1)
    fig.update_yaxes(range=[-0.05, 1.05], row=2, col=1)
    fig.update_yaxes(range=[-2, 102], row=3, col=1)
    fig.update_xaxes(type="category")
    return fig


# -- trust ---------------------------------------------------------------------------------------

def _trust_traces(h: RunHistory, snapshot: str, pairs: list[tuple[str, str]], pos: dict) -> list[go.Scatter]:
    """One trace per trust band (so a frame has a fixed number of traces), a hover point per pair, the people."""
    bands = [([], []) for _ in TRUST_BANDS]
    mid_x, mid_y, mid_text, mid_trust = [], [], [], []
    for a, b in pairs:
        rel = h.relationship_states.get((a, b, snapshot))
        if rel is None:
            continue
        xs, ys = bands[next(i for i, (cap, *_) in enumerate(TRUST_BANDS) if rel.trust < cap)]
        (xa, ya), (xb, yb) = pos[a], pos[b]
        xs += [xa, xb, None]
        ys += [ya, yb, None]
        mid_x.append((xa + xb) / 2)
        mid_y.append((ya + yb) / 2)
        mid_trust.append(rel.trust)
        mid_text.append(f"{html.escape(h.name(a))} – {html.escape(h.name(b))}<br>trust {rel.trust:.2f}, "
                        f"alignment {rel.alignment:.2f}<br>{rel.interactions} interactions · {rel.type}")
    traces = [go.Scatter(x=xs, y=ys, mode="lines", name=label, hoverinfo="skip", line=dict(color=colour, width=width))
              for (xs, ys), (_, label, colour, width) in zip(bands, TRUST_BANDS)]
    traces.append(go.Scatter(x=mid_x, y=mid_y, mode="markers", hovertext=mid_text, hoverinfo="text", showlegend=False,
                             marker=dict(size=8, color=mid_trust, colorscale="RdBu", cmin=0, cmax=1, opacity=0.6)))
    people = list(pos)
    traces.append(go.Scatter(x=[pos[e][0] for e in people], y=[pos[e][1] for e in people], mode="markers+text",
                             text=[html.escape(h.name(e)) for e in people], textposition="top center",
                             hoverinfo="text", showlegend=False, marker=dict(size=16, color="#34495e")))
    return traces


PLAY = dict(frame=dict(duration=900, redraw=True), fromcurrent=False, transition=dict(duration=0))


def trust_network(h: RunHistory) -> go.Figure:
    """The pairs' trust at the opening and after each main-timeline timepoint; the last is shown first."""
    moments = [(snap, label) for snap, label, _ in _moments(h)
               if any(key[2] == snap for key in h.relationship_states)]
    pairs = sorted({(a, b) for a, b, _ in h.relationship_states})
    if not moments or not pairs:
        return _empty("Trust network", "No relationship was recorded along the main timeline.")
    paired = {e for pair in pairs for e in pair}
    people = [*(e for e in h.entities if e in paired), *sorted(paired - set(h.entities))]
    pos = {node: (float(x), float(y)) for node, (x, y) in nx.circular_layout(people).items()}
    frames = [go.Frame(name=label, data=_trust_traces(h, snap, pairs, pos)) for snap, label in moments]
    fig = go.Figure(data=frames[-1].data, frames=frames)
    steps = [dict(method="animate", label=label, args=[[label], dict(mode="immediate", frame=dict(duration=0,
                  redraw=True), transition=dict(duration=0))]) for _, label in moments]
    fig.update_layout(
        **LAYOUT, title="Trust network (after each timepoint)", height=600, hovermode="closest",
        sliders=[dict(active=len(steps) - 1, steps=steps, currentvalue=dict(prefix="after: "), pad=dict(t=30))],
        updatemenus=[dict(type="buttons", showactive=False, x=0, y=-0.02, xanchor="right", yanchor="top",
                          buttons=[dict(label="▶", method="animate", args=[None, PLAY])])])
    fig.update_xaxes(visible=False, range=[-1.4, 1.4])
    fig.update_yaxes(visible=False, range=[-1.3, 1.3], scaleanchor="x")
    return fig


# -- knowledge flow ------------------------------------------------------------------------------

def knowledge_flow(h: RunHistory, examples: int = 4) -> go.Figure:
    """Tellers on the left, listeners on the right, a link's width the number of items passed on."""
    flow = narrative.knowledge_flow(h)
    if not flow:
        return _empty("Knowledge flow", "No entity told another anything.")
    links: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for item in flow:
        links[(item["from"], item["to"])].append(item)
    tellers = list(dict.fromkeys(a for a, _ in links))
    listeners = list(dict.fromkeys(b for _, b in links))
    index = {**{("from", e): n for n, e in enumerate(tellers)},
             **{("to", e): len(tellers) + n for n, e in enumerate(listeners)}}
    colours = {e: PALETTE[n % len(PALETTE)] for n, e in enumerate(h.entities)}

    def said(items: list[dict]) -> str:
        lines = [f"{html.escape(i['timepoint_id'])}: {_esc(i['information'], 60, 1)}" for i in items[:examples]]
        return "<br>".join(lines + ([f"… and {len(items) - examples} more"] if len(items) > examples else []))

    fig = go.Figure(go.Sankey(
        arrangement="snap",
        node=dict(label=[f"{html.escape(h.name(e))} (told)" for e in tellers]
                  + [f"{html.escape(h.name(e))} (heard)" for e in listeners],
                  color=[colours.get(e, OTHER) for e in [*tellers, *listeners]], pad=12, thickness=14),
        link=dict(source=[index[("from", a)] for a, _ in links], target=[index[("to", b)] for _, b in links],
                  value=[len(items) for items in links.values()],
                  customdata=[said(items) for items in links.values()],
                  hovertemplate="%{source.label} → %{target.label}: %{value} items<br>%{customdata}<extra></extra>")))
    fig.update_layout(**LAYOUT, title="Knowledge flow: who told whom (hover a link for what and when)",
                      height=max(360, 28 * max(len(tellers), len(listeners)) + 120))
    return fig


# -- costs and gaps ------------------------------------------------------------------------------

def costs(h: RunHistory) -> go.Figure:
    roles = narrative.costs(h)
    gaps = Counter(g.role or g.unit for g in h.gaps)
    titles = ("Calls", "Tokens", "Cost (USD)", f"Gaps ({sum(gaps.values())})")
    fig = make_subplots(rows=1, cols=4, subplot_titles=titles)
    names = [r["role"] for r in roles]
    fig.add_trace(go.Bar(x=names, y=[r["calls"] - r["cached"] for r in roles], name="calls sent",
                         marker_color="#4c78a8"), row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=[r["cached"] for r in roles], name="from cache", marker_color="#9ecae9"),
                  row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=[r["tokens_in"] for r in roles], name="tokens in", marker_color="#f58518"),
                  row=1, col=2)
    fig.add_trace(go.Bar(x=names, y=[r["tokens_out"] for r in roles], name="tokens out", marker_color="#ffbf79"),
                  row=1, col=2)
    fig.add_trace(go.Bar(x=names, y=[r["cost_usd"] for r in roles], name="cost", marker_color="#54a24b",
                         hovertemplate="%{x}: $%{y:.4f}<extra></extra>"), row=1, col=3)
    fig.add_trace(go.Bar(x=list(gaps), y=list(gaps.values()), name="gaps", marker_color="#e45756"), row=1, col=4)
    fig.update_layout(**LAYOUT, barmode="stack", height=380, title="Calls, tokens, cost and gaps by role")
    fig.update_yaxes(rangemode="tozero")
    return fig


FIGURES = {"fig-timeline": timeline_graph, "fig-tension": tension_curve, "fig-arcs": arcs, "fig-trust": trust_network,
           "fig-knowledge": knowledge_flow, "fig-costs": costs}
"""Each figure by the id of the element the run page draws it in."""


def figures(source: RunStore | RunHistory) -> dict[str, go.Figure]:
    """The run's figures by element id; a figure the run's mode has nothing for (tension) is left out."""
    h = RunHistory.of(source)
    built = {fig_id: make(h) for fig_id, make in FIGURES.items()}
    return {fig_id: fig for fig_id, fig in built.items() if fig is not None}
