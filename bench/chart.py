"""Draws bench/results/latest.png from latest.json (matplotlib).

    /usr/bin/python3 bench/chart.py results/latest.json results/latest.png

Run with Debian's Python and its python3-matplotlib (bench/run.sh installs
it); the benchmark itself runs under the project's Python. One panel per
figure of the peer table (bench/report_peers.py): the project's bar in
blue, the best peer's in orange, the other peers' in grey, a peer with no
number named under its empty slot; whiskers for the spread (p10-p90 or
min-max); the title gives ours / best peer. A last panel shows the
interpreter lane's round trip before and after the process lane.
"""

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# The tables' definitions are plain Python: shared with the benchmark.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench import report_peers, report_targets  # noqa: E402

PROJECT, BEST, PEER, LIMIT = "#1f77b4", "#ff7f0e", "#9a9a9a", "#555555"
LOG_SPAN = 30  # a panel whose bars differ more than this gets a log scale


def summary_of(doc, path):
    """The dict holding the number at ``path`` (for its spread), if any."""
    value = doc["figures"]
    for key in path[:-1]:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value if isinstance(value, dict) else None


def whisker(summary, mid):
    if not summary:
        return 0, 0
    low_key, high_key = ("min", "max") if "median" in summary else ("p10", "p90")
    low, high = summary.get(low_key, mid), summary.get(high_key, mid)
    if not isinstance(low, (int, float)) or not isinstance(high, (int, float)):
        return 0, 0
    return max(mid - low, 0), max(high - mid, 0)


def figure_panel(ax, doc, figure):
    found = report_peers.values(doc, figure)
    best_name, best_value = report_peers.best(figure, found)
    systems = ["project", *report_peers.COLUMNS]
    labels, heights, errors, colours = [], [], ([], []), []
    for name in systems:
        number, why = found[name]
        title = "ours" if name == "project" else report_peers.TITLES[name]
        labels.append(title if number is not None else f"{title}\n({why})")
        heights.append(number or 0)
        path = figure.ours if name == "project" else (
            figure.ppe if name == "process_pool" else figure.peer(name))
        spread = summary_of(doc, path) if path and path[-1] != "p99" else None
        low, high = whisker(spread, number or 0)
        errors[0].append(low)
        errors[1].append(high)
        colours.append(PROJECT if name == "project" else
                       BEST if name == best_name else PEER)
    xs = range(len(labels))
    ax.bar(xs, heights, color=colours, yerr=errors, capsize=2,
           error_kw={"elinewidth": 0.7, "ecolor": "#333333"})
    for x, h in zip(xs, heights):
        if h:
            ax.annotate(f"{h:,.0f}" if h >= 100 else f"{h:.3g}", (x, h),
                        ha="center", va="bottom", fontsize=6, xytext=(0, 1),
                        textcoords="offset points")
    ours = found["project"][0]
    ratio = ours / best_value if ours is not None and best_value else None
    better = "higher" if figure.higher_is_better else "lower"
    runs = doc.get("best_ratio_runs") or []
    over_runs = (f" ({len(runs)} runs: "
                 f"{report_peers.span([r.get(figure.label) for r in runs])})"
                 if len(runs) > 1 else "")
    ax.set_title(f"{figure.label} ({figure.unit}, {better} is better)\n"
                 f"ours / best peer = {ratio:.3g}{over_runs}" if ratio else
                 f"{figure.label} ({figure.unit})", fontsize=7.5)
    ax.set_xticks(list(xs))
    ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=6)
    ax.tick_params(axis="y", labelsize=6)
    positive = [h for h in heights if h > 0]
    if positive and max(positive) / min(positive) > LOG_SPAN:
        ax.set_yscale("log")


def before_after_panel(ax, doc):
    rows = report_targets.before_after_rows(doc)
    ax.set_title("Interpreter lane round trip, before / after the process "
                 "lane (µs)", fontsize=7.5)
    if not rows:
        ax.text(0.5, 0.5, "not measured in this run\n(bench/run.sh "
                "--before-daemon)", ha="center", va="center", fontsize=7)
        ax.set_axis_off()
        return
    xs = range(len(rows))
    before = [row[1] for row in rows]
    after = [row[2] for row in rows]
    ax.bar([x - 0.2 for x in xs], before, width=0.4, color=PEER, label="before")
    ax.bar([x + 0.2 for x in xs], after, width=0.4, color=PROJECT, label="after")
    ax.set_xticks(list(xs))
    ax.set_xticklabels([f"{row[0].replace('Round trip ', '')}\n"
                        f"after/before {row[3]:.2f}" for row in rows],
                       fontsize=6)
    ax.tick_params(axis="y", labelsize=6)
    ax.legend(fontsize=6)


def draw(doc, path):
    m, c = doc["machine"], doc["config"]
    figures = report_peers.figures(doc)
    columns = 4
    rows = (len(figures) + 1 + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(17, 4.1 * rows))
    flat = [ax for row in axes for ax in row]
    for ax, figure in zip(flat, figures):
        figure_panel(ax, doc, figure)
    before_after_panel(flat[len(figures)], doc)
    for ax in flat[len(figures) + 1:]:
        ax.set_axis_off()
    verdicts = [t["verdict"] for t in doc.get("targets_issue15", [])]
    fig.suptitle(
        f"extrainterpreters (blue) against every peer (best in orange) — "
        f"{m['date']}, {m['cpu_count']} CPUs, Python {m['python_version']}, "
        f"{c['workers']} workers, mode {c['mode']}; issue 15 targets met "
        f"{verdicts.count('met')} of {len(verdicts)}", fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    fig.savefig(path, dpi=100)


def main(argv):
    if len(argv) != 3:
        sys.exit("usage: chart.py latest.json latest.png")
    with open(argv[1], encoding="utf-8") as source:
        doc = json.load(source)
    draw(doc, argv[2])


if __name__ == "__main__":
    main(sys.argv)
