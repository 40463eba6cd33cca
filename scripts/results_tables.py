"""The current tables of docs/BENCHMARKS.md and docs/EVALUATION.md, from docs/results/.

Each table is a function of the kept results (scripts/measure.py writes them). A page holds
its tables between two markers, so the prose around them stays hand-written and the
figures are never typed by hand:

    <!-- table: engine -->
    ...generated...
    <!-- /table -->

`fill(text)` replaces every marked table with its current rendering; scripts/gen_docs.py
writes the pages and its `--check` fails when a table is stale.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
PAGE_NAMES = ["BENCHMARKS.md", "EVALUATION.md"]  # under docs/
PAGES = [ROOT / "docs" / name for name in PAGE_NAMES]
MARKED = re.compile(r"(<!-- table: (?P<name>[\w-]+) -->\n).*?(<!-- /table -->)", re.S)
DATASET_NAMES = {"online-retail": "online retail", "superstore": "superstore",
                 "crm-opportunities": "CRM opportunities",
                 "rare-buyers": "rare buyers (generated)"}


def result(name: str) -> dict[str, Any]:
    """A kept measurement (scripts/measure.py)."""
    return json.loads((RESULTS / f"{name}.json").read_text())


def ran_on(*names: str) -> str:
    """The line under a table saying when, where and on which commit it ran."""
    parts = []
    for name in names:
        rec = result(name)
        m = rec["machine"]
        load = f"load {m['load_average_before'][0]} to {m['load_average_after'][0]}"
        dirty = ", with local changes" if rec["modified"] else ""
        parts.append(f"`{rec['command']}` at {rec['commit']}{dirty} on {rec['date'][:10]}, "
                     f"{rec['elapsed_s']:,} s, {load}")
    m = result(names[0])["machine"]
    machine = (f"{m['cpus']} CPUs ({m['cpu_model'] or 'unknown model'}), "
               f"{m['memory_gb']} GB, Python {m['python']}")
    return "Measured by " + "; ".join(parts) + f". Machine: {machine}."


def table(header: Iterable[str], rows: Iterable[Iterable[Any]]) -> str:
    head = list(header)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def cell(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "**no**"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        text = f"{value:,.3f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:,.1f}"
        return text
    return str(value).replace("|", "\\|")


def goal(value: float | None, limit: float, at_least: bool = True) -> tuple[str, bool | None]:
    """(the goal as text, met?)"""
    if value is None:
        return (f">= {limit}" if at_least else f"<= {limit}"), None
    return ((f">= {limit}", value >= limit) if at_least else (f"<= {limit}", value <= limit))


# -- benchmarks --------------------------------------------------------------------------

def engine() -> str:
    r = result("engine")["result"]
    ratio_goal, ratio_met = goal(r["ratio"], 0.5)
    state_goal, state_met = goal(r["state_bytes_per_customer_median"], 1024, at_least=False)
    rows = [
        ("engine events/s (every detector, policy; CPU seconds, best of "
         f"{r['repeat']})", r["events_per_s"], "", ""),
        ("limit events/s (each detector's learning arithmetic alone)",
         r["limit_events_per_s"], "", ""),
        ("**ratio** engine / limit", r["ratio"], ratio_goal, ratio_met),
        ("end to end events/s (JSON text, validation, engine, policy)",
         r["end_to_end_events_per_s"], "", ""),
        ("state per customer, median bytes", r["state_bytes_per_customer_median"],
         state_goal, state_met),
        ("state per customer, p99 bytes", r["state_bytes_per_customer_p99"], "", ""),
    ]
    return (table(["figure", f"{r['events']:,} events, {r['customers']:,} customers",
                   "goal", "met"], rows) + "\n\n" + ran_on("engine"))


def goals(name: str) -> str:
    """The goals a bench reports itself (`goals` in its JSON): value, goal, met."""
    r = result(name)["result"]
    rows = [(key, g.get("value"), g.get("goal", ""), g.get("met"))
            for key, g in r.get("goals", {}).items()]
    return table(["goal", "value", "what", "met"], rows)


def _ms(d: dict[str, Any] | None) -> str:
    if not d:
        return "n/a"
    return f"{d.get('p50', 'n/a')} / {d.get('p99', d.get('p95', 'n/a'))} / {d.get('max', 'n/a')}"


def http() -> str:
    r = result("http")["result"]
    rows: list[list[Any]] = [["engine alone, no HTTP (events / CPU s)", r["engine"]["events_per_s"],
                              "", ""]]
    for batch, run in r.get("ingest", {}).items():
        rows.append([f"HTTP accepted, batches of {batch}, {run['clients']} clients, engine "
                     "learning", run["accepted_events_per_s"], _ms(run.get("latency_ms")),
                     run.get("http_to_engine")])
    for batch, run in r.get("ingest_engine_off", {}).items():
        rows.append([f"HTTP accepted, batches of {batch}, engine paused",
                     run["accepted_events_per_s"], _ms(run.get("latency_ms")), ""])
    for key, label in (("paced", "paced at half the engine, batches of 100"),
                       ("paced_share_of_http", "paced at half of HTTP's rate")):
        if key in r:
            rows.append([label, r[key]["achieved_events_per_s"], _ms(r[key]["latency_ms"]), ""])
    send = r.get("event_to_send") or {}
    if send:
        rows.append([f"event to send at {send['rate_events_per_s']:g} events/s (webhook)",
                     send.get("achieved_events_per_s"),
                     _ms(send.get("latency_ms_from_request_sent")), ""])
    return (table(["run", "events/s", "latency ms p50 / p99 / max", "HTTP / engine"], rows)
            + "\n\n" + goals("http") + "\n\n" + ran_on("http"))


def _runs(r: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every timed preview in a preview bench, in the order it ran."""
    out = []
    for key, value in r.items():
        if not isinstance(value, dict) or key in {"goals", "journal", "machine", "code",
                                                  "peak_rss_mb"}:
            continue
        if "seconds" in value:
            out.append((key, value))
        out += [(f"{key}.{k}", v) for k, v in value.items()
                if isinstance(v, dict) and "seconds" in v]
    return out


