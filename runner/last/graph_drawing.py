"""The execution graph as files: graph.dot (GraphViz) and graph.svg.

graph.svg is drawn by GraphViz's `dot` when it is installed (run with a timeout, so a
hard layout never stalls a LAST generation) and otherwise by a built-in layered layout:
one column per dependency level, tasks ordered in a column by the mean position of
their dependencies. Above `draw_limit` tasks (default 300, RUNNER_GRAPH_DRAW_LIMIT)
the drawing is summarised: one box per dependency level, or per band of levels when
there are more than 60, with its status counts, since thousands of boxes are
unreadable and dot's layout time grows much faster than linearly. graph.dot always
holds every task.
"""
from __future__ import annotations

import io
import shutil
import subprocess
from collections import Counter, defaultdict
from dataclasses import dataclass

from runner.last.reader import task_status
from runner.librunner import graph_level_bands, write_graph_dot

STATUS_COLOURS = {
    "completed": "#c8e6c9", "failed": "#ffcdd2", "timeout": "#ffe0b2", "cancelled": "#e0e0e0",
    "skipped": "#f5f5f5", "pending": "#ffffff", "running": "#bbdefb",
}
STATUS_ORDER = ("completed", "failed", "timeout", "cancelled", "skipped", "running", "pending")
BOX_WIDTH, BOX_HEIGHT, COLUMN_GAP, ROW_GAP, MARGIN = 170, 44, 60, 16, 20


@dataclass
class GraphDrawing:
    dot: str
    svg: str
    renderer: str        # "dot" or "builtin"
    summarised: bool
    note: str | None = None   # why dot was not used, when it was asked for


def xml_escape(text: str) -> str:
    """&, < and > as XML entities, as xml.sax.saxutils.escape does (which imports
    urllib.request, http.client and ssl: tens of ms of every run's start-up)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _dot_string(text: str) -> str:
    """A DOT quoted string: backslash and quote escaped, line breaks as \\n."""
    text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text.replace("\r", "").replace("\n", "\\n") + '"'


def _duration_text(duration_ms) -> str:
    if duration_ms is None:
        return ""
    return f"{duration_ms / 1000.0:.2f} s" if duration_ms >= 1000 else f"{duration_ms:.0f} ms"


SUMMARY_BOXES = 24   # at most this many boxes in a summarised drawing


# A record made by the core holds its graph as the core's typed data (runner's
# ExecutionGraph): its nodes and edges are made one at a time here instead of as lists of
# dicts held at once (a million of them for a large run). A graph read from a file is a dict.

def graph_nodes(graph: dict):
    each = getattr(graph, "each_node", None)
    return each() if each is not None else graph["nodes"]


def graph_edges(graph: dict):
    each = getattr(graph, "each_edge", None)
    return each() if each is not None else graph["edges"]


def node_count(graph: dict) -> int:
    count = getattr(graph, "node_count", None)
    return count() if count is not None else len(graph["nodes"])


def summarise(graph: dict, boxes: int = SUMMARY_BOXES) -> tuple[list[dict], list[dict]]:
    """One node per band of levels (with status counts) and the band-to-band dependency edges.

    A band is one level while there are at most `boxes` levels, else consecutive levels
    grouped so that there are at most `boxes` bands.
    """
    counted = graph_level_bands(graph, boxes)       # the core's typed graph, counted in one pass
    if counted is not None:
        levels, width, tallies, crossing = counted
        counts: dict[int, Counter] = {band: Counter(tally) for band, tally in tallies.items()}
        entering = Counter(crossing)
    else:
        levels = max((node["level"] for node in graph_nodes(graph)), default=0) + 1
        width = -(-levels // boxes)          # levels per band, rounded up
        band_of = {}
        counts = defaultdict(Counter)
        for node in graph_nodes(graph):
            band = node["level"] // width
            band_of[node["id"]] = band
            counts[band][task_status(node)] += 1
        # Into each band, from the band before it: how many dependencies cross into it from
        # any earlier band (edges that skip bands would make the drawing a thicket).
        entering = Counter(band_of[e["target"]] for e in graph_edges(graph)
                           if band_of[e["source"]] != band_of[e["target"]])

    def name(band: int) -> str:
        first, last = band * width, min(band * width + width, levels) - 1
        return f"level {first}" if first == last else f"levels {first}-{last}"

    summary_nodes = []
    for band in sorted(counts):
        total = sum(counts[band].values())
        detail = ", ".join(f"{counts[band][s]} {s}" for s in STATUS_ORDER if counts[band][s])
        worst = next((s for s in ("failed", "timeout", "cancelled", "pending", "skipped") if counts[band][s]),
                     "completed")
        summary_nodes.append({"id": name(band), "label": f"{name(band)}: {total} tasks", "detail": detail,
                              "status": worst, "level": band})
    bands = sorted(counts)
    summary_edges = [{"source": name(a), "target": name(b), "count": entering[b]}
                     for a, b in zip(bands, bands[1:]) if entering[b]]
    return summary_nodes, summary_edges


def critical_path_of(record: dict) -> list[str]:
    """The task ids of a LAST record's critical path (empty when it has none)."""
    statistics = record.get("statistics") if isinstance(record.get("statistics"), dict) else {}
    critical = statistics.get("critical_path") if isinstance(statistics.get("critical_path"), dict) else {}
    ids = critical.get("task_ids")
    return [str(i) for i in ids] if isinstance(ids, list) else []


