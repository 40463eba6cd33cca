"""`sia evaluate` and `sia bench`: detector quality and speed, measured."""

from __future__ import annotations

import asyncio
import json
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sia.cli.common import MEASURE, build, console, errors, fail
from sia.detectors.base import Detector
from sia.events.models import Event, parse_event
from sia.events.reader import Reject, RejectSink, read_events
from sia.importers.online_retail import convert
from sia.policy import Policy

if TYPE_CHECKING:
    from sia.bench.http_bench import HttpBenchOptions
    from sia.bench.kafka_bench import KafkaBench

ConfigOpt = Annotated[Path | None, typer.Option(help="detectors.yaml (default: config/)")]
PolicyOpt = Annotated[Path | None, typer.Option(help="policy.yaml (default: config/)")]
ONLINE_RETAIL = Path("datasets/online_retail/online_retail.csv.gz")


def parse_horizon(text: str) -> float:
    """'90d' -> 90.0, '12w' -> 84.0."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([dw]?)\s*", text)
    if not match:
        raise typer.BadParameter(f"{text!r}: use days or weeks, e.g. 90d or 12w")
    value = float(match.group(1))
    return value * 7 if match.group(2) == "w" else value


def load_events(path: Path, rejects: Path) -> list[Event]:
    """Valid events of a JSONL file; bad records are kept in `rejects` and reported."""
    return list(stream_events(path, rejects))


def stream_events(path: Path, rejects: Path) -> Iterator[Event]:
    """`load_events` one event at a time (the file is checked at once, before the
    first event is asked for)."""
    if not path.exists():
        fail(f"{path}: no such file")

    def valid() -> Iterator[Event]:
        sink = RejectSink(rejects)
        for record in read_events(path):
            if isinstance(record, Reject):
                sink.add(record)
            else:
                yield record
        sink.close()
        if sink.count:
            errors.print(f"{sink.count} bad records skipped, kept in {rejects}",
                         highlight=False)
    return valid()


def default_online_retail() -> Path | None:
    """The shared online retail dataset, when it is beside the checkout."""
    env = os.environ.get("SIA_DATASETS")
    roots = [Path(env)] if env else []
    roots += [Path.cwd() / "..", Path.cwd() / "../shared", Path(__file__).resolve().parents[3]
              / "shared"]
    for root in roots:
        for candidate in (root / ONLINE_RETAIL, root / "shared" / ONLINE_RETAIL):
            if candidate.exists():
                return candidate
    return None


def apply_setting(detectors: list[Detector[Any]], assignment: str) -> None:
    """Apply `detector.key=value` to the default thresholds, validated like the config."""
    import dataclasses

    import yaml

    target, sep, raw = assignment.partition("=")
    name, dot, key = target.partition(".")
    if not sep or not dot:
        fail(f"--set {assignment!r}: use detector.key=value")
    detector = next((d for d in detectors if d.name == name), None)
    if detector is None:
        fail(f"--set {assignment!r}: detector {name!r} is not enabled")
    if key not in {f.name for f in dataclasses.fields(detector.params)}:
        fail(f"--set {assignment!r}: {name} has no threshold {key!r}")
    values = {**dataclasses.asdict(detector.params), key: yaml.safe_load(raw)}
    try:
        rebuilt = type(detector)(**values)  # global models are shaped by the thresholds
    except (TypeError, ValueError) as exc:
        fail(f"--set {assignment!r}: {exc}")
    rebuilt.set_overrides(detector.overrides)
    detectors[detectors.index(detector)] = rebuilt


def register_measure(app: typer.Typer) -> None:
    """Add the evaluate and bench commands."""

    @app.command(rich_help_panel=MEASURE)
    def evaluate(
        events_file: Annotated[Path, typer.Argument(help="events (.jsonl or .jsonl.gz)")],
        horizon: Annotated[str, typer.Option(help="judge alerts over this horizon")] = "90d",
        as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")]
        = False,
        only: Annotated[list[str] | None, typer.Option(help="evaluate only these")] = None,
        set_: Annotated[list[str] | None, typer.Option(
            "--set", help="try a threshold without editing the config: drift.lost_probability=0.9"
        )] = None,
        rejects: Annotated[Path, typer.Option(
            help="Where bad records are kept (they are skipped).")] = Path("sia-rejects.jsonl"),
        partitions: Annotated[int, typer.Option(
            min=0, help="judge a Kafka deployment with this many customer partitions "
            "(0: the embedded engine)")] = 0,
        share_population: Annotated[bool, typer.Option(
            help="with --partitions: partitions share population models (learned from "
            "every partition, a day late) instead of learning their own")] = False,
        config: ConfigOpt = None,
        policy_file: PolicyOpt = None,
    ) -> None:
        """Measure quality: replay, and score alerts by what happened next.

        Prequential: each alert is judged by the events after it (did the customer
        order again within --horizon?), against a simple baseline per detector.
        """
        from sia.evaluation.evaluate import evaluate as run_evaluation
        from sia.evaluation.evaluate import partitioned

        days = parse_horizon(horizon)

        def make_detectors() -> list[Detector[Any]]:
            detectors = build(config, policy_file, only)[0]
            for assignment in set_ or []:
                apply_setting(detectors, assignment)
            return detectors

        detectors, policy = make_detectors(), build(config, policy_file, only)[1]
        alerting = (partitioned(make_detectors, policy, partitions,
                                share_population=share_population) if partitions else None)
        with console.status("reading events"):
            events = load_events(events_file, rejects)
        with console.status(f"replaying {len(events):,} events"):
            report = run_evaluation(events, detectors, policy, horizon_days=days,
                                    alerting=alerting)
        report["events_file"] = str(events_file)
        if report["out_of_order"]:
            errors.print(f"{report['out_of_order']:,} events of {events_file} are more than a "
                         "week behind an event before them in the file: the file is not in "
                         "time order, so it was evaluated sorted by occurred_at",
                         highlight=False)
        if report["refused"] and report["refused"]["events"]:
            refused = report["refused"]
            errors.print(f"the engine refused {refused['events']:,} events (they are judged "
                         f"by the baselines, not learned); first: {refused['first']}",
                         highlight=False, soft_wrap=True)
        if partitions:
            report["partitions"] = partitions
            report["share_population"] = share_population
        if as_json:
            typer.echo(json.dumps(report, indent=2))
            return
        for name, r in report["detectors"].items():
            b = r["baseline"]
            console.print(
                f"[bold]{name}[/]: {r['alerts']:,} judged alerts ({r['unjudged']:,} unjudged), "
                f"precision {r['precision']}, recall {r['recall']}, median lead "
                f"{r['median_lead_days']} days, {r['alerts_per_1k_customers_per_week']} alerts "
                f"per 1k customers a week\n  baseline '{b['name']}': {b['alerts']:,} alerts, "
                f"precision {b['precision']}, recall {b['recall']}, median lead "
                f"{b['median_lead_days']} days", highlight=False)

    @app.command(rich_help_panel=MEASURE)
    def bench(
        events_file: Annotated[Path | None, typer.Option(
            "--events", help="events file (default: the full online retail dataset)")] = None,
        sample: Annotated[bool, typer.Option(
            "--sample", help="the bundled online retail sample instead (a quick run)")] = False,
        repeat: Annotated[int, typer.Option(
            min=1, max=10, help="Runs to take the best of.")] = 3,
        delivery: Annotated[bool, typer.Option(
            help="also measure detection-to-send latency at a steady event rate")] = False,
        rate: Annotated[float, typer.Option(
            help="events a second for --delivery and --http's event-to-send run")] = 200.0,
        seconds: Annotated[float, typer.Option(
            help="length of the --delivery run, and of --http's paced runs")] = 30.0,
        http: Annotated[bool, typer.Option(
            "--http", help="measure real `sia serve` processes over HTTP: events/s accepted "
            "beside the engine's, latency at half its capacity, event to send through a "
            "webhook")] = False,
        clients: Annotated[int, typer.Option(
            min=1, max=64, help="--http: concurrent clients")] = 4,
        batches: Annotated[str, typer.Option(
            help="--http: events per request to measure, one after the other")] = "100,500",
        kafka: Annotated[bool, typer.Option(
            "--kafka", help="measure through Kafka (SIA_KAFKA_BROKER): raw aiokafka, a "
            "no-op Faust agent and real sia workers, in one run")] = False,
        workers: Annotated[str, typer.Option(
            help="--kafka: worker counts to measure, one after the other")] = "1,2",
        partitions: Annotated[int | None, typer.Option(
            min=1, help="--kafka: events partitions (default SIA_KAFKA_PARTITIONS)")] = None,
        reference: Annotated[bool, typer.Option(
            help="--kafka: also measure the in-process engine on the same events")] = True,
        preview: Annotated[bool, typer.Option(
            "--preview", help="time threshold previews (a firing-threshold change: first "
            "call, another value, the same again; a policy change; a learning-parameter "
            "change) against a full replay of a fresh journal (default: the full online "
            "retail data; --sample for a quick run)")] = False,
        days: Annotated[float, typer.Option(
            min=1, help="--preview: over the journal's last days")] = 90.0,
        copies: Annotated[int, typer.Option(
            min=1, max=100, help="--preview: every customer copied this many times, with "
            "orders of their own (a customer base that many times as large; 17 copies of "
            "online retail are 514,420 events)")] = 1,
        console_pages: Annotated[bool, typer.Option(
            "--console", help="server time of each web console page (and one threshold "
            "preview) on a real `sia serve` that has learned the events (default: the full "
            "online retail data; --sample for a quick run)")] = False,
        requests: Annotated[int, typer.Option(
            min=1, max=1000, help="--console: timed requests per page, after one "
            "warm-up")] = 20,
        as_json: Annotated[bool, typer.Option("--json", help="Print the results as JSON.")]
        = False,
        config: ConfigOpt = None,
        policy_file: PolicyOpt = None,
    ) -> None:
        """Measure speed: events per second of the engine, and more with the options.

        Without options: the engine against the bare detector arithmetic. With --kafka:
        through Kafka and real workers; --http: real `sia serve` processes; --preview:
        threshold previews against a full replay; --console: the web console's pages.
        """
        from sia.bench.bench import bench as run_bench

        if http and (kafka or delivery):
            fail("--http measures its own event-to-send latency: not with --kafka or "
                 "--delivery")
        if preview and (http or kafka or delivery):
            fail("--preview measures previews alone: not with --http, --kafka or --delivery")
        if console_pages and (preview or http or kafka or delivery):
            fail("--console measures console pages alone: not with --preview, --http, "
                 "--kafka or --delivery")
        build(config, policy_file)  # fail early on a bad configuration
        if console_pages:
            events, source = _bench_events(events_file, sample)
            result = _console_run(events, config, policy_file, requests)
            result["source"] = source
            _print_result(result, as_json)
            return
        if copies > 1 and not preview:
            fail("--copies is for --preview")
        if preview:
            from sia.bench.copies import copied

            stream, source = _bench_stream(events_file, sample)
            result = _preview_run(copied(stream, copies), config, policy_file, days)
            result["source"] = source + (f", every customer copied {copies} times"
                                         if copies > 1 else "")
            _print_result(result, as_json)
            return

        def factory() -> tuple[list[Detector[Any]], Policy]:
            return build(config, policy_file)

        kafka_bench = _kafka_bench(workers, partitions, config, policy_file) if kafka else None
        sizes = _batches(batches) if http else ()
        events, source = _bench_events(events_file, sample)
        if http:
            from sia.bench.http_bench import HttpBenchOptions

            options = HttpBenchOptions(
                batches=sizes, clients=clients, repeat=repeat, paced_seconds=seconds,
                delivery_rate=rate, delivery_seconds=seconds, config=config,
                policy_file=policy_file)
            result = _http_run(events, factory, options)
            result["source"] = source
            _print_result(result, as_json)
            return
        if kafka_bench is not None:
            result = _kafka_run(events, kafka_bench, reference=reference)
            result["source"] = source
            _print_result(result, as_json)
            return
        with console.status(f"benchmarking {len(events):,} events, best of {repeat}"):
            result = run_bench(events, factory, repeat=repeat)
        if delivery:
            from sia.bench.delivery_bench import delivery_latency

            size = min(max(int(rate * seconds), 1), len(events))
            with console.status(f"delivering at {rate:g} events/s for {seconds:g} s"):
                result.update(delivery_latency(events[:-size], events[-size:], factory,
                                               rate=rate))
        result["source"] = source
        _print_result(result, as_json)


def _print_result(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            console.print(f"{key}: {value}", highlight=False)


def _bench_events(events_file: Path | None, sample: bool = False) -> tuple[list[Event], str]:
    """The events to bench and where they came from (default: full online retail;
    `sample`: the bundled sample)."""
    stream, source = _bench_stream(events_file, sample)
    with console.status("reading the events"):
        return list(stream), source


def _bench_stream(events_file: Path | None, sample: bool = False
                  ) -> tuple[Iterator[Event], str]:
    """`_bench_events` one event at a time."""
    if events_file is not None:
        if sample:
            fail("--events and --sample: choose one")
        return stream_events(events_file, Path("sia-rejects.jsonl")), str(events_file)
    if sample:
        from sia.cli.demo import sample_path

        dataset: Path | None = sample_path()
    else:
        dataset = default_online_retail()
    if dataset is None:
        fail("online retail dataset not found: pass --events FILE, --sample (the bundled "
             "sample), or set SIA_DATASETS to the folder holding "
             "online_retail/online_retail.csv.gz")
    return (parse_event(e) for e in convert(dataset)), str(dataset)


def _batches(text: str) -> tuple[int, ...]:
    """'100,500' -> (100, 500): --http's batch sizes (1 to 1,000 events a request)."""
    try:
        sizes = tuple(int(n) for n in text.split(","))
    except ValueError:
        fail(f"--batches {text!r}: use sizes separated by commas, e.g. 100,500")
    if not sizes or min(sizes) < 1 or max(sizes) > 1000:
        fail(f"--batches {text!r}: every size must be from 1 to 1,000 events")
    return sizes