def preview(name: str = "preview") -> str:
    r = result(name)["result"]
    rows = []
    for key, run in _runs(r):
        change = run.get("change") or r.get(key.split(".")[0], {}).get("change", "")
        alerts = (f"{run['alerts_before']:,} -> {run['alerts_after']:,}"
                  if "alerts_before" in run else f"{run.get('alerts', 0):,} alerts")
        rows.append([key.replace("_", " "), f"`{change}`" if change else "",
                     run["seconds"], run.get("ratio_to_full_replay", 1), alerts,
                     run.get("added", ""), run.get("removed", "")])
    journal = r.get("journal", {})
    peak = r.get("peak_rss_mb") or {}
    memory = (f" Peak memory: {peak['bench_process'] / 1024:.1f} GB resident in the bench "
              "process (it ran the previews; window runs in forks of it)."
              if peak.get("bench_process") else "")
    source, _, copies = str(r.get("source", "")).partition(", ")
    source = Path(source).name + (f", {copies}" if copies else "")
    head = (f"Journal of {journal.get('events', 0):,} events ({source}); the "
            f"window is its last {r.get('days'):g} days, {journal.get('from', '')[:10]} to "
            f"{journal.get('to', '')[:10]}, {journal.get('window_events', 0):,} events."
            f"{memory}\n\n")
    return (head + table(["run", "change", "seconds", "of a full replay", "alerts", "added",
                          "removed"], rows)
            + "\n\n" + goals(name) + "\n\n" + ran_on(name))


def console() -> str:
    r = result("console")["result"]
    rows = [[key, page["who"], f"`{page['path']}`", f"{page['bytes'] / 1000:,.0f} kB",
             _ms(page["server_ms"]), page["client_ms"]["max"]]
            for key, page in r["pages"].items()]
    preview = r.get("preview") or {}
    for key in ("first_call", "next_value"):
        if key in preview:
            run = preview[key]
            rows.append([f"preview, {key.replace('_', ' ')}", preview.get("who", ""),
                         f"`{run['change']}`", f"{run['bytes'] / 1000:,.0f} kB",
                         f"{run['server_ms']:,.0f}", run["client_ms"]])
    return (table(["page", "who", "path", "size", "server ms p50 / p95 / max",
                   "client max ms"], rows)
            + "\n\n" + goals("console") + "\n\n" + ran_on("console"))