def _critical_edges(critical) -> set:
    return set(zip(critical, critical[1:]))


def _dot_head(title: str) -> str:
    return (f"digraph {_dot_string(title)} {{\n"
            "  rankdir=LR;\n"
            '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];\n'
            '  edge [color="#607d8b"];\n')


def write_dot(graph: dict, title: str, write, piece: int = 1 << 20) -> None:
    """graph.dot's bytes, to_dot(graph, title).encode("utf-8"), handed to `write` about a
    piece at a time: made by the core from its typed graph when it can (a million tasks'
    lines cost seconds in Python), else from to_dot's text."""
    head = _dot_head(title).encode("utf-8")
    if write_graph_dot(graph, head, STATUS_COLOURS, write, _dot_string, piece):
        return
    text = to_dot(graph, title)
    for start in range(0, len(text), piece):
        write(text[start:start + piece].encode("utf-8"))


def to_dot(graph: dict, title: str = "execution", critical=()) -> str:
    """Every task and dependency as a GraphViz digraph, coloured by status; the critical
    path drawn thick."""
    on_path, path_edges = set(critical), _critical_edges(list(critical))
    text = io.StringIO()        # line by line: no list of a line per task and edge besides the text
    write = text.write
    write(_dot_head(title))
    for node in graph_nodes(graph):
        status = task_status(node)
        label = "\n".join(filter(None, (node["id"], status, _duration_text(node.get("duration_ms")))))
        colour = STATUS_COLOURS.get(status, "#ffffff")
        thick = ', penwidth=3, color="#263238"' if node["id"] in on_path else ""
        write(f"  {_dot_string(node['id'])} [label={_dot_string(label)}, fillcolor=\"{colour}\"{thick}];\n")
    for edge in graph_edges(graph):
        thick = ' [penwidth=2.5, color="#263238"]' if (edge["source"], edge["target"]) in path_edges else ""
        write(f"  {_dot_string(edge['source'])} -> {_dot_string(edge['target'])}{thick};\n")
    write("}\n")
    return text.getvalue()


