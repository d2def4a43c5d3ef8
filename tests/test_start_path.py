"""The start path as a process: serve at once, build the faster path in the background and swap to it without a
gap; caches that cannot stop a start (zeroed, killed mid-build); reload by SIGHUP and POST /api/reload."""

import dataclasses
import os
import random
import shutil
import signal
import time
from pathlib import Path

import pytest

from inference.backends.choice import Choice, why_unavailable
from inference.bundle import load_bundle, save_bundle
from tests.conftest import cli_env
from tests.fakes import Subscriber
from tests.test_cli_lifecycle import RunningCli, free_port

pytestmark = pytest.mark.skipif(bool(why_unavailable(Choice("torch", "int8"))), reason="torch int8 unavailable here")


def write_config(path: Path, bundle: Path, port: int, precision: str = "int8", http_port: int = 0) -> Path:
    http = f"[http]\nenabled = true\nlisten = \"127.0.0.1:{http_port}\"\n" if http_port else ""
    path.write_text(
        "[[cameras]]\nid = \"lane\"\nsource = \"synthetic:lane\"\nfps = 30\n"
        "[[cameras]]\nid = \"door\"\nsource = \"synthetic\"\nfps = 30\n"
        f"[model]\nspec = \"{bundle}\"\nbackend = \"torch\"\nprecision = \"{precision}\"\n"
        f"[publisher]\nendpoint = \"tcp://127.0.0.1:{port}\"\nheartbeat_interval_s = 0.2\n{http}")
    return path


class Service:
    """`streamrec run --config CONFIG` with its own cache, and a subscriber on its endpoint."""

    def __init__(self, config: Path, cache: Path, port: int, *extra: str) -> None:
        self.run = RunningCli("run", "--headless", "--config", str(config), *extra,
                              env=cli_env(STREAMREC_CACHE_DIR=str(cache)))
        self.subscriber = Subscriber(f"tcp://127.0.0.1:{port}")

    def collect(self, done, timeout_s: float) -> list[tuple[str, dict]]:
        return self.subscriber.collect_until(done, timeout_s)

    def log(self) -> str:
        return "".join(self.run.lines)

    def finish(self, timeout_s: float = 60) -> int:
        try:
            return self.run.process.wait(timeout_s)
        finally:
            self.close()

    def close(self) -> None:
        self.subscriber.close()
        self.run.stop()


def models_in_heartbeats(messages) -> list[dict]:
    return [payload["model"] for _topic, payload in messages if payload["type"] == "heartbeat"]


def assert_no_seq_gap(messages) -> None:
    seqs = [payload["seq"] for _topic, payload in messages]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "a gap in seq"
    assert len({payload["boot"] for _topic, payload in messages}) == 1


@pytest.fixture(scope="module")
def cold_start(tiny_bundle, tmp_path_factory):
    """A first start of the tiny bundle with torch int8 on an empty cache, until the package took over."""
    root = tmp_path_factory.mktemp("cold")
    port = free_port()
    service = Service(write_config(root / "c.toml", tiny_bundle, port), root / "cache", port, "--duration", "240")
    try:
        messages = service.collect(lambda m: any(h["precision"] == "int8" and not h["optimizing"]
                                                 for h in models_in_heartbeats(m)), 200)
        messages = service.collect(lambda m: len(m) > len(messages) + 20, 10)
    finally:
        service.run.process.send_signal(signal.SIGTERM)
        code = service.finish()
    return messages, service.log(), code, root / "cache"


@pytest.mark.slow
def test_a_cold_start_serves_at_once_then_swaps_to_the_int8_package_without_a_gap(cold_start):
    messages, log, code, _cache = cold_start
    assert code == 0, log
    models = models_in_heartbeats(messages)
    assert models[0]["precision"] == "fp32" and models[0]["optimizing"] and models[0]["state"] == "ready", models[0]
    assert models[-1] == {**models[-1], "backend": "torch", "precision": "int8", "optimizing": False}
    results = [payload for _topic, payload in messages if payload["type"] == "result"]
    assert {r["model"] for r in results} == {models[0]["id"]} and len(results) > 20
    assert_no_seq_gap(messages)
    assert "in the background" in log and "now runs on torch int8" in log and "Traceback" not in log


