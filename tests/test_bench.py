"""`streamrec bench --quick` writes JSON in the shape DESIGN.md gives (speed itself is the bench's job, not a test's)."""

import json

import pytest

from tests.conftest import cli_env, run_cli

RAW = {"backend", "precision", "batch", "img_per_s", "latency_ms_p50", "latency_ms_p99"}
PIPELINE = {"backend", "precision", "batch", "cameras", "paced_fps", "results_per_s", "latency_ms_p50", "latency_ms_p99", "drop_rate"}
AGREEMENT = {"backend", "precision", "model", "top1_agreement"}


@pytest.mark.slow
def test_quick_bench_json_has_every_field(tmp_path, demo_cache):
    out = tmp_path / "bench.json"  # the demo model in demo_cache (the tiny bundle) gives the agreement rows
    done = run_cli("bench", "--quick", "--json", str(out), env=cli_env(STREAMREC_CACHE_DIR=str(demo_cache)), timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    machine = result["machine"]
    assert isinstance(machine["cpu"], str) and machine["cores"] >= 1 and isinstance(machine["flags"], list)
    assert machine["torch"] and machine["lanes"] * machine["threads_per_lane"] == machine["threads"]
    assert all(row["lanes"] == machine["lanes"] for row in result["raw"] + result["pipeline"])
    assert result["raw"] and all(RAW <= set(row) for row in result["raw"])
    assert {row["batch"] for row in result["raw"]} == {1, 8}
    assert result["pipeline"] and all(PIPELINE <= set(row) for row in result["pipeline"])
    assert {row["paced_fps"] for row in result["pipeline"]} == {None, 30.0}
    assert all(row["raw_img_per_s"] > 0 for row in result["pipeline"] if row["paced_fps"] is None)
    assert result["baseline"]["img_per_s"] > 0
    assert result["agreement"] and all(AGREEMENT <= set(row) for row in result["agreement"])
    assert all(0 <= row["top1_agreement"] <= 1 for row in result["agreement"])
    assert 0 < result["static_scene"]["cpu_ratio"]
    assert set(result["goals"]) >= {"pipeline_vs_raw", "best_vs_baseline", "int8_vs_best_fp32", "two_cameras_30fps"}
    assert "goals" in done.stdout and "raw model" in done.stdout


def test_pipeline_goal_compares_each_row_with_the_raw_speed_measured_just_before_it():
    from stream.tools.bench.goals import goals

    raw = [{"backend": "openvino", "precision": "int8", "batch": 8, "img_per_s": 250.0}]
    pipeline = [{"backend": "openvino", "precision": "int8", "batch": 8, "cameras": 1, "paced_fps": None,
                 "results_per_s": 200.0, "raw_img_per_s": 220.0},
                {"backend": "openvino", "precision": "int8", "batch": 8, "cameras": 2, "paced_fps": None,
                 "results_per_s": 180.0}]
    result = {"raw": raw, "pipeline": pipeline, "best": {"backend": "openvino", "precision": "int8"},
              "baseline": {"img_per_s": 30.0}, "agreement": []}
    goal = goals(result)["pipeline_vs_raw"]
    assert goal["value"] == {"openvino int8": round(200 / 220, 3)} and goal["met"] is True
    pipeline[0]["raw_img_per_s"] = 250.0
    assert goals(result)["pipeline_vs_raw"] == {"value": {"openvino int8": 0.8}, "target": ">= 0.9", "met": False}


def test_bench_refuses_a_negative_lane_count():
    done = run_cli("bench", "--quick", "--lanes", "-1")
    assert done.returncode == 2 and "--lanes: must be 0 (automatic) or more" in done.stderr


@pytest.mark.parametrize("latency_ms", [12.345, 0.004, 1234.5, 7.0])
def test_the_bench_subscriber_reads_the_latency_the_wire_encoder_writes(latency_ms):
    from stream.tools.bench.pipeline_run import LATENCY_FIELD
    from stream.wire.encoder import WireEncoder
    from tests.test_wire import sample_result

    _topic, payload = WireEncoder("boot").result(sample_result(), latency_ms, stale=False)
    assert float(LATENCY_FIELD.search(payload).group(1)) == json.loads(payload)["latency_ms"]
