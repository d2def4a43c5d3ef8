"""`streamrec bench --quick` writes JSON in the shape DESIGN.md gives (speed itself is the bench's job, not a test's)."""

import json

import pytest

from stream.tools.bench.run import BenchPlan
from tests.conftest import cli_env, run_cli

RAW = {"backend", "precision", "batch", "img_per_s", "latency_ms_p50", "latency_ms_p99", "feature_dim",
       "img_per_s_with_features", "features_ratio"}
PIPELINE = {"backend", "precision", "batch", "cameras", "paced_fps", "results_per_s", "latency_ms_p50", "latency_ms_p99", "drop_rate"}
AGREEMENT = {"backend", "precision", "model", "top1_agreement"}


@pytest.fixture(scope="module")
def quick_bench(tmp_path_factory, demo_cache):
    """One `bench --quick` run (a minute of measuring) shared by the tests of its JSON: the demo model in demo_cache
    (the tiny bundle) gives the agreement rows, and the remote it is given never answers."""
    from tests.triton_fixture import free_port

    pytest.importorskip("tritonclient.grpc")
    out = tmp_path_factory.mktemp("bench") / "bench.json"
    done = run_cli("bench", "--quick", "--json", str(out), "--remote", f"triton:grpc://127.0.0.1:{free_port()}/tiny",
                   env=cli_env(STREAMREC_CACHE_DIR=str(demo_cache)), timeout=900)
    return done, json.loads(out.read_text()) if out.exists() else None


@pytest.mark.slow
def test_quick_bench_json_has_every_field(quick_bench):
    done, result = quick_bench
    assert result is not None, done.stderr[-3000:]
    machine = result["machine"]
    assert isinstance(machine["cpu"], str) and machine["cores"] >= 1 and isinstance(machine["flags"], list)
    assert machine["torch"] and machine["lanes"] * machine["threads_per_lane"] == machine["threads"]
    assert all(row["lanes"] == machine["lanes"] for row in result["raw"] + result["pipeline"])
    assert result["raw"] and all(RAW <= set(row) for row in result["raw"])
    assert {row["batch"] for row in result["raw"]} == {1, 8}
    assert all(row["feature_dim"] == 512 and row["img_per_s_with_features"] > 0 for row in result["raw"])
    assert result["pipeline"] and all(PIPELINE <= set(row) for row in result["pipeline"])
    assert {row["paced_fps"] for row in result["pipeline"]} == {None, 30.0}
    assert all(row["raw_img_per_s"] > 0 for row in result["pipeline"] if row["paced_fps"] is None)
    assert result["baseline"]["img_per_s"] > 0
    second = next(iter(BenchPlan(quick=True).choices[1:]), None)
    if second is not None:  # --quick compares torch bf16 with fp32, or OpenVINO fp32 on a CPU without bfloat16
        assert [(row["backend"], row["precision"]) for row in result["agreement"]] == [(second.backend, second.precision)]
        assert all(AGREEMENT <= set(row) for row in result["agreement"])
    else:
        assert result["agreement"] == []
    assert all(0 <= row["top1_agreement"] <= 1 for row in result["agreement"])
    assert 0 < result["static_scene"]["cpu_ratio"]
    assert set(result["goals"]) >= {"pipeline_vs_raw", "best_vs_baseline", "int8_vs_best_fp32", "two_cameras_30fps",
                                    "features_cost"}
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


class RecordingClassifier:
    """A classifier that records which of its two methods each call went to."""

    def __init__(self, inner) -> None:
        self.inner, self.labels, self.input_spec = inner, inner.labels, inner.input_spec
        self.calls: list[str] = []

    def predict(self, batch):
        self.calls.append("predict")
        return self.inner.predict(batch)

    def predict_with_features(self, batch):
        self.calls.append("features")
        return self.inner.predict_with_features(batch)


def switches(calls: list[str]) -> list[str]:
    return [call for i, call in enumerate(calls) if i == 0 or calls[i - 1] != call]


def test_a_raw_row_measures_predict_and_predict_with_features_in_alternating_windows():
    from stream.tools.bench.measure import raw_row
    from tests.test_features import tiny_with_head

    model = RecordingClassifier(tiny_with_head())
    row = raw_row(model, "torch", "fp32", 2, 0.2)
    assert row["feature_dim"] == 16 and row["img_per_s"] > 0 and row["img_per_s_with_features"] > 0
    assert row["features_ratio"] == pytest.approx(row["img_per_s_with_features"] / row["img_per_s"], abs=0.002)
    assert switches(model.calls) == ["features"] + ["predict", "features"] * 2 + ["predict"]  # the width, then ABBA ABBA


