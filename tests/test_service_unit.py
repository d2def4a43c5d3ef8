"""The systemd unit passes `systemd-analyze verify` and rates ≤ 2.0 in `systemd-analyze security`; the install
script lays down unit, user, config (never overwriting an edited one) and state directories under --root."""

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

UNIT = REPO / "systemd" / "streamrec.service"
INSTALL = REPO / "scripts" / "install-kiosk"

needs_systemd = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                   reason="systemd-analyze missing: run scripts/install-system-deps")


def directives(unit: Path) -> dict[str, list[str]]:
    """Every `Key=value` of a unit file, values in order (keys may repeat)."""
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def install(root: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(INSTALL), "--root", str(root), "--skip-venv", *extra],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def installed(tmp_path) -> Path:
    root = tmp_path / "root"
    done = install(root)
    assert done.returncode == 0, done.stderr
    return root


@needs_systemd
def test_installed_unit_passes_systemd_analyze_verify(installed, tmp_path):
    # verify insists that ExecStart's binary exists: check a copy that runs this interpreter instead of the venv's
    unit = installed / "etc/systemd/system/streamrec.service"
    exec_start = directives(unit)["ExecStart"][0]
    copy = tmp_path / "streamrec.service"
    copy.write_text(unit.read_text().replace(f"ExecStart={exec_start}",
                                             f"ExecStart={sys.executable} -m stream {exec_start.split(' ', 1)[1]}"))
    done = subprocess.run(["systemd-analyze", "verify", "--recursive-errors=yes", str(copy)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "streamrec.service" not in done.stderr, done.stderr


@needs_systemd
def test_unit_security_exposure_is_at_most_2():
    done = subprocess.run(["systemd-analyze", "security", "--offline=true", str(UNIT)],
                          capture_output=True, text=True, timeout=60)
    match = re.search(r"Overall exposure level for streamrec\.service: (\d+\.\d+)", done.stdout)
    assert match, done.stdout + done.stderr
    assert float(match.group(1)) <= 2.0, done.stdout


def test_unit_notifies_restarts_on_failure_but_not_on_config_or_model_errors():
    unit = directives(UNIT)
    assert unit["Type"] == ["notify"] and unit["NotifyAccess"] == ["main"]
    assert unit["WatchdogSec"] and unit["Restart"] == ["on-failure"]
    assert set(unit["RestartPreventExitStatus"][0].split()) >= {"2", "78"}


def test_unit_opens_only_video_devices_and_keeps_torchs_writable_executable_memory():
    unit = directives(UNIT)
    assert unit["DevicePolicy"] == ["closed"] and unit["DeviceAllow"] == ["char-video4linux rw"]
    assert "MemoryDenyWriteExecute" not in unit  # PyTorch's CPU kernels need it (pytorch/pytorch#143651)
    assert unit["CapabilityBoundingSet"] == [""] and unit["User"] == ["streamrec"]
    assert unit["SupplementaryGroups"] == ["video"]


def test_unit_keeps_the_torch_hub_cache_in_the_state_directory_and_limits_cpu():
    unit = directives(UNIT)
    assert "TORCH_HOME=/var/lib/streamrec/torch" in unit["Environment"]
    assert unit["StateDirectory"] == ["streamrec"] and unit["CPUQuota"]


def test_install_lays_down_unit_user_config_and_state(installed):
    unit = installed / "etc/systemd/system/streamrec.service"
    assert unit.read_text() == UNIT.read_text()
    config = installed / "etc/streamrec/streamrec.toml"
    assert config.read_text() == (REPO / "config/default.toml").read_text()
    assert config.stat().st_mode & 0o777 == 0o640
    assert (installed / "var/lib/streamrec/torch/hub/checkpoints").is_dir()
    assert (installed / "var/lib/streamrec").stat().st_mode & 0o777 == 0o750
    passwd = (installed / "etc/passwd").read_text()
    assert re.search(r"^streamrec:x:\d+:\d+:[^:]*:/var/lib/streamrec:/usr/sbin/nologin$", passwd, re.M)
    assert re.search(r"^video:x:\d+:(.*,)?streamrec(,.*)?$", (installed / "etc/group").read_text(), re.M)


def test_install_config_path_is_the_one_the_unit_runs_with(installed):
    args = shlex.split(directives(UNIT)["ExecStart"][0])
    config = Path(args[args.index("--config") + 1])
    assert (installed / config.relative_to("/")).is_file()
    assert (installed / Path(args[0]).relative_to("/")).parent.parent.is_dir()  # the venv's place


def test_install_never_overwrites_an_edited_config(installed):
    config = installed / "etc/streamrec/streamrec.toml"
    config.write_text('[[cameras]]\nid = "lane1"\nsource = "usb:0"\n')
    done = install(installed)
    assert done.returncode == 0, done.stderr
    assert "keeping the existing" in done.stdout
    assert config.read_text() == '[[cameras]]\nid = "lane1"\nsource = "usb:0"\n'


def test_install_puts_given_weights_into_the_services_hub_cache(tmp_path, resnet18_checkpoint):
    done = install(tmp_path / "root", "--weights", str(resnet18_checkpoint))
    assert done.returncode == 0, done.stderr
    copied = tmp_path / "root/var/lib/streamrec/torch/hub/checkpoints" / resnet18_checkpoint.name
    assert copied.read_bytes() == resnet18_checkpoint.read_bytes()
