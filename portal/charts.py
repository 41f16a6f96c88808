"""Server-rendered inline SVG charts: no script, no inline style (the CSP allows neither).

Colours and fonts come from classes styled in ``portal.css``; geometry is plain attributes.
Every label is escaped here, and the result is :class:`markupsafe.Markup`, so templates
insert it as it is. Each chart has a ``<title>`` and a ``role="img"`` for screen readers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

ROW = 22  # px per bar row
LABEL_W = 210
BAR_W = 360


@dataclass(frozen=True, slots=True)
class Bar:
    label: str
    value: float
    text: str  # the value as shown next to the bar
    muted: bool = False


def _svg(width: int, height: int, title: str, body: list[str], css: str) -> Markup:
    return Markup(
        f'<svg class="chart {css}" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{''.join(body)}</svg>")


def _clip(label: str, limit: int = 32) -> str:
    return label if len(label) <= limit else label[: limit - 1] + "…"


def bar_chart(bars: Sequence[Bar], title: str, maximum: float | None = None) -> Markup:
    """Horizontal bars, one per row, scaled to ``maximum`` (default: the largest value)."""
    top = maximum or max((b.value for b in bars), default=0) or 1
    body: list[str] = []
    for i, bar in enumerate(bars):
        y = i * ROW
        w = max(0.0, min(1.0, bar.value / top)) * BAR_W
        cls = "bar muted" if bar.muted else "bar"
        body.append(f'<text class="label" x="{LABEL_W - 6}" y="{y + 15}" text-anchor="end">'
                    f"{escape(_clip(bar.label))}</text>"
                    f'<rect class="{cls}" x="{LABEL_W}" y="{y + 4}" width="{w:.1f}" '
                    f'height="{ROW - 8}"><title>{escape(bar.label)}: {escape(bar.text)}'
                    f"</title></rect>"
                    f'<text class="value" x="{LABEL_W + w + 4:.1f}" y="{y + 15}">'
                    f"{escape(bar.text)}</text>")
    return _svg(LABEL_W + BAR_W + 60, max(ROW, ROW * len(bars)), title, body, "bars")


def paired_chart(rows: Sequence[tuple[str, int, int]], title: str, legend: tuple[str, str]
                 ) -> Markup:
    """Two bars per row — previous (muted) and current — for period-over-period trends."""
    top = max((max(p, c) for _, p, c in rows), default=0) or 1
    pair = ROW + 6
    body = [f'<rect class="bar muted" x="{LABEL_W}" y="2" width="10" height="10"/>'
            f'<text class="value" x="{LABEL_W + 14}" y="11">{escape(legend[0])}</text>'
            f'<rect class="bar" x="{LABEL_W + 160}" y="2" width="10" height="10"/>'
            f'<text class="value" x="{LABEL_W + 174}" y="11">{escape(legend[1])}</text>']
    for i, (label, previous, current) in enumerate(rows):
        y = 18 + i * pair
        body.append(f'<text class="label" x="{LABEL_W - 6}" y="{y + 15}" text-anchor="end">'
                    f"{escape(_clip(label))}</text>")
        for j, (value, cls) in enumerate(((previous, "bar muted"), (current, "bar"))):
            w = value / top * BAR_W
            body.append(f'<rect class="{cls}" x="{LABEL_W}" y="{y + 2 + j * 11}" '
                        f'width="{w:.1f}" height="10"><title>{escape(label)}: {value}</title>'
                        f"</rect>"
                        f'<text class="value small" x="{LABEL_W + w + 4:.1f}" '
                        f'y="{y + 11 + j * 11}">{value}</text>')
    return _svg(LABEL_W + BAR_W + 60, 18 + pair * max(1, len(rows)), title, body, "pairs")


def line_chart(points: Sequence[tuple[str, int]], title: str, width: int = 640,
               height: int = 160) -> Markup:
    """One series over time (e.g. complaints per day); first and last labels under the axis."""
    left, bottom, pad = 40, 20, 6
    plot_w, plot_h = width - left - pad, height - bottom - pad
    top = max((v for _, v in points), default=0) or 1
    n = len(points)

    def x(i: int) -> float:
        return left + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)

    def y(v: int) -> float:
        return pad + plot_h * (1 - v / top)

    coords = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, (_, v) in enumerate(points))
    body = [f'<line class="axis" x1="{left}" y1="{pad + plot_h}" x2="{width - pad}" '
            f'y2="{pad + plot_h}"/>',
            f'<text class="value small" x="{left - 4}" y="{pad + 8}" text-anchor="end">{top}'
            f"</text>",
            f'<text class="value small" x="{left - 4}" y="{pad + plot_h}" text-anchor="end">0'
            f"</text>"]
    if n:
        body.append(f'<polyline class="series" points="{coords}"/>')
        body += [f'<circle class="dot" cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5"><title>'
                 f"{escape(label)}: {v}</title></circle>" for i, (label, v) in enumerate(points)]
        body.append(f'<text class="value small" x="{left}" y="{height - 4}">'
                    f"{escape(points[0][0])}</text>")
        body.append(f'<text class="value small" x="{width - pad}" y="{height - 4}" '
                    f'text-anchor="end">{escape(points[-1][0])}</text>')
    return _svg(width, height, title, body, "line")
