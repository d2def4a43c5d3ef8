"""Events to an MQTT broker, in the topic style integrators know from Frigate:

    streamrec/<kiosk>/available         "online" (retained); "offline" when the bridge stops or dies (last will)
    streamrec/<kiosk>/<camera>/event    each event's wire JSON, QoS 1
    streamrec/<kiosk>/<camera>/state    {"state", "item"} (retained), when it changes
    streamrec/<kiosk>/<camera>/result   each result's wire JSON, QoS 0 (only with `results`)

paho's network thread does the talking; `handle` only queues, so a broker that is down or slow never slows the
caller. At most `max_queued` messages wait; beyond, and for events that cannot be queued, the message is dropped
and counted. paho reconnects by itself (1 s doubling to 30 s)."""

from __future__ import annotations

import json
import logging
import ssl
import threading
from dataclasses import dataclass, field
from typing import Any, Optional
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}
MAX_QUEUED = 1000
RECONNECT_MIN_S, RECONNECT_MAX_S = 1, 30


@dataclass(frozen=True)
class Broker:
    """Where to publish: host and port, TLS (mqtts://), and credentials (from the URL or the environment)."""

    host: str
    port: int
    tls: bool = False
    username: Optional[str] = None
    password: Optional[str] = field(default=None, repr=False)

    @property
    def safe_text(self) -> str:
        """The broker for logs: never the credentials."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"


def parse_broker(url: str, username: Optional[str] = None, password: Optional[str] = None) -> Broker:
    """mqtt://[USER[:PASS]@]HOST[:PORT] or mqtts://…; ValueError with what is wrong."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"not a broker URL ({exc}): use mqtt://HOST[:PORT] or mqtts://HOST[:PORT]") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError("not a broker URL: use mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    return Broker(parts.hostname, port or DEFAULT_PORTS[scheme], scheme == "mqtts",
                  unquote(parts.username) if parts.username else username,
                  unquote(parts.password) if parts.password else password)


class MqttBridge:
    """Publishes wire messages (topic, payload) to the broker; `start()` connects in the background."""

    def __init__(self, broker: Broker, kiosk: str, results: bool = False, max_queued: int = MAX_QUEUED,
                 client_id: str = "") -> None:
        import paho.mqtt.client as mqtt

        self.broker, self.kiosk, self.results = broker, kiosk, results
        self.prefix = f"streamrec/{kiosk}"
        self.published = 0
        self.dropped = 0
        self._states: dict[str, str] = {}
        self._lock = threading.Lock()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        self._client.max_queued_messages_set(max_queued)
        self._client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        self._client.will_set(f"{self.prefix}/available", "offline", qos=1, retain=True)
        if broker.username is not None:
            self._client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            self._client.tls_set(cert_reqs=ssl.CERT_REQUIRED)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self.connected = threading.Event()

    def start(self) -> None:
        """Connect in the background (and again after every loss) and announce `online`."""
        self._client.connect_async(self.broker.host, self.broker.port, keepalive=15)
        self._client.loop_start()

    def stop(self, timeout_s: float = 0.5) -> None:
        """Say `offline`, disconnect, and stop paho's thread."""
        if self.connected.is_set():
            self._client.publish(f"{self.prefix}/available", "offline", qos=1, retain=True).wait_for_publish(timeout_s)
        self.connected.clear()
        self._client.disconnect()
        self._client.loop_stop()

    def handle(self, topic: str, payload: dict[str, Any]) -> None:
        """Queue what this wire message becomes on the broker (never blocks)."""
        kind = payload.get("type")
        if kind == "event":
            self._publish(f"{self.prefix}/{payload.get('camera', 'unknown')}/event", payload, qos=1)
        elif kind == "heartbeat":
            for camera, entry in (payload.get("cameras") or {}).items():
                self._state(camera, {"state": entry.get("state"), "item": entry.get("item")})
        elif kind == "result" and self.results:
            self._publish(f"{self.prefix}/{payload.get('camera', 'unknown')}/result", payload, qos=0)

    def _state(self, camera: str, state: dict[str, Any]) -> None:
        text = json.dumps(state, separators=(",", ":"))
        with self._lock:
            if self._states.get(camera) == text:
                return
            self._states[camera] = text
        self._publish(f"{self.prefix}/{camera}/state", state, qos=1, retain=True)

    def _publish(self, topic: str, payload: dict[str, Any], qos: int, retain: bool = False) -> None:
        import paho.mqtt.client as mqtt

        info = self._client.publish(topic, json.dumps(payload, separators=(",", ":")), qos=qos, retain=retain)
        with self._lock:
            if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN) and (qos > 0 or info.rc == 0):
                self.published += 1  # QoS 1 waits in paho's queue while the broker is away
            else:
                self.dropped += 1

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            log.warning("MQTT broker %s refused the connection: %s", self.broker.safe_text, reason_code)
            return
        log.info("connected to MQTT broker %s as kiosk %s", self.broker.safe_text, self.kiosk)
        client.publish(f"{self.prefix}/available", "online", qos=1, retain=True)
        with self._lock:
            states = dict(self._states)
        for camera, text in states.items():  # a broker that restarted without persistence lost them
            client.publish(f"{self.prefix}/{camera}/state", text, qos=1, retain=True)
        self.connected.set()

    def _on_disconnect(self, _client, _userdata, _flags, reason_code, _properties) -> None:
        if self.connected.is_set():
            log.warning("lost the MQTT broker %s (%s); reconnecting", self.broker.safe_text, reason_code)
        self.connected.clear()
