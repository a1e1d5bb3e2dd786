"""Story "one gen_server was the bottleneck" (seed 000).

A single consumer task forwards call-signalling messages to the media gateway, one at a time.
Three producers feed its unbounded mailbox (`MediaGateway.inbox`). During the load spike they
outpace it and the mailbox grows steadily; when the spike ends it drains. Next to it, recording
chunks go through a bounded queue (`MediaGateway.upload_queue`) that saturates during the spike:
its producers wait blocked in `Queue.put`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass

from introspect.demo.runtime import Pacer, StoryContext
from introspect.demo.schedule import Phase

STORY = "bottleneck"
SIGNALLING_PRODUCERS = 3
RECORDING_PRODUCERS = 4
UPLOAD_QUEUE_SIZE = 20

# Demo seconds between two messages of one producer: 3 producers make 6 msg/s normally and
# 30 msg/s in the spike; the consumer forwards ~20 msg/s, so the mailbox grows ~10/s.
SIGNALLING_INTERVAL = 0.5
SIGNALLING_SPIKE_INTERVAL = 0.1
GATEWAY_ROUND_TRIP = 0.05
FORWARD_CPU_SECONDS = 0.0003  # real CPU per message: the consumer is busy, not only waiting

RECORDING_INTERVAL = 2.0
RECORDING_SPIKE_INTERVAL = 0.1
UPLOAD_SECONDS = 0.1

SPIKE_STARTS = 10.0
SPIKE_ENDS = 25.0


@dataclass(frozen=True)
class SignallingMessage:
    call_id: int
    kind: str  # "invite", "ack", "bye"
    producer: int


class MediaGateway:
    def __init__(self, ctx: StoryContext) -> None:
        self.ctx = ctx
        # The single consumer's mailbox: unbounded, like an Erlang process mailbox.
        self.inbox: asyncio.Queue[SignallingMessage] = asyncio.Queue()
        # Recording chunks waiting for upload: bounded, so producers block when it is full.
        self.upload_queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=UPLOAD_QUEUE_SIZE)
        self.spike = False
        self.forwarded = 0
        self.uploaded = 0
        self._call_ids = itertools.count(1)

    def start(self) -> None:
        for producer in range(1, SIGNALLING_PRODUCERS + 1):
            self.ctx.spawn(gateway_producer(self, producer), f"gateway-producer-{producer}")
        self.ctx.spawn(gateway_consumer(self), "media-gateway-consumer")
        for producer in range(1, RECORDING_PRODUCERS + 1):
            self.ctx.spawn(recording_producer(self, producer), f"recording-producer-{producer}")
        self.ctx.spawn(recording_uploader(self), "recording-uploader")

    def start_spike(self) -> None:
        self.spike = True

    def end_spike(self) -> None:
        self.spike = False

    def next_call_id(self) -> int:
        return next(self._call_ids)

    def phases(self) -> list[Phase]:
        return [
            Phase(
                SPIKE_STARTS,
                STORY,
                "load spike: producers outpace gateway_consumer, inbox grows, "
                "upload_queue saturates",
                self.start_spike,
            ),
            Phase(SPIKE_ENDS, STORY, "load spike over: inbox drains", self.end_spike),
        ]


async def gateway_producer(gateway: MediaGateway, producer: int) -> None:
    """A call-signalling session: sends a message to the gateway consumer every interval."""
    kinds = itertools.cycle(("invite", "ack", "bye"))
    pacer = Pacer(gateway.ctx.clock)
    while True:
        message = SignallingMessage(gateway.next_call_id(), next(kinds), producer)
        gateway.inbox.put_nowait(message)
        await pacer.tick(SIGNALLING_SPIKE_INTERVAL if gateway.spike else SIGNALLING_INTERVAL)


async def gateway_consumer(gateway: MediaGateway) -> None:
    """The bottleneck: one task forwards every message to the media gateway, in order."""
    pacer = Pacer(gateway.ctx.clock)
    while True:
        message = await gateway.inbox.get()
        encode_for_gateway(message)
        await pacer.tick(GATEWAY_ROUND_TRIP)  # waiting for the gateway's reply
        gateway.forwarded += 1
        gateway.inbox.task_done()


def encode_for_gateway(message: SignallingMessage) -> bytes:
    """A little real CPU per message, so the consumer's busy share is visible."""
    payload = f"{message.kind} call={message.call_id} from={message.producer}".encode()
    deadline = time.perf_counter() + FORWARD_CPU_SECONDS
    while time.perf_counter() < deadline:
        payload = payload[1:] + payload[:1]
    return payload


async def recording_producer(gateway: MediaGateway, producer: int) -> None:
    """Records a call: puts a chunk in the bounded upload queue (blocks while it is full)."""
    chunk = bytes(1024)
    pacer = Pacer(gateway.ctx.clock)
    while True:
        await gateway.upload_queue.put(chunk)
        await pacer.tick(RECORDING_SPIKE_INTERVAL if gateway.spike else RECORDING_INTERVAL)


async def recording_uploader(gateway: MediaGateway) -> None:
    """Uploads recording chunks one at a time: ~10 chunks/s, fewer than the spike produces."""
    pacer = Pacer(gateway.ctx.clock)
    while True:
        await gateway.upload_queue.get()
        await pacer.tick(UPLOAD_SECONDS)
        gateway.uploaded += 1
        gateway.upload_queue.task_done()