def kafka() -> str:
    r = result("kafka")["result"]
    c = r.get("conditions", {})
    rows: list[list[Any]] = []
    ref = r.get("engine") or {}
    if ref:
        rows.append(["embedded engine (no Kafka)", ref.get("engine_events_per_s"), "", ""])
        rows.append(["replay_partitioned, same partitions (no Kafka)",
                     ref.get("partitioned_events_per_s"), "", ""])
        inproc = ref.get("worker_in_process") or {}
        if inproc.get("events_per_s"):
            rows.append(["the workers' batch code in process (no Kafka, no Faust)",
                         inproc["events_per_s"], "", ""])
    if "raw" in r:
        rows.append(["raw aiokafka consumer, decode only", r["raw"].get("events_per_s"), "", ""])
    if "noop" in r:
        rows.append(["no-op Faust agent", r["noop"].get("events_per_s"), "", ""])
    engine_rate = ref.get("engine_events_per_s")
    for run in r.get("sia", []):
        ratio = (round(run["events_per_s_per_worker"] / engine_rate, 3)
                 if engine_rate and run.get("events_per_s_per_worker") else None)
        rows.append([f"sia workers: {run['workers']}", run.get("events_per_s"),
                     run.get("events_per_worker_cpu_s"), ratio])
    head = (f"{c.get('events', 0):,} events, {c.get('messages', 0):,} messages on "
            f"{c.get('partitions')} events partitions ({c.get('rep_partitions')} rep), "
            f"batches of {c.get('batch')}, checkpoint every {c.get('checkpoint_seconds')} s.\n\n")
    return (head + table(["loop", "events/s", "events per worker CPU s",
                          "per worker / engine"], rows) + "\n\n" + ran_on("kafka"))


def delivery() -> str:
    r = result("delivery")["result"]
    rows = [[f"{r['delivery_rate_events_per_s']:g} events/s asked "
             f"({r['delivery_achieved_events_per_s']:g} achieved)", r["delivery_events"],
             r["delivery_messages"], r["delivery_latency_ms_p50"],
             r["delivery_latency_ms_p99"]]]
    return (table(["rate", "events", "messages", "p50 ms", "p99 ms"], rows) + "\n\n"
            + ran_on("delivery"))


TABLES: dict[str, Callable[[], str]] = {"engine": engine, "http": http, "preview": preview,
                                         "preview-500k": lambda: preview("preview-500k"),
                                         "console": console, "kafka": kafka,
                                         "delivery": delivery}


# -- evaluation --------------------------------------------------------------------------

def _lead(value: Any) -> str:
    return "n/a" if value is None else f"{value:+.1f}"


def _prec(value: Any, other: Any = None) -> str:
    """A precision, bold when it beats the other."""
    if value is None:
        return "n/a"
    text = f"{value:.3f}"
    return f"**{text}**" if isinstance(other, int | float) and value > other else text


QUALITY_HEADER = ["dataset", "detector (kind judged)", "judged alerts (unjudged)", "precision",
                  "baseline precision", "baseline (matched volume or same moments)",
                  "recall, detector / baseline", "median lead days, detector / baseline",
                  "alerts / 1k customers / week"]


def quality_rows(name: str) -> list[list[str]]:
    r = result(f"evaluate-{name}")["result"]
    rows = []
    for detector, row in r["detectors"].items():
        base = row.get("baseline") or {}
        kind = row.get("judged_kind")
        rows.append([
            DATASET_NAMES[name], f"{detector} ({kind})" if kind else detector,
            f"{row['alerts']:,} ({row.get('unjudged', 0):,})",
            _prec(row.get("precision"), base.get("precision")),
            _prec(base.get("precision"), row.get("precision")),
            base.get("name", "n/a"),
            f"{cell(row.get('recall'))} / {cell(base.get('recall'))}",
            f"{_lead(row.get('median_lead_days'))} / {_lead(base.get('median_lead_days'))}",
            cell(row.get("alerts_per_1k_customers_per_week")),
        ])
    return rows


def quality() -> str:
    rows = [row for name in DATASET_NAMES for row in quality_rows(name)]
    return table(QUALITY_HEADER, rows) + "\n\n" + ran_on(*[f"evaluate-{n}" for n in DATASET_NAMES])


def datasets() -> str:
    rows = []
    for name in DATASET_NAMES:
        r = result(f"evaluate-{name}")["result"]
        rows.append([DATASET_NAMES[name], r["events"], r["customers"], r["weeks"]])
    return table(["dataset", "events", "customers", "weeks"], rows)


