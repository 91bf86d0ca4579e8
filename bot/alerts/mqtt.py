"""Sensor readings over MQTT (aiomqtt): one topic per sensor, JSON ``{"level_m": 7.96, "ts": …}``.

The loop reconnects with backoff; a bad payload is rejected (and logged) by the same
validation as HTTP readings, never alerted on.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

import aiomqtt

from bot.alerts.sensors import Sensors
from bot.runtime import retry_delay

log = logging.getLogger(__name__)


def broker(url: str) -> tuple[str, int, str | None, str | None]:
    """``mqtt://user:pass@host:1883`` → (host, port, user, password)."""
    parts = urlsplit(url)
    if parts.scheme not in ("mqtt", "tcp", ""):
        raise ValueError(f"MQTT_URL: unsupported scheme {parts.scheme!r} (use mqtt://)")
    return parts.hostname or "127.0.0.1", parts.port or 1883, parts.username, parts.password


class MqttReadings:
    def __init__(self, sensors: Sensors, wake: Callable[[], None], url: str) -> None:
        self.sensors = sensors
        self.wake = wake
        self.url = url
        self.topics = sensors.topics()
        self.connected = asyncio.Event()
        self.received = 0

    async def handle(self, topic: str, raw: bytes) -> None:
        sensor_id = self.topics.get(topic)
        if sensor_id is None:
            return
        self.received += 1
        try:
            payload: object = json.loads(raw)
        except ValueError:
            payload = None
        result = await asyncio.to_thread(self.sensors.ingest_reading, sensor_id, payload)
        if result.broadcast_id is not None:
            self.wake()

    async def run(self, stop: asyncio.Event) -> None:
        if not self.topics:
            return
        host, port, user, password = broker(self.url)
        failures = 0
        while not stop.is_set():
            try:
                async with aiomqtt.Client(
                    host, port, username=user, password=password, keepalive=30
                ) as client:
                    for topic in self.topics:
                        await client.subscribe(topic, qos=1)
                    self.connected.set()
                    failures = 0
                    log.info("mqtt: subscribed to %s on %s:%s", ", ".join(self.topics), host, port)
                    reader = asyncio.create_task(self._read(client))
                    stopper = asyncio.create_task(stop.wait())
                    done, _ = await asyncio.wait(
                        {reader, stopper}, return_when=asyncio.FIRST_COMPLETED
                    )
                    for t in (reader, stopper):
                        t.cancel()
                        with contextlib.suppress(asyncio.CancelledError, Exception):
                            await t
                    if reader in done and reader.exception() is not None:
                        raise reader.exception()  # type: ignore[misc]
            except aiomqtt.MqttError as exc:
                self.connected.clear()
                failures += 1
                wait = retry_delay(failures)
                log.warning("mqtt: %s; reconnecting in %.1fs", exc, wait)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)

    async def _read(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            raw = message.payload
            data = raw if isinstance(raw, bytes | bytearray) else str(raw).encode()
            try:
                await self.handle(str(message.topic), bytes(data))
            except Exception:
                log.exception("mqtt: reading on %s failed", message.topic)
