"""Events to MQTT, against a real mosquitto broker on loopback: once per event_id, retained state and availability
for late subscribers, a broker restart, credentials never logged."""

import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import zmq

from stream.wire.mqtt import MqttBridge, parse_broker
from tests.conftest import run_cli
from tests.fakes import wait_for

mqtt = pytest.importorskip("paho.mqtt.client")
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
pytestmark = pytest.mark.skipif(not Path(MOSQUITTO).exists(), reason="mosquitto is not installed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Broker:
    """mosquitto on a loopback port, anonymous, no persistence; stop() and start() again on the same port."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
        self.process = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)
        assert wait_for(self._accepts, 10), "mosquitto did not start"

    def _accepts(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            return True
        except OSError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


@pytest.fixture
def broker(tmp_path):
    running = Broker(tmp_path)
    yield running
    running.stop()


class Listener:
    """A paho subscriber on streamrec/#, collecting (topic, payload, retained)."""

    def __init__(self, port: int) -> None:
        self.messages: list[tuple[str, str, bool]] = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        self.client.on_message = lambda _c, _u, m: self.messages.append((m.topic, m.payload.decode(), m.retain))
        self.client.on_connect = lambda c, *_: c.subscribe("streamrec/#", qos=1)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def on(self, topic: str) -> list[str]:
        return [payload for t, payload, _r in self.messages if t == topic]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def event(event_id: str, camera: str = "cam0", kind: str = "item_present") -> dict:
    return {"v": 1, "type": "event", "seq": 1, "ts": time.time(), "boot": "b", "camera": camera, "event": kind,
            "event_id": event_id, "label": "cola", "index": 1, "score": 0.9, "frames": 5}


def heartbeat(state: str, item) -> dict:
    return {"v": 1, "type": "heartbeat", "seq": 2, "ts": time.time(), "boot": "b", "uptime_s": 1.0,
            "cameras": {"cam0": {"state": state, "captured": 1, "dropped": 0, "classified": 1, "fps": 30.0,
                                 "item": item}}}


def test_events_arrive_once_each_and_late_subscribers_get_state_and_availability(broker):
    bridge = MqttBridge(parse_broker(f"mqtt://127.0.0.1:{broker.port}"), "lane1")
    bridge.start()
    try:
        assert bridge.connected.wait(10)
        early = Listener(broker.port)
        time.sleep(0.3)
        for index in range(5):
            bridge.handle("event/cam0", event(f"e{index}"))
        for _ in range(3):  # the same state three times: published once
            bridge.handle("heartbeat", heartbeat("streaming", "cola"))
        assert wait_for(lambda: len(early.on("streamrec/lane1/cam0/event")) == 5, 10)
        late = Listener(broker.port)
        assert wait_for(lambda: late.on("streamrec/lane1/cam0/state") and late.on("streamrec/lane1/available"), 10)
    finally:
        bridge.stop()
    ids = [json.loads(p)["event_id"] for p in early.on("streamrec/lane1/cam0/event")]
    assert ids == [f"e{i}" for i in range(5)]
    assert json.loads(late.on("streamrec/lane1/cam0/state")[-1]) == {"state": "streaming", "item": "cola"}
    assert late.on("streamrec/lane1/available")[0] == "online" and early.on("streamrec/lane1/cam0/state") == [
        '{"state":"streaming","item":"cola"}']
    assert wait_for(lambda: early.on("streamrec/lane1/available")[-1:] == ["offline"], 5)
    early.close()
    late.close()
    assert bridge.published == 6 and bridge.dropped == 0


def test_a_broker_restart_loses_no_event_and_events_while_it_is_down_wait_for_it(broker):
    bridge = MqttBridge(parse_broker(f"mqtt://127.0.0.1:{broker.port}"), "lane2")
    bridge.start()
    try:
        assert bridge.connected.wait(10)
        before = Listener(broker.port)
        time.sleep(0.3)
        for index in range(3):
            bridge.handle("event/cam0", event(f"up{index}"))
        assert wait_for(lambda: len(before.on("streamrec/lane2/cam0/event")) == 3, 10)
        before.close()
        broker.stop()
        assert wait_for(lambda: not bridge.connected.is_set(), 10)
        started = time.monotonic()
        for index in range(3):
            bridge.handle("event/cam0", event(f"down{index}"))  # never blocks while the broker is away
        assert time.monotonic() - started < 0.5
        broker.start()
        after = Listener(broker.port)
        assert bridge.connected.wait(40)
        wait_for(lambda: len(after.on("streamrec/lane2/cam0/event")) >= 3, 10)
    finally:
        bridge.stop()
    delivered = {json.loads(p)["event_id"] for p in after.on("streamrec/lane2/cam0/event")}
    print(f"delivered after the restart: {sorted(delivered)}, dropped: {bridge.dropped}")
    assert {f"down{i}" for i in range(3)} <= delivered and bridge.dropped == 0  # QoS 1 waited in paho's queue
    assert after.on("streamrec/lane2/available")[:1] == ["online"]
    after.close()


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path):
    bridge = MqttBridge(parse_broker(f"mqtt://127.0.0.1:{free_port()}"), "lane3", results=True, max_queued=5)
    for index in range(20):
        bridge.handle("event/cam0", event(f"e{index}"))
        bridge.handle("result/cam0", {"type": "result", "camera": "cam0"})
    assert bridge.published == 5 and bridge.dropped == 35


