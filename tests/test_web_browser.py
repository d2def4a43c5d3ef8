"""The status page in a real headless Chromium (Debian's package, driven by Playwright): live previews and uploads."""

import os
import shutil
import threading

import cv2
import numpy as np
import pytest

from capture.catalog import LABELS
from capture.scene import SpriteCache, all_products, render_sample
from stream.pipeline.app import Pipeline
from tests.conftest import REPO, make_config
from tests.fakes import tiny_classifier

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = REPO / "test-artifacts"
CAMERAS = [{"id": "lane", "source": "synthetic:lane"}, {"id": "shelf", "source": "synthetic", "seed": 3}]
TOKEN = "kiosk-browser-test-token"
TIMEOUT_MS = 30_000


def needs(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"CI must install {what} (scripts/install-system-deps and the test extra)")
    pytest.skip(f"needs {what}")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One headless Chromium for the module, with a fresh profile."""
    if shutil.which(CHROMIUM) is None:
        needs("Debian's chromium package")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        needs("playwright (pip install '.[test]')")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, args=CHROMIUM_FLAGS,
            headless=True, viewport={"width": 1360, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        yield context
        context.close()


@pytest.fixture(scope="module")
def model():
    """A tiny random CNN with the demo catalog's labels: real inference, no training needed."""
    return tiny_classifier(LABELS)


def serve(model, **http):
    config = make_config(CAMERAS, http={"enabled": True, "listen": "127.0.0.1:0", "preview_fps": 10, **http})
    pipeline = Pipeline(config, model, threading.Event())
    pipeline.start()
    return pipeline


@pytest.fixture(scope="module")
def site(model):
    pipeline = serve(model)
    yield pipeline.web.url
    pipeline.shutdown()


@pytest.fixture
def page(browser):
    page = browser.new_page()
    yield page
    page.close()


@pytest.fixture(scope="module")
def product_picture(tmp_path_factory):
    """A photo-like picture of the catalog's first product, as a JPEG file."""
    image = render_sample(all_products()[0], np.random.default_rng(7), 360, SpriteCache())
    path = tmp_path_factory.mktemp("upload") / "cola.jpg"
    cv2.imwrite(str(path), image)
    return path


def shown_frame(page, camera: str) -> tuple[int, int]:
    """The preview's frame number and a checksum of its pixels (drawn through a canvas), read together once the
    image is decoded: the page swaps images continuously, so reading them separately could see a loading one."""
    return tuple(page.wait_for_function("""(camera) => {
        const img = document.querySelector(`[data-camera="${camera}"] .preview`);
        if (!img || !img.complete || img.naturalWidth === 0) return null;
        const canvas = document.createElement("canvas");
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const context = canvas.getContext("2d");
        context.drawImage(img, 0, 0);
        const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
        let sum = 0;
        for (let i = 0; i < data.length; i += 7) sum = (sum * 31 + data[i]) % 1000000007;
        return [Number(img.dataset.frame || 0), sum];
    }""", arg=camera).json_value())


def wait_for_frame_after(page, camera: str, number: int) -> None:
    page.wait_for_function(
        """([camera, number]) => {
            const img = document.querySelector(`[data-camera="${camera}"] .preview`);
            return img && img.complete && img.naturalWidth > 0 && Number(img.dataset.frame || 0) > number;
        }""", arg=[camera, number])


def test_every_camera_preview_keeps_updating(page, site):
    page.goto(site)
    for camera in ("lane", "shelf"):
        wait_for_frame_after(page, camera, 0)
        first_number, first_pixels = shown_frame(page, camera)
        wait_for_frame_after(page, camera, first_number + 2)
        assert shown_frame(page, camera)[1] != first_pixels, f"{camera}'s preview did not change"


def test_every_camera_card_shows_its_state_counters_and_top3(page, site):
    page.goto(site)
    for camera in ("lane", "shelf"):
        card = f'[data-camera="{camera}"]'
        page.wait_for_selector(f"{card} .topk li:nth-child(3)")
        page.wait_for_function(f"""() => document.querySelector('{card} .state').textContent === 'streaming'""")
        assert int(page.text_content(f"{card} .captured").replace(",", "")) > 0
        assert page.text_content(f"{card} .fps") != "–"
    assert page.text_content("#health") == "healthy"