def _http_run(events: list[Event], factory: Callable[[], tuple[list[Detector[Any]], Policy]],
              options: HttpBenchOptions) -> dict[str, Any]:
    """`sia bench --http`: see sia.bench.http_bench."""
    from sia.bench.http_bench import BenchFailed, run

    with console.status(f"benchmarking {len(events):,} events over HTTP") as status:
        try:
            return run(events, factory, options,
                       progress=lambda what: status.update(f"{len(events):,} events: {what}"))
        except (BenchFailed, ValueError) as exc:
            fail(str(exc))


def _preview_run(events: Iterable[Event], config: Path | None, policy_file: Path | None,
                 days: float) -> dict[str, Any]:
    """`sia bench --preview`: see sia.bench.preview_bench."""
    from sia.bench.preview_bench import run
    from sia.service.thresholds import config_from_files

    with console.status("timing previews (the events go into a journal first)"):
        try:
            return run(events, config_from_files(config, policy_file), days=days)
        except ValueError as exc:
            fail(str(exc))


def _console_run(events: list[Event], config: Path | None, policy_file: Path | None,
                 requests: int) -> dict[str, Any]:
    """`sia bench --console`: see sia.bench.console_bench."""
    from sia.bench.console_bench import ConsoleBenchOptions, run
    from sia.bench.http_bench import BenchFailed

    options = ConsoleBenchOptions(repeat=requests, config=config, policy_file=policy_file)
    with console.status(f"console pages on {len(events):,} events") as status:
        try:
            return run(events, options,
                       progress=lambda what: status.update(f"{len(events):,} events: {what}"))
        except (BenchFailed, ValueError) as exc:
            fail(str(exc))


