"""Read a streamrec publisher's ZeroMQ messages and publish them to MQTT: `streamrec bridge mqtt://BROKER`, and
`[mqtt]` inside `streamrec run` (a thread reading the run's own publisher)."""

from __future__ import annotations

import logging
import os
import socket
import threading
from pathlib import Path
from typing import Optional

from config.schema import MqttConfig
from stream.wire.mqtt import MqttBridge, parse_broker
from stream.wire.subscriber import receive

log = logging.getLogger(__name__)

USERNAME_ENV, PASSWORD_ENV = "STREAMREC_MQTT_USERNAME", "STREAMREC_MQTT_PASSWORD"


def run_bridge(url: str, endpoint: str, kiosk: Optional[str], results: bool, stop: threading.Event,
               duration: Optional[float] = None, curve: Optional[tuple[Path, Path]] = None,
               username: Optional[str] = None, password: Optional[str] = None) -> MqttBridge:
    """Bridge until `stop` or `duration`; returns the bridge (its counters) once it stopped. Credentials: the URL's,
    else `username`/`password`, else the environment's."""
    broker = parse_broker(url, username or os.environ.get(USERNAME_ENV), password or os.environ.get(PASSWORD_ENV))
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


class BridgeThread(threading.Thread):
    """`[mqtt]` inside `streamrec run`: run_bridge on the run's own publisher until `stop`."""

    def __init__(self, config: MqttConfig, endpoint: str, stop: threading.Event) -> None:
        super().__init__(name="mqtt-bridge", daemon=True)
        self._config, self._endpoint, self._stop_event = config, endpoint, stop

    def run(self) -> None:
        config = self._config
        password = config.password.get_secret_value() if config.password is not None else None
        try:
            run_bridge(config.broker, self._endpoint, config.kiosk, config.results, self._stop_event,
                       username=config.username, password=password)
        except ImportError:
            log.error("mqtt.broker is set but paho-mqtt is missing: pip install 'streamrec[mqtt]'; no MQTT this run")
        except Exception:  # the pipeline goes on without MQTT
            log.exception("the MQTT bridge failed; the pipeline goes on without it")
