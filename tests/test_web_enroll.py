"""The "Add product" desk behind the web page: record a camera's frames, check them, preview, save or cancel."""

import shutil
import threading
import time

import pytest

from capture.hold import HoldSource
from inference.bundle import load_bundle
from inference.enrollment import EnrollmentError
from inference.gallery import gallery_path_for, load_gallery
from stream.web.enroll_desk import DeskBusy, EnrollDesk


class HeldCamera:
    """A camera's newest frame, as LatestResults gives it: the synthetic:hold scene, advancing with time (four times
    as fast as the real scene, so a short recording sees the product from enough sides to keep 5 views)."""

    def __init__(self) -> None:
        self.source, self.started = HoldSource(seed=4), time.monotonic()

    def __call__(self, camera: str):
        number = int((time.monotonic() - self.started) * 30 * 4)
        return (number, self.source.render(number)) if camera == "counter" else None


@pytest.fixture
def desk(tiny_bundle, tmp_path):
    stop = threading.Event()
    yield EnrollDesk(shutil.copy(tiny_bundle, tmp_path / "shop.bundle"), HeldCamera(), stop)
    stop.set()


def wait_for_state(desk, states, timeout_s=60):
    deadline = time.monotonic() + timeout_s
    while desk.document()["state"] not in states:
        assert time.monotonic() < deadline, desk.document()
        time.sleep(0.05)
    return desk.document()


def test_record_check_and_save_puts_the_product_in_the_bundles_gallery(desk):
    assert desk.document() == {"state": "idle"}
    started = desk.start("counter", "  lulu ", 3)
    assert started["state"] == "recording" and started["label"] == "lulu"
    with pytest.raises(DeskBusy, match="lulu"):
        desk.start("counter", "other", 2)
    ready = wait_for_state(desk, ("ready", "failed"))
    assert ready["state"] == "ready", (ready["error"], ready["views"])
    assert ready["frames"] >= 10 and ready["kept"] >= 5 and "views kept" in ready["views"]
    assert ready["preview"].startswith("preview:")
    assert ready["warning"] is None or ready["warning"].startswith("warning: the model can hardly tell")
    path = gallery_path_for(desk.bundle_path)
    assert not path.exists()
    saved = desk.confirm()
    assert saved["state"] == "saved" and saved["gallery"] == 1
    bundle = load_bundle(desk.bundle_path)
    assert load_gallery(path, bundle.model_id).labels == ("lulu",)
    with pytest.raises(EnrollmentError, match="nothing to save"):
        desk.confirm()


def test_trained_names_bad_lengths_and_cancel(desk):
    trained = load_bundle(desk.bundle_path).labels[1]
    with pytest.raises(EnrollmentError, match="trained label"):
        desk.start("counter", trained, 2)
    with pytest.raises(EnrollmentError, match="name the product: type its name"):
        desk.start("counter", "  ", 2)
    with pytest.raises(EnrollmentError, match="1 to 30 seconds"):
        desk.start("counter", "lulu", 120)
    desk.start("counter", "lulu", 5)
    assert desk.cancel()["state"] == "cancelled"
    time.sleep(0.3)
    assert desk.document()["state"] == "cancelled"
    assert not gallery_path_for(desk.bundle_path).exists()
    assert desk.start("counter", "lulu", 1)["state"] == "recording"  # a cancelled session frees the desk


def test_a_camera_without_frames_fails_with_a_clear_reason(desk):
    desk.start("nothing-here", "lulu", 1)
    failed = wait_for_state(desk, ("failed", "ready"))
    assert failed["state"] == "failed" and "no frames from nothing-here" in failed["error"]
