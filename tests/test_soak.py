"""Long life: the soak command's verdict, and a 60-second soak with forced reconnects and wedged reads."""

import json

import pytest

from capture.status import CameraSnapshot, CameraState
from stream.tools.resources import ResourceSample, sample_resources
from stream.tools.soak import SoakOptions, judge
from tests.conftest import cli_env, run_cli

OPTIONS = SoakOptions(minutes=1.0, cameras=1, reconnect_every_s=2.0, warmup_fraction=0.3)


def sample(t, rss=500.0, threads=12, fds=16, sockets=3):
    return ResourceSample(t, rss, threads, 8, fds, sockets)


def snapshot(reconnects=20):
    return CameraSnapshot("soak0", "synthetic", CameraState.STREAMING, 100, 0, reconnects, 15.0, None, 0.1, 3, 0)


def verdict(samples, **kwargs):
    return judge(samples, OPTIONS, {"soak0": kwargs.get("snap", snapshot())}, [], {"soak0": 900},
                 {"soak0": kwargs.get("since_last_result", 0.5)})


def test_flat_resources_after_warm_up_pass_even_if_start_up_grew():
    samples = [sample(0, rss=300, threads=3, fds=6, sockets=0)] + [sample(t) for t in range(20, 61, 5)]
    assert verdict(samples).ok


def test_threads_that_keep_growing_fail_the_soak():
    samples = [sample(t, threads=12 + t // 5) for t in range(0, 61, 5)]
    report = verdict(samples)
    assert not report.ok and any("threads grew" in p for p in report.problems)


def test_leaking_file_descriptors_fail_the_soak():
    samples = [sample(t, fds=16 + t) for t in range(0, 61, 5)]
    assert any("file descriptors grew" in p for p in verdict(samples).problems)


def test_a_camera_that_stopped_recovering_fails_the_soak():
    samples = [sample(t) for t in range(0, 61, 5)]
    assert any("did not recover" in p for p in verdict(samples, since_last_result=30.0).problems)


def test_sampling_reads_this_process():
    now = sample_resources(1.0)
    assert now.rss_mib > 10 and now.threads >= 1 and now.fds >= 3


@pytest.mark.slow
def test_sixty_second_soak_with_forced_reconnects_keeps_resources_flat():
    done = run_cli("soak", "--minutes", "1", "--cameras", "2", "--reconnect-every", "2", timeout=240, env=cli_env())
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["ok"] and not report["problems"]
    assert min(report["reconnects"].values()) >= 10
    assert min(report["abandoned_readers"].values()) >= 1, "wedged reads must have been abandoned and reclaimed"
    assert report["end"]["threads"] <= report["baseline"]["threads"] + 2
    assert "soak passed" in done.stderr