def test_a_raw_row_of_a_path_without_features_or_not_asked_for_them_measures_predict_alone():
    from stream.tools.bench.measure import raw_row
    from tests.fakes import tiny_classifier
    from tests.test_features import tiny_with_head

    model = RecordingClassifier(tiny_with_head())
    row = raw_row(model, "torch", "fp32", 2, 0.1, features=False)
    assert set(model.calls) == {"predict"}
    without = raw_row(tiny_classifier(crop=32), "torch", "fp32", 2, 0.1)  # no final fc: no features
    for found in (row, without):
        assert found["img_per_s"] > 0
        assert (found["feature_dim"], found["img_per_s_with_features"], found["features_ratio"]) == (None, None, None)


def test_the_raw_table_shows_the_speed_with_features_and_the_ratio():
    import io

    from stream.tools.bench.report import print_table

    raw = [{"backend": "torch", "precision": "int8", "batch": 8, "img_per_s": 200.0, "latency_ms_p50": 70.0,
            "latency_ms_p99": 90.0, "feature_dim": 512, "img_per_s_with_features": 199.0, "features_ratio": 0.995}]
    result = {"machine": {"cpu": "cpu", "cores": 2, "threads": 2, "flags": [], "torch": "2"}, "model": "m",
              "raw": raw, "pipeline": [], "baseline": {"preprocessing": "PIL", "backend": "eager", "img_per_s": 30.0},
              "agreement": [], "goals": {}}
    out = io.StringIO()
    print_table(result, out)
    header, row = out.getvalue().split("raw model", 1)[1].splitlines()[1:3]
    assert "img/s with features" in header and "÷ without" in header
    assert row.split()[-2:] == ["199.0", "0.995"]


def test_the_features_goal_judges_each_paths_batch_8_ratio_and_leaves_paths_without_features_out():
    from stream.tools.bench.goals import goals

    raw = [{"backend": "torch", "precision": "int8", "batch": 8, "img_per_s": 300.0, "features_ratio": 0.99},
           {"backend": "torch", "precision": "int8", "batch": 1, "img_per_s": 200.0, "features_ratio": 0.5},
           {"backend": "openvino", "precision": "int8", "batch": 8, "img_per_s": 300.0, "features_ratio": None}]
    result = {"raw": raw, "pipeline": [], "best": {"backend": "torch", "precision": "int8"},
              "baseline": {"img_per_s": 30.0}, "agreement": []}
    assert goals(result)["features_cost"] == {"value": {"torch int8": 0.99}, "target": ">= 0.95", "met": True}
    raw[0]["features_ratio"] = 0.9
    assert goals(result)["features_cost"]["met"] is False


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


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory):
    from tests.fakes import tiny_classifier
    from tests.triton_fixture import serve_exported

    pytest.importorskip("tritonclient.grpc")
    server = serve_exported(tiny_classifier(), "tiny", tmp_path_factory.mktemp("bench-triton"))
    yield server
    server.stop()


def test_remote_one_kiosk_row_measures_two_cameras_and_the_client_cpu(tiny_server):
    from stream.tools.bench.remote import connect, one_kiosk_row
    from stream.tools.bench.run import camera_frames

    row = one_kiosk_row(connect(f"triton:grpc://127.0.0.1:{tiny_server.grpc_port}/tiny"), camera_frames(8), 1.0)
    assert row["cameras"] == 2 and row["paced_fps"] == 30.0 and row["inflight"] >= 1
    assert 10 < row["results_per_s"] < 66  # two cameras at 30 fps
    assert 0 < row["latency_ms_p50"] <= row["latency_ms_p99"] and row["model_call_ms_mean"] > 0
    assert 0 < row["preprocess_cpu_ms_per_frame"] < row["cpu_ms_per_frame"]
    threads = row["cpu_ms_per_frame_by_thread"]
    assert threads["preprocess"] > 0 and "bench" not in threads  # the measuring subscriber is not the kiosk's
    assert row["cpu_ms_per_frame_beyond_preprocessing"] == pytest.approx(
        row["cpu_ms_per_frame"] - threads["preprocess"], abs=0.002)
    assert row["cpu_ms_per_frame_without_model"] > 0 and row["rounds"] == 2
    assert row["client_cpu_ms_per_frame_for_the_model"] == pytest.approx(
        row["cpu_ms_per_frame"] - row["cpu_ms_per_frame_without_model"], abs=0.002)


def test_windows_of_several_rounds_add_up():
    from stream.tools.bench.pipeline_run import PipelineWindow
    from stream.tools.bench.remote import combined

    first = PipelineWindow(2.0, 100, 110, 10, 0.2, {"capture": 0.05}, 50, 0.25, [5.0])
    second = PipelineWindow(3.0, 200, 200, 0, 0.3, {"capture": 0.05, "preprocess": 0.1}, 100, 0.5, [7.0, 9.0])
    both = combined([first, second])
    assert (both.seconds, both.results, both.captured, both.dropped, both.model_calls) == (5.0, 300, 310, 10, 150)
    assert both.cpu_s == pytest.approx(0.5) and both.model_call_s == pytest.approx(0.75)
    assert both.cpu_s_by_thread == pytest.approx({"capture": 0.1, "preprocess": 0.1})
    assert both.latencies_ms == [5.0, 7.0, 9.0]


