"""Issue 15's targets checked against one run, the headline ratios kept
per run (their spread over runs), and issue 11's before/after round trip.

Every target row is a ``report.Row``: project / anchor with the anchor a
peer's value from the same run. "Ahead of every peer" means better than
the best peer that ran the figure.
"""

from bench import report_peers
from bench.report import Row, fmt, target_table


def _best_row(doc, figure, among, label, target, limit, anchor_prefix=""):
    found = report_peers.values(doc, figure)
    name, value = report_peers.best(figure, found, among)
    anchor = report_peers.TITLES.get(name, "no peer ran")
    return Row(label, figure.unit, found["project"][0], value,
               f"{anchor_prefix}{anchor}", target, limit,
               higher_is_better=target.startswith(">="))


def targets(doc):
    """The rows of issue 15's target table, in its order."""
    by_key = {f.key: f for f in report_peers.figures(doc) if f.key}
    rt, submit = by_key["round_trip"], by_key["submit"]
    rows = [
        _best_row(doc, rt, report_peers.PROCESS_BASED,
                  "Round trip p50 vs the best process-based peer",
                  "<= 0.5", 0.5),
        _best_row(doc, rt, ("subinterpreters",),
                  "Round trip p50 vs in-process sub-interpreters",
                  "<= 2", 2),
        _best_row(doc, submit, report_peers.COLUMNS,
                  "Submit per job vs the best peer's", ">= 5", 5),
    ]
    ppe_map = report_peers.lookup(doc, ("throughput", "process_pool_map",
                                        "median"))[0]
    for chunked in (by_key["client_map"], by_key["map"]):
        rows += [
            _best_row(doc, chunked, report_peers.COLUMNS,
                      f"{chunked.label} vs the best peer's", ">= 2", 2),
            Row(f"{chunked.label} vs PPE map(chunksize=1)", "jobs/s",
                report_peers.lookup(doc, chunked.ours)[0], ppe_map,
                "PPE map(chunksize=1)", ">= 10", 10, True)]
    for direction in ("arg", "result"):
        rows.append(Row(
            f"64 MiB {'argument' if direction == 'arg' else 'result'} "
            "vs memcpy", "MB/s",
            report_peers.lookup(doc, ("large_data", f"project_{direction}",
                                      "median"))[0],
            report_peers.lookup(doc, ("large_data", "memcpy", "median"))[0],
            "memcpy", ">= 0.5", 0.5, True))
    for figure in report_peers.figures(doc):
        if figure.key in ("round_trip", "submit", "client_map", "map"):
            continue
        target = ">= 1" if figure.higher_is_better else "<= 1"
        rows.append(_best_row(doc, figure, report_peers.COLUMNS,
                              f"{figure.label}: ahead of every peer",
                              target, 1))
    return rows


def headlines(doc):
    """{target label: ratio} of this run, for the spread over runs."""
    kept = {row.label: row.ratio for row in targets(doc)}
    for label, path in (("numpy FFT jobs/s vs PPE", ("median",)),
                        ("numpy tiny round trip p50 vs PPE", ("p50",))):
        inner = ("round_trip",) if "round trip" in label else ()
        ours = report_peers.lookup(doc, ("numpy", *inner, "project", *path))[0]
        ppe = report_peers.lookup(doc, ("numpy", *inner, "process_pool",
                                        *path))[0]
        kept[label] = ours / ppe if ours is not None and ppe else None
    for label, _, _, ratio in before_after_rows(doc):
        if "p50" in label:  # pool and leased Interpreter
            kept[f"Interpreter lane {label[0].lower()}{label[1:]}, "
                 "after / before"] = ratio
    return kept


def spread_table(runs):
    """Each headline ratio in each run, and its min - max."""
    labels = list(runs[0])
    lines = ["| ratio | " + " | ".join(f"run {i + 1}" for i in range(len(runs)))
             + " | min – max |",
             "|---|" + "---:|" * len(runs) + "---|"]
    for label in labels:
        ratios = [run.get(label) for run in runs]
        lines.append(f"| {label} | " + " | ".join(fmt(r) for r in ratios)
                     + f" | {report_peers.span(ratios)} |")
    return lines


def before_after_rows(doc):
    """(label, before, after, after / before) of the interpreter lane's
    round trip against the daemon of an earlier commit, if it ran."""
    figure = doc["figures"].get("round_trip", {})
    rows = []
    for variant, name in (("pool", "pool"), ("lease", "leased Interpreter")):
        for p in ("p50", "p99"):
            before = (figure.get(f"before_{variant}") or {}).get(p)
            after = (figure.get(f"project_{variant}") or {}).get(p)
            if isinstance(before, (int, float)) and isinstance(after, (int, float)):
                rows.append((f"Round trip {p}, {name}", before, after,
                             after / before))
    return rows


def before_after_table(doc):
    rows = before_after_rows(doc)
    if not rows:
        return []
    config = doc["config"]
    before = config.get("before_label") or "before"
    after = config.get("label") or "after"
    lines = [f"| interpreter lane | before (`{before}`) | after (`{after}`) "
             "| after / before |", "|---|---:|---:|---:|"]
    for label, old, new, ratio in rows:
        lines.append(f"| {label} | {fmt(old)} µs | {fmt(new)} µs | "
                     f"{fmt(ratio)} |")
    return lines


def sections(doc):
    """The Markdown of issue 15's and issue 11's tables."""
    rows = targets(doc)
    verdicts = [row.verdict for row in rows]
    lines = ["## Against every peer (issue 15)", "",
             "Same Python, same worker count, same jobs; the best peer of "
             "each figure in bold; ours / best as in the table above (below "
             "1 is better for times and memory, above 1 for rates). \"n/a\": "
             "the peer has no such thing; \"skipped\", \"unavailable\": "
             "see the notes below and the JSON.", "",
             *report_peers.peer_table(doc), ""]
    notes = report_peers.unavailable_notes(doc)
    if notes:
        lines += ["Peers that could not run a figure here:", "", *notes, ""]
    lines += ["## Issue 15's targets", "",
              f"Met: {verdicts.count('met')} of {len(verdicts)}"
              + (f" ({verdicts.count('not measured')} not measured)"
                 if "not measured" in verdicts else "") + ".", "",
              *target_table(rows), ""]
    before = before_after_table(doc)
    if before:
        lines += ["## The interpreter lane before and after the process "
                  "lane (issue 11)", "",
                  "The two daemons ran side by side, taking turns round by "
                  "round with the rest of the round-trip figure.", "",
                  *before, ""]
    runs = doc.get("headline_runs") or []
    if len(runs) > 1:
        lines += [f"## Headline ratios over {len(runs)} runs", "",
                  "Each run is a whole benchmark run; the tables above are "
                  "the last one's.", "", *spread_table(runs), ""]
    return lines