def _summary_dot(nodes: list[dict], edges: list[dict], title: str) -> str:
    lines = [f"digraph {_dot_string(title)} {{", "  rankdir=TB;",
             '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10, width=3.2];']
    for node in nodes:
        label = f"{node['label']}\n{node['detail']}"
        lines.append(f"  {_dot_string(node['id'])} [label={_dot_string(label)}, "
                     f"fillcolor=\"{STATUS_COLOURS.get(node['status'], '#ffffff')}\"];")
    for edge in edges:
        # xlabel, not label: dot lays out labelled edges as extra nodes, which took
        # seconds here for ~100 long edges; an external label is placed afterwards.
        lines.append(f"  {_dot_string(edge['source'])} -> {_dot_string(edge['target'])} "
                     f"[xlabel={_dot_string(str(edge['count']))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _routed_edge(x1: float, y1: float, x2: float, y2: float, channel: float) -> str:
    """An edge that skips columns: out into the gap after its source column, along the gap
    between two rows (where no box is), and into the gap before its target: it never runs
    under a box. Corners are rounded."""
    xa, xb, r = x1 + COLUMN_GAP / 2, x2 - COLUMN_GAP / 2, 6.0

    def turn(x, y_from, y_to):
        step = r if y_to > y_from else -r
        return x, y_from + (step if abs(y_to - y_from) > 2 * r else (y_to - y_from) / 2)

    _, ya = turn(xa, y1, channel)
    _, yb = turn(xb, channel, y2)
    down_a = r if channel > y1 else -r
    down_b = r if y2 > channel else -r
    return (f"M {x1} {y1} L {xa - r} {y1} Q {xa} {y1} {xa} {y1 + down_a} L {xa} {channel - down_a} "
            f"Q {xa} {channel} {xa + r} {channel} L {xb - r} {channel} Q {xb} {channel} {xb} {channel + down_b} "
            f"L {xb} {y2 - down_b} Q {xb} {y2} {xb + r} {y2} L {x2} {y2}")


def layered_svg(nodes: list[dict], edges: list[dict], vertical: bool = False, critical=()) -> str:
    """The built-in layout: columns by level, rows ordered by the dependencies' mean row.
    Edges between neighbouring columns are curves inside the gap between them; longer ones
    are routed along the gaps between rows, so no edge runs under a box. The critical path
    (its boxes and the edges between them) is drawn thick and dark, on top.

    vertical: levels go down the page instead (the summary, one box per level band).
    """
    on_path, path_edges = set(critical), _critical_edges(list(critical))
    box_width = 340 if vertical else BOX_WIDTH
    columns: dict[int, list[dict]] = defaultdict(list)
    for node in nodes:
        columns[node["level"]].append(node)
    incoming: dict[str, list[str]] = defaultdict(list)
    for edge in edges:
        incoming[edge["target"]].append(edge["source"])
    row: dict[str, float] = {}
    for level in sorted(columns):
        column = columns[level]
        if level:
            column.sort(key=lambda n: (sum(row.get(d, 0.0) for d in incoming[n["id"]]) / len(incoming[n["id"]])
                                       if incoming[n["id"]] else float("inf")))
        for position, node in enumerate(column):
            row[node["id"]] = position
    place = {}
    for level, column in columns.items():
        for position, node in enumerate(column):
            across, down = level * (box_width + COLUMN_GAP), position * (BOX_HEIGHT + ROW_GAP)
            place[node["id"]] = (MARGIN + across, MARGIN + down) if not vertical else \
                (MARGIN + position * (box_width + COLUMN_GAP), MARGIN + level * (BOX_HEIGHT + ROW_GAP + 10))
    levels = max(columns) + 1 if columns else 0
    widest = max((len(c) for c in columns.values()), default=0)
    if vertical:
        levels, widest = widest, levels
    width = MARGIN * 2 + levels * (box_width + COLUMN_GAP) - COLUMN_GAP
    height = MARGIN * 2 + widest * (BOX_HEIGHT + ROW_GAP + (10 if vertical else 0)) - ROW_GAP
    width, height = max(width, 2 * MARGIN + box_width), max(height, 2 * MARGIN + BOX_HEIGHT)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" font-size="11">',
           "<!-- drawn by librunner's built-in layered layout -->",
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#607d8b"/></marker></defs>',
           '<marker id="arrow-critical" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" '
           'orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="#263238"/></marker>',
           '<g class="edges" fill="none" stroke="#607d8b" stroke-width="1.2">']
    critical_paths = []
    for edge in edges:
        if edge["source"] not in place or edge["target"] not in place:
            continue
        x1, y1 = place[edge["source"]]
        x2, y2 = place[edge["target"]]
        if vertical:
            x1, x2, y1 = x1 + box_width / 2, x2 + box_width / 2, y1 + BOX_HEIGHT
            path = f"M {x1} {y1} L {x2} {y2}"
            label_x, label_y = x1 + 6, (y1 + y2) / 2 + 4
        else:
            span = round((x2 - x1) / (box_width + COLUMN_GAP))      # columns the edge crosses
            x1, y1, y2 = x1 + box_width, y1 + BOX_HEIGHT / 2, y2 + BOX_HEIGHT / 2
            middle = (x1 + x2) / 2
            if span <= 1:
                path = f"M {x1} {y1} C {middle} {y1}, {middle} {y2}, {x2} {y2}"
                label_x, label_y = middle, (y1 + y2) / 2 - 3
            else:
                # The gap between rows nearest the middle of the two ends.
                target = (y1 + y2) / 2 - MARGIN + ROW_GAP / 2
                gap = max(0, round(target / (BOX_HEIGHT + ROW_GAP)))
                channel = MARGIN + gap * (BOX_HEIGHT + ROW_GAP) - ROW_GAP / 2
                path = _routed_edge(x1, y1, x2, y2, channel)
                label_x, label_y = middle, channel - 3
        if (edge["source"], edge["target"]) in path_edges:
            critical_paths.append(path)
        else:
            out.append(f'<path d="{path}" marker-end="url(#arrow)"/>')
        if "count" in edge:
            out.append(f'<text x="{label_x}" y="{label_y}" fill="#37474f" stroke="none">{edge["count"]}</text>')
    for path in critical_paths:
        out.append(f'<path class="critical" d="{path}" stroke="#263238" stroke-width="2.6" '
                   f'marker-end="url(#arrow-critical)"/>')
    out.append('</g><g class="nodes">')
    for node in nodes:
        x, y = place[node["id"]]
        label = node.get("label", node["id"])
        status = task_status(node)
        second = node.get("detail") or " ".join(filter(None, (status, _duration_text(node.get("duration_ms")))))
        out.append(f'<g class="node status-{xml_escape(status)}"><title>{xml_escape(node["id"])}</title>'
                   f'<rect x="{x}" y="{y}" width="{box_width}" height="{BOX_HEIGHT}" rx="6" '
                   f'fill="{STATUS_COLOURS.get(status, "#ffffff")}" '
                   + ('stroke="#263238" stroke-width="3"/>' if node["id"] in on_path else 'stroke="#455a64"/>')
                   + f'<text x="{x + 8}" y="{y + 18}" font-weight="bold">{xml_escape(_clip(label, box_width // 6 - 2))}</text>'
                   f'<text x="{x + 8}" y="{y + 34}" fill="#37474f">{xml_escape(_clip(second, box_width // 6 + 2))}</text></g>')
    out.append("</g></svg>")
    return "\n".join(out) + "\n"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def dot_available() -> bool:
    return shutil.which("dot") is not None


