"""`python_queue_owner_info`: the task kinds that consume and produce each queue, as labels of
an info-style series on /metrics and over OTLP — against real programs that know which task
kind does what (docs/metrics.md, "Who consumes a queue")."""

from __future__ import annotations

from tests.agent.test_queue_owners import PROGRAM
from tests.metrics.support import (
    AgentProcess,
    OtlpReceiver,
    families,
    metrics_url,
    point_attributes,
    scrape,
    wait_until,
)

OWNER = "python_queue_owner_info"

# One queue, five kinds of consumer all waiting in `get` (seen from the queue's getters).
CROWDED = """
    import asyncio

    async def c1(q): await q.get()
    async def c2(q): await q.get()
    async def c3(q): await q.get()
    async def c4(q): await q.get()
    async def c5(q): await q.get()

    async def main():
        crowded = asyncio.Queue()
        waiting = [asyncio.create_task(c(crowded)) for c in (c1, c2, c3, c4, c5)]
        print("running", flush=True)
        await asyncio.gather(*waiting)
    asyncio.run(main())
"""


def _owners(body: str) -> dict[tuple[str, str], set[str]]:
    """(queue label, role) -> kinds, from one /metrics body."""
    found = families(body).get(OWNER)
    out: dict[tuple[str, str], set[str]] = {}
    for sample in found.samples if found is not None else ():
        assert sample.value == 1, sample
        assert sample.labels["type"] == "asyncio", sample
        out.setdefault((sample.labels["queue"], sample.labels["role"]), set()).add(
            sample.labels["kind"])
    return out


def test_metrics_name_each_queues_consumer_and_producers() -> None:
    with AgentProcess.script(PROGRAM, agent_args=["--metrics-port", "0"]) as proc:
        proc.wait_for_line("running")
        url = metrics_url(proc)

        def queue_of(owners: dict, consumer: str) -> str | None:
            return next((q for (q, role), kinds in owners.items()
                         if role == "consumer" and consumer in kinds), None)

        def both_queues_owned() -> tuple[str, dict] | None:
            body, _ = scrape(url)
            owners = _owners(body)
            inbox = queue_of(owners, "__main__.signal_gateway")
            outbox = queue_of(owners, "__main__.archiver")
            if inbox is None or outbox is None or len(owners.get((inbox, "producer"), ())) < 2 \
                    or not owners.get((outbox, "producer")):
                return None
            return body, owners

        body, owners = wait_until(both_queues_owned, timeout=30, interval=0.3,
                                  message="owner series of both queues")
    inbox = queue_of(owners, "__main__.signal_gateway")
    outbox = queue_of(owners, "__main__.archiver")
    assert inbox != outbox
    # the queue label is the one python_queue_length carries: the creation site, file:line
    # relative to the program's directory (stable across deploys), not an absolute path
    assert inbox.startswith("app.py:") and outbox.startswith("app.py:"), (inbox, outbox)
    assert owners[(inbox, "consumer")] == {"__main__.signal_gateway"}
    assert owners[(inbox, "producer")] == {"__main__.sensor", "__main__.operator"}
    assert owners[(outbox, "consumer")] == {"__main__.archiver"}
    assert owners[(outbox, "producer")] == {"__main__.signal_gateway"}
    lengths = {s.labels["queue"]: s.labels["type"]
               for s in families(body)["python_queue_length"].samples}
    assert lengths[inbox] == "asyncio" and lengths[outbox] == "asyncio"  # joinable on both


def test_owner_series_are_capped_per_queue_and_role_and_can_be_turned_off() -> None:
    with AgentProcess.script(CROWDED, agent_args=["--metrics-port", "0"]) as proc:
        proc.wait_for_line("running")
        url = metrics_url(proc)
        # The snapshot knows all five consumers (the TUI shows them) ...
        wait_until(lambda: any(len(q.consumers) == 5 for q in proc.snapshot().queues),
                   timeout=30, interval=0.3, message="five consumer kinds seen")
        body, _ = scrape(url)
    # ... the metric exports the first three: a bounded number of series per queue.
    consumers = [kinds for (_q, role), kinds in _owners(body).items() if role == "consumer"]
    assert len(consumers) == 1 and len(consumers[0]) == 3, consumers
    assert consumers[0] <= {f"__main__.c{i}" for i in range(1, 6)}

    with AgentProcess.script(CROWDED, agent_args=["--metrics-port", "0"],
                             env={"INTROSPECT_QUEUE_OWNER_METRIC": "0"}) as proc:
        proc.wait_for_line("running")
        url = metrics_url(proc)
        wait_until(lambda: any(len(q.consumers) == 5 for q in proc.snapshot().queues),
                   timeout=30, interval=0.3, message="five consumer kinds seen")
        body, _ = scrape(url)
    assert OWNER not in families(body)  # the family is left out, not exported empty
    assert "python_queue_length" in families(body)


def test_otlp_exports_the_owner_attributes() -> None:
    env = {"OTEL_METRIC_EXPORT_INTERVAL": "200"}
    with OtlpReceiver() as receiver, AgentProcess.script(
            PROGRAM, agent_args=["--otlp"],
            env={**env, "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint}) as proc:
        proc.wait_for_line("running")

        def inbox_consumer() -> dict | None:
            metric = receiver.metrics().get("python.queue.owner")
            points = [point_attributes(p) for p in metric.gauge.data_points] if metric else []
            return next((p for p in points if p.get("kind") == "__main__.signal_gateway"
                         and p.get("role") == "consumer"), None)

        point = wait_until(inbox_consumer, timeout=30, interval=0.2,
                           message="the inbox's consumer over OTLP")
    assert point["type"] == "asyncio" and point["queue"].startswith("app.py:"), point
