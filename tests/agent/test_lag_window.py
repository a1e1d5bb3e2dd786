"""The lag window keeps the last `size` readings in fixed arrays (no object per reading for the
collector to walk) and answers "the lags since t" exactly as the deque it replaced did."""

from __future__ import annotations

import gc

from introspect.agent.collectors.loop import LagWindow


def test_before_it_fills_it_holds_every_reading() -> None:
    window = LagWindow(size=8)
    for i in range(5):
        window.append(100.0 + i, i / 10)
    assert window.lags_since(0.0) == [0.0, 0.1, 0.2, 0.3, 0.4]
    assert window.lags_since(102.0) == [0.2, 0.3, 0.4]


def test_once_full_the_oldest_readings_give_way() -> None:
    window = LagWindow(size=8)
    for i in range(20):
        window.append(100.0 + i, float(i))
    assert sorted(window.lags_since(0.0)) == [float(i) for i in range(12, 20)]
    assert sorted(window.lags_since(117.0)) == [17.0, 18.0, 19.0]
    assert window.lags_since(200.0) == []


def test_every_cutoff_at_every_fill_gives_the_readings_since_it_oldest_first() -> None:
    # (the window bisects its two sorted runs; the truth here is a scan of every reading)
    size = 8
    for appended in range(1, 3 * size):
        window = LagWindow(size=size)
        readings = [(100.0 + i // 2, float(i)) for i in range(appended)]  # equal times too
        for when, lag in readings:
            window.append(when, lag)
        kept = readings[-size:]
        for cutoff in [99.0, *(when for when, _ in kept), *(when + 0.5 for when, _ in kept)]:
            assert window.lags_since(cutoff) == [lag for when, lag in kept if when >= cutoff]


def test_readings_are_not_objects_the_collector_tracks() -> None:
    window = LagWindow(size=4096)
    before = len(gc.get_objects())
    for i in range(10_000):
        window.append(float(i), 0.001)
    assert len(gc.get_objects()) - before < 10  # a deque of tuples added ~4,096


def test_the_probe_fills_the_window_on_a_real_loop() -> None:
    import asyncio

    from introspect.agent.collectors.loop import LoopCollector

    async def main() -> tuple[int, int, tuple[float, float, float]]:
        probe = LoopCollector(0.01)
        probe.attach(asyncio.get_running_loop())
        for _ in range(500):  # poll with a deadline: 5 s
            if probe.beats >= 5:
                break
            await asyncio.sleep(0.01)
        stats = probe.window_stats(60.0)
        probe.detach()
        return probe.beats, len(probe._window.lags_since(0.0)), stats

    beats, kept, (p50, p99, worst) = asyncio.run(main())
    assert beats >= 5 and kept == beats
    assert 0.0 <= p50 <= p99 <= worst