def _kafka_bench(workers: str, partitions: int | None, config: Path | None,
                 policy_file: Path | None) -> KafkaBench:
    """The --kafka bench's set-up, after checking that the broker answers."""
    from sia.bench.kafka_bench import KafkaBench, NoBroker, check_broker
    from sia.settings import get_settings

    try:
        counts = tuple(int(n) for n in workers.split(","))
    except ValueError:
        fail(f"--workers {workers!r}: use worker counts separated by commas, e.g. 1,2")
    if not counts or min(counts) < 1:
        fail(f"--workers {workers!r}: every count must be at least 1")
    settings = get_settings()
    if partitions is not None:
        settings = settings.model_copy(update={"kafka_partitions": partitions})
    bench = KafkaBench(settings, workers=counts, config=config, policy_file=policy_file)
    try:
        asyncio.run(check_broker(bench.bootstrap, settings.kafka_broker))
    except NoBroker as exc:
        fail(str(exc))
    return bench


def _kafka_run(events: list[Event], bench: KafkaBench, *, reference: bool) -> dict[str, Any]:
    """`sia bench --kafka`: see sia.bench.kafka_bench."""
    from sia.bench.kafka_bench import BenchFailed, NoBroker, run

    with console.status(f"benchmarking {len(events):,} events through Kafka"):
        try:
            return run(events, bench, reference=reference)
        except (NoBroker, BenchFailed) as exc:
            fail(str(exc))