def test_broker_urls():
    assert parse_broker("mqtt://10.0.0.5").safe_text == "mqtt://10.0.0.5:1883"
    secure = parse_broker("mqtts://user:p%40ss@broker.local")
    assert (secure.port, secure.tls, secure.username, secure.password) == (8883, True, "user", "p@ss")
    assert "p@ss" not in repr(secure) and "p@ss" not in secure.safe_text
    with pytest.raises(ValueError, match="mqtt://HOST"):
        parse_broker("http://broker")


def test_the_bridge_command_forwards_a_publishers_events_without_logging_credentials(broker):
    context = zmq.Context.instance()
    publisher = context.socket(zmq.PUB)
    port = publisher.bind_to_random_port("tcp://127.0.0.1")
    listener = Listener(broker.port)
    stop = threading.Event()

    def publish() -> None:
        index = 0
        while not stop.is_set():
            publisher.send_multipart([b"event/cam0", json.dumps(event(f"cli{index}")).encode()])
            publisher.send_multipart([b"heartbeat", json.dumps(heartbeat("streaming", None)).encode()])
            index += 1
            time.sleep(0.2)

    sender = threading.Thread(target=publish, daemon=True)
    sender.start()
    try:
        done = run_cli("bridge", f"mqtt://till:hunter2@127.0.0.1:{broker.port}", "--endpoint",
                       f"tcp://127.0.0.1:{port}", "--kiosk", "k9", "--duration", "4")
    finally:
        stop.set()
        sender.join(2)
        publisher.close(0)
    assert done.returncode == 0, done.stderr
    assert listener.on("streamrec/k9/cam0/event") and listener.on("streamrec/k9/cam0/state")
    assert listener.on("streamrec/k9/available")[-1:] == ["offline"]
    assert "hunter2" not in done.stderr and "bridge stopped" in done.stderr
    listener.close()
    refused = run_cli("bridge", "broker.local")
    assert refused.returncode == 2 and "mqtt://HOST" in refused.stderr


def test_run_with_an_mqtt_table_publishes_camera_states_and_availability(broker, tiny_bundle, tmp_path):
    config = tmp_path / "c.toml"
    config.write_text(f'[[cameras]]\nid = "lane"\nsource = "synthetic:lane"\n[model]\nspec = "{tiny_bundle}"\n'
                      f'precision = "fp32"\n[publisher]\nendpoint = "tcp://127.0.0.1:{free_port()}"\n'
                      f'[mqtt]\nbroker = "mqtt://127.0.0.1:{broker.port}"\nkiosk = "till-4"\nusername = "till"\n'
                      f'password = "hunter2-secret"\n')
    listener = Listener(broker.port)
    done = run_cli("run", "--config", str(config), "--headless", "--duration", "6",
                   env={**os.environ, "STREAMREC_CACHE_DIR": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr
    assert wait_for(lambda: listener.on("streamrec/till-4/available")[-1:] == ["offline"], 5)
    states = [json.loads(p) for p in listener.on("streamrec/till-4/lane/state")]
    assert states and states[-1]["state"] in ("streaming", "stopped") and listener.on("streamrec/till-4/available")[0] == "online"
    assert "hunter2" not in done.stderr and "connected to MQTT broker" in done.stderr
    listener.close()


def test_mqtt_config_is_checked_up_front():
    from config.loader import ConfigError
    from tests.conftest import make_config

    for broker, problem in (("http://x", "mqtt://HOST"), ("mqtt://u:p@x", "mqtt.username")):
        with pytest.raises((ConfigError, ValueError), match=problem.replace(".", r"\.")):
            make_config([{"id": "c", "source": "synthetic"}], mqtt={"broker": broker})