def test_a_kiosk_tally_counts_frames_missing_beyond_its_counted_drops_as_lost():
    from stream.tools.bench.kiosks import CameraTally

    tally = CameraTally()
    tally.heartbeat(classified=0, dropped=0, sent_ts=100.0)  # before the first result: every frame from 1 on counts
    for seq in (1, 2, 4, 3, 7, 8):
        tally.result(seq, captured_at=100.0 + seq / 30)
    tally.heartbeat(classified=5, dropped=2, sent_ts=101.0)
    assert (tally.from_start, tally.results, tally.out_of_order) == (True, 5, 1)
    assert (tally.missing, tally.dropped, tally.lost) == (3, 2, 1)


def test_a_kiosk_tally_joined_late_counts_from_its_first_result():
    from stream.tools.bench.kiosks import CameraTally

    tally = CameraTally()
    tally.heartbeat(classified=10, dropped=4, sent_ts=100.0)
    for seq in (12, 13, 15):
        tally.result(seq, captured_at=100.0 + seq / 100)
    tally.heartbeat(classified=13, dropped=5, sent_ts=101.0)
    assert (tally.from_start, tally.missing, tally.dropped, tally.lost) == (False, 1, 1, 0)


def test_a_kiosk_tally_joined_late_ignores_frames_captured_before_the_heartbeat_it_counts_drops_from():
    """Frame 13 was dropped, and counted in the first heartbeat seen, while frame 12's result was on its way: not a
    loss. Frame 17, captured later and neither delivered nor counted, is one."""
    from stream.tools.bench.kiosks import CameraTally

    tally = CameraTally()
    tally.heartbeat(classified=11, dropped=4, sent_ts=100.0)
    for seq, captured_at in ((12, 99.8), (14, 99.95), (15, 100.1), (16, 100.2), (18, 100.3)):
        tally.result(seq, captured_at)
    tally.heartbeat(classified=16, dropped=4, sent_ts=101.0)
    assert (tally.results, tally.first_seq, tally.missing, tally.dropped, tally.lost) == (5, 15, 1, 0, 1)


def _remote_result(one_kiosk: dict, kiosks: list) -> dict:
    return {"raw": [], "pipeline": [], "best": {"backend": "torch", "precision": "fp32"}, "baseline": {"img_per_s": 1.0},
            "agreement": [], "remote": {"spec": "triton:grpc://h:1/m", "model": "m", "one_kiosk": one_kiosk, "kiosks": kiosks}}


def test_remote_goals_are_judged_only_with_remote_rows():
    from stream.tools.bench.goals import goals

    local = _remote_result({}, [])
    del local["remote"]
    assert not any(name.startswith("remote") for name in goals(local))
    one = {"client_cpu_ms_per_frame_for_the_model": 0.4, "latency_ms_p99": 42.0, "model_call_ms_mean": 3.0}
    kiosks = [{"out_of_order": 0, "lost": 0}, {"out_of_order": 0, "lost": 2}]
    found = goals(_remote_result(one, kiosks))
    assert [found[name]["met"] for name in ("remote_client_cpu_per_frame", "remote_two_cameras_p99",
                                            "remote_kiosks_in_order", "remote_kiosks_nothing_lost")] == [True, True, True, False]
    assert found["remote_kiosks_nothing_lost"]["value"] == 2


def test_the_remote_latency_goal_is_not_judged_when_the_server_is_slower_than_its_premise():
    from stream.tools.bench.goals import goals

    one = {"client_cpu_ms_per_frame_for_the_model": 0.4, "latency_ms_p99": 240.0, "model_call_ms_mean": 55.0}
    goal = goals(_remote_result(one, []))["remote_two_cameras_p99"]
    assert goal["met"] is None and "55.0 ms" in goal["note"]


def test_an_unreachable_server_leaves_the_remote_goals_unmeasured_and_the_report_says_why():
    import io

    from stream.tools.bench.goals import remote_goals
    from stream.tools.bench.report import _remote

    section = {"spec": "triton:grpc://127.0.0.1:9/m", "error": "the server does not answer"}
    assert all(goal["met"] is None for goal in remote_goals(section).values())
    out = io.StringIO()
    _remote(out, section)
    assert "triton:grpc://127.0.0.1:9/m: not measured: the server does not answer" in out.getvalue()


def test_bench_refuses_a_malformed_remote_spec():
    done = run_cli("bench", "--quick", "--remote", "triton:tiny")
    assert done.returncode == 2 and "triton:grpc://HOST:PORT/MODEL" in done.stderr


@pytest.mark.slow
def test_bench_with_an_unreachable_remote_still_measures_the_local_rows_and_exits_78(quick_bench):
    done, result = quick_bench
    assert done.returncode == 78, done.stderr[-3000:]
    assert "the remote rows were not measured" in done.stderr and "server is up" in done.stderr
    assert result["raw"] and result["pipeline"] and set(result["remote"]) == {"spec", "error"}
    assert result["goals"]["remote_kiosks_in_order"]["met"] is None