def upload_result(page) -> list[tuple[str, str]]:
    page.wait_for_selector("#upload-result li:nth-child(3)")
    rows = page.query_selector_all("#upload-result li")
    return [(row.query_selector(".label").text_content(), row.query_selector(".score").text_content()) for row in rows]


def test_file_picker_upload_shows_the_image_and_its_top3(page, site, model, product_picture):
    page.goto(site)
    page.set_input_files("#file", str(product_picture))
    rows = upload_result(page)
    assert len(rows) == 3
    assert all(label in model.labels for label, _score in rows)
    assert all(score.endswith("%") for _label, score in rows)
    assert page.is_visible("#upload-image")
    for camera in ("lane", "shelf"):
        wait_for_frame_after(page, camera, 1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-status.png"), full_page=True)


def test_dropped_file_is_uploaded(page, site, product_picture):
    page.goto(site)
    page.evaluate("""async (bytes) => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([new Uint8Array(bytes)], "dropped.jpg", {type: "image/jpeg"}));
        document.getElementById("dropzone").dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true}));
    }""", list(product_picture.read_bytes()))
    assert len(upload_result(page)) == 3
    assert "dropped.jpg" in page.text_content("#upload-name")


def test_wrong_file_type_is_explained_without_uploading(page, site, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a picture")
    page.goto(site)
    page.set_input_files("#file", str(notes))
    page.wait_for_selector("#upload-status.error")
    assert "not a JPG, PNG or WebP image" in page.text_content("#upload-status")


def test_page_behind_a_token_opens_with_the_token_once(page, model):
    pipeline = serve(model, token=TOKEN)
    try:
        page.goto(pipeline.web.url)
        assert page.is_visible('input[name="token"]')
        page.fill('input[name="token"]', TOKEN)
        page.click("button")
        wait_for_frame_after(page, "shelf", 0)
        assert "token" not in page.url
    finally:
        pipeline.shutdown()


def test_add_product_records_a_camera_previews_and_saves_to_the_running_gallery(page, tiny_bundle, tmp_path):
    """The web "Add product" flow end to end: name, record 2 s of a product held up, see views kept and the
    preview, save; the bundle's gallery has it and the camera's card recognizes it without a restart."""
    from inference.bundle import load_bundle
    from inference.gallery import gallery_path_for, load_gallery
    from stream.service.gallery_watch import GalleryWatcher

    bundle_path = shutil.copy(tiny_bundle, tmp_path / "shop.bundle")
    bundle = load_bundle(bundle_path)
    stop = threading.Event()
    config = make_config([{"id": "counter", "source": "synthetic:hold"}], model={"spec": str(bundle_path)},
                         http={"enabled": True, "listen": "127.0.0.1:0", "preview_fps": 10})
    pipeline = Pipeline(config, bundle.to_classifier(bundle_path), stop)
    watcher = GalleryWatcher(pipeline.model, bundle_path, bundle.labels, bundle.model_id, bundle.features, stop,
                             interval=0.2)
    watcher.load_now()
    pipeline.start()
    watcher.start()
    card = '[data-camera="counter"]'
    try:
        page.goto(pipeline.web.url)
        page.click(f"{card} .add-product")
        page.fill(f"{card} .enroll-label", "lulu")
        page.fill(f"{card} .enroll-seconds", "4")
        page.click(f"{card} .enroll-record")
        page.wait_for_function(f"""() => !document.querySelector('{card} .enroll-save').hidden
                                        || document.querySelector('{card} .enroll-status.error')""")
        checked = page.text_content(f"{card} .enroll-status")
        assert page.is_visible(f"{card} .enroll-save"), checked
        assert "views kept" in checked and "preview:" in checked and "lulu" in checked
        assert page.is_visible(f"{card} .enroll-status.warning") == ("⚠ warning: the model can hardly tell" in checked)
        page.click(f"{card} .enroll-save")
        page.wait_for_function(f"""() => document.querySelector('{card} .enroll-status').textContent.startsWith('saved')""")
        assert load_gallery(gallery_path_for(bundle_path), bundle.model_id).labels == ("lulu",)
        page.wait_for_function(f"""() => [...document.querySelectorAll('{card} .topk .label')]
                                        .some((label) => label.textContent === 'lulu')""")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "web-add-product.png"), full_page=True)
    finally:
        stop.set()
        pipeline.shutdown()
        watcher.join(2)
