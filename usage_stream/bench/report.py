"""The benchmark's results as one JSON document and as the table printed at the end."""

from __future__ import annotations

from typing import Any

TARGET_EVENTS_PER_SECOND = 20_000
TARGET_FRESHNESS_P95 = 2.0
TARGET_BASELINE_SHARE = 0.5
TARGET_HISTORY_RATIO = 0.8
TARGET_REQUEST_P99_MS = 50.0  # at half the sustained rate
TARGET_COLLECTOR_PER_SECOND = 25_000  # one collector process, batches of 100
TARGET_COLLECTOR_US = 35.0  # CPU per event
TARGET_WORKER_US = 40.0  # over HTTP: the worker's and the server's CPU per event together
TARGET_WORKER_VS_BASELINE_CPU = 6.0  # the worker's CPU per event / the copier's, both over HTTP


def targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    sustained = report["end_to_end"]
    fresh = report["freshness"]
    ratio = report["worker_vs_baseline"]
    request_p99 = report["freshness_load"]["extra"]["latency_ms"]["p99"]
    rate = sustained["per_second"] if sustained["extra"]["lag_flat"] else 0.0
    return [
        {
            "what": "end-to-end sustained, lag flat",
            "target": f">= {TARGET_EVENTS_PER_SECOND:,} events/s",
            "target_value": TARGET_EVENTS_PER_SECOND,
            "value": round(rate),
            "met": rate >= TARGET_EVENTS_PER_SECOND,
        },
        {
            "what": "freshness p95 at half load",
            "target": f"<= {TARGET_FRESHNESS_P95:g} s",
            "value": None if fresh.get("p95") is None else round(fresh["p95"], 3),
            "met": fresh.get("p95") is not None and fresh["p95"] <= TARGET_FRESHNESS_P95,
        },
        {
            "what": "request latency p99 at half load (ms)",
            "target": f"<= {TARGET_REQUEST_P99_MS:g} ms",
            "value": round(request_p99, 1),
            "met": request_p99 <= TARGET_REQUEST_P99_MS,
        },
        {
            "what": "worker / baseline copier",
            "target": f">= {TARGET_BASELINE_SHARE:.0%}",
            "value": round(ratio, 3),
            "met": ratio >= TARGET_BASELINE_SHARE,
        },
        *_history_target(report),
        *_cost_targets(report),
    ]


def _cost_targets(report: dict[str, Any]) -> list[dict[str, Any]]:
    collector = report["collector"]
    costs = report["where_time_goes"]  # CPU µs per event, None where not measured
    transport = report["transport"]
    collector_us, worker_us = costs["collector_us"], transport["worker_http"]["total_us"]
    times = transport["worker_vs_baseline_total_http"]
    return [
        {
            "what": "collector alone, one process (events/s)",
            "target": f">= {TARGET_COLLECTOR_PER_SECOND:,}",
            "value": round(collector["per_second"]),
            "met": collector["per_second"] >= TARGET_COLLECTOR_PER_SECOND,
        },
        {
            "what": "collector CPU per event (µs)",
            "target": f"<= {TARGET_COLLECTOR_US:g}",
            "value": collector_us,
            "met": collector_us is not None and collector_us <= TARGET_COLLECTOR_US,
        },
        {
            "what": "worker CPU per event over HTTP, worker + server (µs)",
            "target": f"<= {TARGET_WORKER_US:g}",
            "value": worker_us,
            "met": worker_us is not None and worker_us <= TARGET_WORKER_US,
        },
        {
            "what": "worker CPU per event / the copier's, both over HTTP (+ server each)",
            "target": f"<= {TARGET_WORKER_VS_BASELINE_CPU:g}x",
            "value": times,
            "met": times is not None and times <= TARGET_WORKER_VS_BASELINE_CPU,
        },
    ]


def _history_target(report: dict[str, Any]) -> list[dict[str, Any]]:
    history = report.get("history")
    if history is None:
        return []
    ratio = history["worker_ratio"]
    return [
        {
            "what": f"worker with {history['stored_events']:,} stored events / on empty tables",
            "target": f">= {TARGET_HISTORY_RATIO:.0%}",
            "value": ratio,
            "met": ratio >= TARGET_HISTORY_RATIO,
        }
    ]


def _sink_rows(report: dict[str, Any]) -> list[str]:
    sink = report.get("sink")
    if sink is None:
        return []
    return [
        f"| the collector's Kafka sink alone (encoding, kafka-python's send and acks)"
        f" | {_rate(sink)} | {_per_cpu(sink)} |"
    ]