@pytest.mark.slow
def test_a_warm_start_loads_the_package_ready_made(cold_start, tiny_bundle, tmp_path):
    _messages, _log, _code, cache = cold_start
    port = free_port()
    service = Service(write_config(tmp_path / "c.toml", tiny_bundle, port), cache, port, "--duration", "6")
    messages = service.collect(lambda m: models_in_heartbeats(m) and any(p["type"] == "result" for _t, p in m), 30)
    code = service.finish()
    assert code == 0, service.log()
    first = models_in_heartbeats(messages)[0]
    assert (first["precision"], first["optimizing"]) == ("int8", False), first
    assert "building" not in service.log() and "AOTInductor package" in service.log()


@pytest.mark.slow
def test_every_cache_file_zeroed_still_starts_publishes_and_logs_the_quarantine(cold_start, tiny_bundle, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(cold_start[3], cache)
    for file in (p for p in cache.rglob("*") if p.is_file()):
        file.write_bytes(b"")
    port = free_port()
    service = Service(write_config(tmp_path / "c.toml", tiny_bundle, port), cache, port, "--duration", "8")
    messages = service.collect(lambda m: sum(p["type"] == "result" for _t, p in m) >= 5, 30)
    code = service.finish()
    assert code == 0, service.log()
    assert sum(p["type"] == "result" for _t, p in messages) >= 5
    assert "quarantine" in service.log() and "Traceback" not in service.log()
    assert any((cache / "models").rglob("quarantine/*"))


@pytest.mark.slow
def test_a_start_killed_during_the_cold_build_leaves_a_cache_the_next_start_runs_with(tiny_bundle, tmp_path):
    port = free_port()
    config = write_config(tmp_path / "c.toml", tiny_bundle, port)
    chance = random.Random(15)
    for moment in sorted(chance.uniform(0.5, 30.0) for _ in range(3)):
        service = Service(config, tmp_path / "cache", port, "--duration", "60")
        assert service.run.wait_for_line("in the background", 60) or "runs on torch int8" in service.log()
        time.sleep(moment)
        service.run.process.kill()
        service.finish()
    service = Service(config, tmp_path / "cache", port, "--duration", "8")
    messages = service.collect(lambda m: sum(p["type"] == "result" for _t, p in m) >= 5, 30)
    code = service.finish()
    assert code == 0 and sum(p["type"] == "result" for _t, p in messages) >= 5, service.log()
    assert "Traceback" not in service.log()
    assert not [p for p in (tmp_path / "cache").rglob("partial-*")], "half-written files left behind"


@pytest.mark.slow
def test_sigterm_during_the_background_build_exits_at_once_and_kills_the_build(tiny_bundle, tmp_path):
    port = free_port()
    service = Service(write_config(tmp_path / "c.toml", tiny_bundle, port), tmp_path / "cache", port)
    try:
        assert service.run.wait_for_line("in the background", 60), service.log()
        pid = service.run.process.pid
        children = []
        deadline = time.monotonic() + 20
        while not children and time.monotonic() < deadline:
            time.sleep(0.2)
            children = [int(c) for t in Path(f"/proc/{pid}/task").iterdir()
                        for c in (t / "children").read_text().split()]
        assert children, "no build process"
        sent = time.monotonic()
        service.run.process.send_signal(signal.SIGTERM)
        code = service.run.process.wait(10)
        elapsed = time.monotonic() - sent
    finally:
        service.close()
    assert code == 0 and elapsed < 2.0, service.log()
    time.sleep(0.5)
    assert not [c for c in children if Path(f"/proc/{c}").exists()
                and "Z" not in Path(f"/proc/{c}/stat").read_text().split()[2]]


def renamed_bundle(tiny_bundle: Path, folder: Path, model_id: str) -> Path:
    return save_bundle(dataclasses.replace(load_bundle(tiny_bundle), model_id=model_id), folder / f"{model_id}.bundle")


def test_sighup_swaps_the_model_without_a_gap_and_a_broken_one_is_refused(tiny_bundle, tmp_path):
    """(fp32, so neither model builds anything: this is the swap itself.)"""
    port = free_port()
    first = renamed_bundle(tiny_bundle, tmp_path, "catalog-v1")
    second = renamed_bundle(tiny_bundle, tmp_path, "catalog-v2")
    config = write_config(tmp_path / "c.toml", first, port, precision="fp32")
    service = Service(config, tmp_path / "cache", port)
    try:
        service.collect(lambda m: sum(p["type"] == "result" for _t, p in m) >= 10, 30)
        write_config(config, second, port, precision="fp32")
        service.run.process.send_signal(signal.SIGHUP)
        messages = service.collect(lambda m: sum(p.get("model") == "catalog-v2" for _t, p in m) >= 30, 30)
        write_config(config, tmp_path / "missing.bundle", port, precision="fp32")
        service.run.process.send_signal(signal.SIGHUP)
        assert service.run.wait_for_line("reload refused", 30), service.log()
        before = len(messages)
        messages = service.collect(lambda m: len(m) > before + 30, 10)
        service.run.process.send_signal(signal.SIGTERM)
        code = service.run.process.wait(10)
    finally:
        service.close()
    assert code == 0, service.log()
    results = [p for _t, p in messages if p["type"] == "result"]
    ids = [r["model"] for r in results]
    switch = ids.index("catalog-v2")
    assert set(ids[:switch]) == {"catalog-v1"} and set(ids[switch:]) == {"catalog-v2"}
    assert [p["model"]["id"] for _t, p in messages[before:] if p["type"] == "heartbeat"][-1] == "catalog-v2"
    assert_no_seq_gap(messages)
    for camera in ("lane", "door"):
        times = [r["ts"] for r in results if r["camera"] == camera]
        gap = max(b - a for a, b in zip(times, times[1:]))
        print(f"{camera}: longest gap between results across two swaps {gap * 1000:.0f} ms")
        assert gap < 1.0, f"{camera} paused during the swap"


def test_post_api_reload_reloads_like_sighup(tiny_bundle, tmp_path):
    import urllib.request

    port, http_port = free_port(), free_port()
    config = write_config(tmp_path / "c.toml", renamed_bundle(tiny_bundle, tmp_path, "web-v1"), port, "fp32", http_port)
    service = Service(config, tmp_path / "cache", port)
    try:
        service.collect(lambda m: any(p["type"] == "result" for _t, p in m), 30)
        write_config(config, renamed_bundle(tiny_bundle, tmp_path, "web-v2"), port, "fp32", http_port)
        request = urllib.request.Request(f"http://127.0.0.1:{http_port}/api/reload", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 202
        service.collect(lambda m: any(p.get("model") == "web-v2" for _t, p in m), 30)
    finally:
        service.close()
    assert any(p.get("model") == "web-v2" for _t, p in service.subscriber.messages), service.log()
    assert os.path.exists(config)


def test_a_new_build_replaces_the_running_one_and_close_kills_it(tiny_bundle, tmp_path):
    """One background build at a time: serving another start cancels (kills) the build of the previous one."""
    from config.schema import ModelConfig
    from inference.backends.select import plan_start
    from inference.threads import ThreadPlan
    from stream.pipeline.model_slot import ModelSlot
    from stream.service.calibration import rendered_frames
    from stream.service.models import ModelManager
    from tests.fakes import wait_for

    model = ModelConfig(spec=str(tiny_bundle), backend="torch", precision="int8")
    plan, classifier = ThreadPlan(1, 1), load_bundle(tiny_bundle).to_classifier()
    starts = [plan_start(classifier, model, 8, tmp_path / f"models{i}", plan, rendered_frames) for i in range(2)]
    assert all(start.build is not None for start in starts)
    manager = ModelManager(ModelSlot(), plan, 8, tmp_path / "models", lambda _folder: rendered_frames)
    processes = []
    try:
        for start in starts:
            manager.serve(start)
            assert manager.slot.status().optimizing
            assert wait_for(lambda: manager._build._process is not None and manager._build._process.is_alive(), 30)
            processes.append(manager._build._process)
            assert [p.is_alive() for p in processes] == [False] * (len(processes) - 1) + [True]
    finally:
        manager.close()
    assert not any(p.is_alive() for p in processes) and not manager.slot.status().optimizing
    assert not list(tmp_path.rglob("partial-*"))
