"""Torch's thread count follows the CPU quota of this process's own cgroup and its parents (fake cgroup trees)."""

import os
from pathlib import Path

import pytest

from inference.threads import ThreadPlan, available_cpus, cgroup_cpu_limit, plan_threads

SERVICE = "/system.slice/streamrec.service"


def v2_tree(tmp_path: Path, cpu_max: dict[str, str], own: str = SERVICE) -> tuple[Path, Path]:
    """A cgroup v2 mount with `cpu.max` files at the given paths, and a /proc/self/cgroup naming `own`."""
    root = tmp_path / "cgroup"
    (root / own.strip("/")).mkdir(parents=True)
    (root / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    for path, value in cpu_max.items():
        (root / path.strip("/") / "cpu.max").write_text(value + "\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(f"0::{own}\n")
    return root, proc


def test_the_service_cgroups_own_quota_counts_not_the_roots(tmp_path):
    root, proc = v2_tree(tmp_path, {"/": "max 100000", SERVICE: "150000 100000"})
    assert cgroup_cpu_limit(root, proc) == 1.5


def test_a_parent_cgroups_tighter_quota_applies(tmp_path):
    root, proc = v2_tree(tmp_path, {"/system.slice": "100000 100000", SERVICE: "300000 100000"})
    assert cgroup_cpu_limit(root, proc) == 1.0


def test_no_quota_anywhere_means_unlimited(tmp_path):
    root, proc = v2_tree(tmp_path, {"/system.slice": "max 100000", SERVICE: "max 100000"})
    assert cgroup_cpu_limit(root, proc) is None


def test_a_container_sees_its_own_quota_at_the_mount_root(tmp_path):
    root, proc = v2_tree(tmp_path, {"/": "200000 100000"}, own="/")
    assert cgroup_cpu_limit(root, proc) == 2.0


def test_cgroup_v1_cfs_quota_of_own_cgroup_and_parents(tmp_path):
    mount = tmp_path / "cgroup" / "cpu,cpuacct"
    own = mount / "system.slice" / "streamrec.service"
    own.mkdir(parents=True)
    for directory, quota in ((own, "250000"), (mount / "system.slice", "-1")):
        (directory / "cpu.cfs_quota_us").write_text(quota + "\n")
        (directory / "cpu.cfs_period_us").write_text("100000\n")
    proc = tmp_path / "proc-self-cgroup"
    proc.write_text(f"4:cpu,cpuacct:{SERVICE}\n3:memory:{SERVICE}\n0::{SERVICE}\n")
    assert cgroup_cpu_limit(tmp_path / "cgroup", proc) == 2.5


def test_unreadable_cgroup_information_means_unlimited(tmp_path):
    assert cgroup_cpu_limit(tmp_path / "nothing", tmp_path / "no-proc") is None


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs two CPUs in the affinity mask")
def test_thread_count_follows_the_quota_rounded_down_but_at_least_one(tmp_path):
    root, proc = v2_tree(tmp_path, {SERVICE: "150000 100000"})
    assert available_cpus(root, proc) == 1
    root, proc = v2_tree(tmp_path / "b", {SERVICE: "50000 100000"})
    assert available_cpus(root, proc) == 1
    root, proc = v2_tree(tmp_path / "c", {SERVICE: "max 100000"})
    assert available_cpus(root, proc) == len(os.sched_getaffinity(0))


def test_automatic_plan_runs_one_single_threaded_lane_per_cpu_up_to_four():
    assert plan_threads(0, 0, cpus=1) == ThreadPlan(1, 1)
    assert plan_threads(0, 0, cpus=2) == ThreadPlan(2, 1)
    assert plan_threads(0, 0, cpus=8) == ThreadPlan(4, 2)
    assert plan_threads(3, 0, cpus=8) == ThreadPlan(3, 1)


def test_configured_lanes_share_the_threads_and_never_outnumber_them():
    assert plan_threads(4, 2) == ThreadPlan(2, 2)
    assert plan_threads(2, 1) == ThreadPlan(1, 2)
    assert plan_threads(5, 2) == ThreadPlan(2, 2)
    assert plan_threads(1, 3) == ThreadPlan(1, 1)
    assert plan_threads(0, 1, cpus=2).threads == 2