def _mib(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def _rate(phase: dict[str, Any]) -> str:
    return f"{phase['per_second']:,.0f} ev/s"


def _per_cpu(phase: dict[str, Any]) -> str:
    value = phase["extra"].get("events_per_cpu_second", 0.0)
    return f"{value:,.0f}"


def table(report: dict[str, Any]) -> str:
    """A Markdown table (it reads in a terminal and pastes into the README as it is)."""
    m, o = report["machine"], report["options"]
    e2e, peak, fresh = report["end_to_end"], report["end_to_end_max"], report["freshness"]
    lines = [
        f"usage-stream bench: {m['cpus']} CPUs, load average {m['load_before'][0]:.2f} before"
        f" / {m['load_after'][0]:.2f} after; {o['collectors']} collector process(es),"
        f" {o['partitions']} partitions, worker batches of {o['sink_batch_size']}"
        f" / {o['sink_batch_seconds']} s, {o['duration']:.0f} s per load phase,"
        f" Kafka compression {o.get('compression', 'zstd')}",
        "",
        "| measure | result | events per CPU-second |",
        "| --- | --- | --- |",
        f"| end-to-end flat out (HTTP → ClickHouse) | {_rate(peak)} accepted,"
        f" {peak['extra']['committed_per_second']:,.0f} ev/s committed | |",
        f"| end-to-end sustained ({'lag flat' if e2e['extra']['lag_flat'] else 'lag GROWING'})"
        f" | {_rate(e2e)} | {_per_cpu(e2e)} |",
        f"| freshness p50 / p95 / p99 at {fresh['rate']:,.0f} ev/s"
        f" | {_seconds(fresh.get('p50'))} / {_seconds(fresh.get('p95'))}"
        f" / {_seconds(fresh.get('p99'))} (max {_seconds(fresh.get('max'))});"
        f" requests p99 {report['freshness_load']['extra']['latency_ms']['p99']:.0f} ms | |",
        f"| collector alone (batches of {o['batch']}) | {_rate(report['collector'])}"
        f" (p99 {report['collector']['extra']['latency_ms']['p99']:.0f} ms)"
        f" | {_per_cpu(report['collector'])} |",
        *_sink_rows(report),
        f"| worker alone over HTTP (pre-loaded topic) | {_rate(report['worker'])}"
        f" | {_per_cpu(report['worker'])} |",
        f"| baseline copier over HTTP (same topic, aiokafka → the server, no processing)"
        f" | {_rate(report['baseline'])} | {_per_cpu(report['baseline'])} |",
        f"| worker / baseline | {report['worker_vs_baseline']:.0%} | |",
        *_scale_rows(report),
        *_history_rows(report),
        f"| our processing without faust (aiokafka batches, activation aside)"
        f" | {_rate(report['breakdown_process'])} | {_per_cpu(report['breakdown_process'])} |",
        f"| faust alone (the worker's app, a handler that only commits each batch)"
        f" | {_rate(report['breakdown_faust'])} | {_per_cpu(report['breakdown_faust'])} |",
        "",
        *_transport_rows(report),
        "",
        "| process | peak RSS | CPU seconds |",
        "| --- | --- | --- |",
    ]
    for name, usage in report["processes"].items():
        lines.append(f"| {name} | {_mib(usage['peak_rss_bytes'])} | {usage['cpu_seconds']:,.1f} |")
    lines += ["", "| target | wanted | got | |", "| --- | --- | --- | --- |"]
    for t in report["targets"]:
        lines.append(
            f"| {t['what']} | {t['target']} | {t['value']} | {'met' if t['met'] else 'MISSED'} |"
        )
    costs = report["where_time_goes"]
    lines += [
        "",
        "CPU per event (µs): "
        + ", ".join(f"{k.removesuffix('_us')} {v}" for k, v in costs.items()),
        f"cores the end-to-end target takes at these costs: {report['cores_for_target']}",
    ]
    for name, profile in report.get("profiles", {}).items():
        top = list(profile.get("self", {}).items())[:8]
        lines.append(
            f"hot spots of the {name} (py-spy, share of busy samples, self): "
            + ", ".join(f"{frame} {share:.0%}" for frame, share in top)
        )
    exact = report["exactness"]
    lines.append(
        "exactness: "
        + ("every id stored once and metered once" if exact["exact"] else "NOT EXACT")
        + "; "
        + ", ".join(
            f"{t}: {f['stored']:,} stored of {f['accepted']:,} accepted"
            for t, f in exact["tenants"].items()
        )
    )
    return "\n".join(lines)


def _us(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def _times(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def _transport_rows(report: dict[str, Any]) -> list[str]:
    """CPU per event of the worker and the copier over HTTP: the process, the server and what
    was spent for the consumer in all."""
    t = report["transport"]
    rows = [
        "| same topic, CPU per event (µs) | events/s | its process | ClickHouse server"
        " | total | total / copier's |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for key, what, times in (
        ("worker_http", "worker over HTTP", t["worker_vs_baseline_total_http"]),
        ("baseline_http", "baseline copier over HTTP", None),
    ):
        c = t[key]
        rows.append(
            f"| {what} | {c['per_second']:,} | {_us(c['process_us'])} | {_us(c['server_us'])}"
            f" | {_us(c['total_us'])} | {_times(times)} |"
        )
    scale = report.get("scale")
    if scale:
        rows.append(
            f"| two workers over HTTP, both processes | {scale['two_workers_per_second']:,}"
            f" | {_us(scale['process_us'])} | {_us(scale['server_us'])}"
            f" | {_us(scale['total_us'])} | |"
        )
    return rows


def _scale_rows(report: dict[str, Any]) -> list[str]:
    scale = report.get("scale")
    if not scale:
        return []
    since = "" if scale["after_all_ready"] else ", measured from the first commit"
    return [
        f"| two workers, one group, one database ({scale['cpus']} CPUs, shared with the broker"
        f" and the server{since}) | {scale['two_workers_per_second']:,} ev/s"
        f" ({scale['two_workers_vs_one']:.2f}x one worker) | {_per_cpu(report['two_workers'])} |"
    ]


def _history_rows(report: dict[str, Any]) -> list[str]:
    if "worker_history" not in report:
        return []
    found, history = report["worker_history"], report["history"]
    return [
        f"| worker alone with {history['stored_events']:,} events stored"
        f" (preloaded in {history['preload_seconds']:.0f} s) | {_rate(found)}"
        f" ({history['worker_ratio']:.0%} of its empty-table rate) | {_per_cpu(found)} |"
    ]


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f} s"