def calibration() -> str:
    """Stated against observed probability of every probability-stating detector."""
    rows = []
    for name in DATASET_NAMES:
        for detector, row in result(f"evaluate-{name}")["result"]["detectors"].items():
            c = row.get("calibration")
            if not c:
                continue
            bins = "; ".join(f"{b['from']:.1f}-{b['to']:.1f}: {b['alerts']:,} alerts, stated "
                             f"{b['stated']:.2f}, right {b['observed']:.2f}" for b in c["bins"])
            rows.append([DATASET_NAMES[name], f"{detector} ({row.get('judged_kind')})",
                         c["alerts"], f"{c['brier']:.3f}", f"{c['ece']:.3f}", bins])
    return (table(["dataset", "detector (kind judged)", "judged alerts", "Brier", "ECE",
                   "bins of stated probability"], rows) + "\n\n"
            + ran_on(*[f"evaluate-{n}" for n in DATASET_NAMES]))


def partitions() -> str:
    one = result("evaluate-online-retail")["result"]["detectors"]
    four = result("evaluate-online-retail-p4")["result"]["detectors"]
    rows = []
    for detector, a in one.items():
        b = four.get(detector, {})
        count = (b.get("alerts", 0) / a["alerts"] - 1) if a.get("alerts") else None
        diff = (None if a.get("precision") is None or b.get("precision") is None
                else b["precision"] - a["precision"])
        rows.append([
            detector, a["alerts"], b.get("alerts"),
            "n/a" if count is None else f"{count:+.1%}",
            _prec(a.get("precision")), _prec(b.get("precision")),
            "n/a" if diff is None else f"{diff:+.3f}",
            "n/a" if count is None or diff is None else abs(count) <= 0.05 and abs(diff) <= 0.02,
        ])
    header = ["detector", "judged alerts, one engine", "judged alerts, P=4 shared",
              "alert count", "precision, one engine", "precision, P=4 shared",
              "precision difference", "within 5% and 0.02"]
    return table(header, rows) + "\n\n" + ran_on("evaluate-online-retail",
                                                 "evaluate-online-retail-p4")


def shipped(detector: str, key: str) -> str:
    """A threshold's value in the shipped config/detectors.yaml."""
    import yaml

    config = yaml.safe_load((ROOT / "config" / "detectors.yaml").read_text())
    return str(config["detectors"][detector][key])


def sweep(detector: str, key: str, values: Iterable[str]) -> str:
    """One threshold swept on online retail, the shipped value's row from the main run."""
    runs = [(shipped(detector, key) + " (shipped)", result("evaluate-online-retail"))]
    runs += [(v, result(f"sweep-{detector}-{key}-{v}")) for v in values]
    runs.sort(key=lambda run: float(run[0].split()[0]))
    rows = []
    for label, rec in runs:
        row = rec["result"]["detectors"][detector]
        base = row.get("baseline") or {}
        rows.append([label, row["alerts"], _prec(row.get("precision"), base.get("precision")),
                     _lead(row.get("median_lead_days")), base.get("name", "n/a"),
                     _prec(base.get("precision"), row.get("precision")),
                     _lead(base.get("median_lead_days"))])
    header = [f"{detector} `{key}`", "judged alerts", "precision", "median lead days",
              "baseline at the same volume", "baseline precision", "baseline lead days"]
    names = [f"sweep-{detector}-{key}-{v}" for v in values]
    return table(header, rows) + "\n\n" + ran_on(*names)


def held_out() -> str:
    """The held-out dataset's drift row, as in the quality table."""
    rows = [row for row in quality_rows("superstore") if row[1].startswith("drift ")]
    return table(QUALITY_HEADER, rows) + "\n\n" + ran_on("evaluate-superstore")


TABLES.update({"quality": quality, "datasets": datasets, "partitions": partitions,
               "calibration": calibration, "held-out": held_out,
               "sweep-drift": lambda: sweep("drift", "lost_probability",
                                            ("0.7", "0.85", "0.9")),
               "sweep-cross-sell": lambda: sweep("cross_sell", "min_confidence",
                                                 ("0.2", "0.4"))})


def fill(text: str) -> str:
    """The page with every marked table rendered from the current results."""
    def render(match: re.Match[str]) -> str:
        name = match.group("name")
        if name not in TABLES:
            raise KeyError(f"no table named {name!r} (known: {', '.join(TABLES)})")
        return f"{match.group(1)}{TABLES[name]()}\n{match.group(3)}"
    return MARKED.sub(render, text)
