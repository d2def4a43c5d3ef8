"""`streamrec bridge mqtt://BROKER`: read a running streamrec's ZeroMQ messages and publish them to MQTT."""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path
from typing import Optional

from stream.wire.mqtt import MqttBridge, parse_broker
from stream.wire.subscriber import receive

log = logging.getLogger(__name__)

USERNAME_ENV, PASSWORD_ENV = "STREAMREC_MQTT_USERNAME", "STREAMREC_MQTT_PASSWORD"


def run_bridge(url: str, endpoint: str, kiosk: Optional[str], results: bool, stop: threading.Event,
               duration: Optional[float] = None, curve: Optional[tuple[Path, Path]] = None) -> MqttBridge:
    """Bridge until `stop` or `duration`; returns the bridge (its counters) once it stopped."""
    broker = parse_broker(url, os.environ.get(USERNAME_ENV), os.environ.get(PASSWORD_ENV))
    bridge = MqttBridge(broker, kiosk or socket.gethostname(), results)
    topics = ("event/", "heartbeat") + (("result/",) if results else ())
    log.info("bridging %s to %s as kiosk %s (%s)", endpoint, broker.safe_text, bridge.kiosk,
             "events, states and results" if results else "events and states")
    bridge.start()
    try:
        for topic, payload in receive(endpoint, topics, stop=stop, duration=duration, curve=curve):
            bridge.handle(topic, payload)
    finally:
        bridge.stop()
        log.info("bridge stopped: %d messages published, %d dropped", bridge.published, bridge.dropped)
    return bridge