def run_dot(dot_text: str, timeout: float) -> str:
    """SVG from GraphViz; RuntimeError (with why) if dot is missing, fails or runs out of time."""
    program = shutil.which("dot")
    if program is None:
        raise RuntimeError("GraphViz 'dot' is not installed")
    try:
        finished = subprocess.run([program, "-Tsvg"], input=dot_text.encode("utf-8"), capture_output=True,
                                  timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"dot took longer than {timeout:g} s") from None
    except OSError as error:
        raise RuntimeError(f"cannot run dot: {error.strerror or error}") from None
    if finished.returncode != 0:
        message = finished.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        raise RuntimeError(f"dot failed (exit {finished.returncode}): {message[0]}")
    return finished.stdout.decode("utf-8", "replace")


def draw(graph: dict, *, renderer: str = "auto", draw_limit: int = 300, timeout: float = 10.0,
         title: str = "execution", with_dot: bool = True, critical=()) -> GraphDrawing:
    """graph.dot text (every task; "" unless with_dot) and graph.svg text (summarised above
    draw_limit); `critical`, the critical path's task ids, is drawn thick."""
    summarised = node_count(graph) > draw_limit
    full_dot = to_dot(graph, title) if with_dot or not summarised else ""
    if summarised:
        critical = ()
        nodes, edges = summarise(graph)
        drawing_dot = _summary_dot(nodes, edges, title)
    else:
        nodes, edges = graph["nodes"], graph["edges"]
        # graph.dot stays the plain graph; the drawing marks the critical path.
        drawing_dot = to_dot(graph, title, critical) if critical else full_dot
    note = None
    if renderer in ("auto", "dot") and (renderer == "dot" or dot_available()):
        try:
            return GraphDrawing(full_dot, run_dot(drawing_dot, timeout), "dot", summarised)
        except RuntimeError as error:
            note = f"{error}; drawn by the built-in layout"
    return GraphDrawing(full_dot, layered_svg(nodes, edges, vertical=summarised, critical=critical), "builtin",
                        summarised, note)
