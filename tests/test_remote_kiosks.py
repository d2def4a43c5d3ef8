"""Three kiosks (`streamrec run` processes, two synthetic 30 fps cameras each) on one real Triton server: each
kiosk's results arrive per camera in capture order with nothing lost beyond its counted drops, the server merges
their requests into shared executions, and SIGTERM stops every kiosk cleanly. The kiosks are run and watched by
the same helper as `streamrec bench --remote`."""

import json
import urllib.request

import pytest

from stream.tools.bench.kiosks import run_kiosks
from tests.fakes import tiny_classifier
from tests.triton_fixture import serve_exported

pytestmark = pytest.mark.slow
pytest.importorskip("tritonclient.grpc")

SECONDS = 10.0


@pytest.fixture(scope="module")
def triton(tmp_path_factory):
    """A small random model: what is measured here does not depend on what it recognises."""
    server = serve_exported(tiny_classifier(), "tiny", tmp_path_factory.mktemp("kiosks-triton"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def kiosks(triton):
    return run_kiosks(f"triton:grpc://127.0.0.1:{triton.grpc_port}/tiny", count=3, seconds=SECONDS)


def test_every_kiosk_gets_results_from_both_cameras(kiosks):
    assert len(kiosks) == 3
    for kiosk in kiosks:
        assert kiosk["results"] > SECONDS * 20, kiosk
        assert kiosk["results_per_s"] > 30, kiosk  # two cameras at 30 fps: 60 when the server keeps up


def test_each_cameras_results_arrive_in_capture_order(kiosks):
    assert [kiosk["out_of_order"] for kiosk in kiosks] == [0, 0, 0]


def test_no_frame_is_lost_beyond_the_drops_the_kiosk_counted(kiosks):
    for kiosk in kiosks:
        assert kiosk["final_heartbeat"], kiosk  # the counts compared are those of the kiosk's last heartbeat
        assert kiosk["lost"] == 0 and kiosk["wire_gaps"] == 0, kiosk


def test_the_server_runs_requests_from_several_kiosks_in_one_execution(triton, kiosks):
    """Triton counts requests (`inference_stats.success.count`) and model executions (`execution_count`) apart;
    with dynamic batching one execution takes every request queued meanwhile, so fewer executions than requests
    means merged requests. (`batch_stats` sizes count images, and a kiosk's own request may hold several.)"""
    url = f"http://127.0.0.1:{triton.http_port}/v2/models/tiny/stats"
    with urllib.request.urlopen(url, timeout=5) as reply:
        stats = json.load(reply)["model_stats"][0]
    requests = stats["inference_stats"]["success"]["count"]
    assert requests > 3 * SECONDS * 5
    assert stats["execution_count"] < requests, stats


def test_sigterm_stops_every_kiosk_with_exit_0_within_seconds(kiosks):
    for kiosk in kiosks:
        assert kiosk["exit_code"] == 0 and kiosk["stop_s"] is not None and kiosk["stop_s"] < 5.0, kiosk
