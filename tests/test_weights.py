"""Weights resolution (explicit path → hub cache → download only if allowed → exit 78) and `model fetch`."""

import hashlib
import http.server
import socket
import threading

import pytest
import torch
from torchvision.models import resnet18

from inference.errors import FetchError, ModelError, WeightsNotFound
from inference.imagenet import MODEL_ID, load_imagenet_resnet18
from inference.weights import RESNET18_FILE, fetch_weights, resolve_resnet18_weights
from tests.conftest import cli_env, run_cli


def test_checkpoint_in_torch_home_cache_is_found_and_loaded(torch_home, resnet18_checkpoint):
    classifier = load_imagenet_resnet18(weights=None, allow_download=False)
    assert classifier.model_id == MODEL_ID and len(classifier.labels) == 1000 and classifier.labels[0] == "tench"
    reference = resnet18()
    reference.load_state_dict(torch.load(resnet18_checkpoint, weights_only=True))
    batch = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        assert torch.allclose(classifier.predict(batch), reference.eval()(batch), atol=1e-5)


def test_explicit_weights_path_wins_over_the_cache(empty_torch_home, resnet18_checkpoint):
    assert resolve_resnet18_weights(resnet18_checkpoint, allow_download=False) == resnet18_checkpoint


def test_missing_explicit_path_names_the_file(empty_torch_home, tmp_path):
    with pytest.raises(WeightsNotFound, match="model.weights names a missing file.*nope.pth"):
        resolve_resnet18_weights(tmp_path / "nope.pth", allow_download=False)


def test_missing_weights_exit_78_with_instructions_and_no_download(empty_torch_home):
    done = run_cli("run", "--headless", "--source", "synthetic", "--duration", "5",
                   env=cli_env(TORCH_HOME=str(empty_torch_home)))
    assert done.returncode == 78
    expected = empty_torch_home / "hub" / "checkpoints" / RESNET18_FILE
    assert str(expected) in done.stderr and "streamrec model fetch" in done.stderr
    assert "Traceback" not in done.stderr
    assert not any(empty_torch_home.rglob("*.pth")), "nothing may be downloaded"


def test_truncated_checkpoint_is_refused(tmp_path, resnet18_checkpoint):
    truncated = tmp_path / RESNET18_FILE
    truncated.write_bytes(resnet18_checkpoint.read_bytes()[:100_000])
    with pytest.raises(ModelError, match="truncated"):
        load_imagenet_resnet18(truncated, allow_download=False)


def test_checkpoint_of_another_shape_is_refused(tmp_path):
    wrong = tmp_path / "wrong.pth"
    torch.save(resnet18(num_classes=10).state_dict(), wrong)
    with pytest.raises(ModelError, match="do not fit ResNet-18 with 1000 classes"):
        load_imagenet_resnet18(wrong, allow_download=False)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_model_fetch_offline_fails_with_a_clear_message(tmp_path):
    url = f"http://127.0.0.1:{closed_port()}/resnet18-f37072fd.pth"
    done = run_cli("model", "fetch", "--dest", str(tmp_path), "--url", url)
    assert done.returncode == 1
    assert "cannot download" in done.stderr and "offline" in done.stderr
    assert not list(tmp_path.iterdir()), "no partial file may be left behind"


class _OneFile(http.server.BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


@pytest.fixture
def file_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _OneFile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{RESNET18_FILE}"
    server.shutdown()


def test_model_fetch_refuses_a_file_with_the_wrong_checksum(tmp_path, file_server):
    _OneFile.body = b"not the weights" * 1000
    done = run_cli("model", "fetch", "--dest", str(tmp_path), "--url", file_server)
    assert done.returncode == 1 and "checksum mismatch" in done.stderr
    assert not list(tmp_path.iterdir())


def test_fetch_moves_a_verified_file_into_place(tmp_path, file_server):
    _OneFile.body = b"pretend weights" * 1000
    prefix = hashlib.sha256(_OneFile.body).hexdigest()[:8]
    path = fetch_weights(tmp_path, url=file_server, hash_prefix=prefix, progress=False)
    assert path == tmp_path / RESNET18_FILE and path.read_bytes() == _OneFile.body


def test_model_verify_reports_a_file_that_is_not_the_official_one(resnet18_checkpoint):
    done = run_cli("model", "verify", str(resnet18_checkpoint))
    assert done.returncode == 78 and "does NOT match" in done.stdout


def test_fetch_error_is_a_fetch_error(tmp_path):
    with pytest.raises(FetchError):
        fetch_weights(tmp_path, url=f"http://127.0.0.1:{closed_port()}/x", progress=False)


def test_the_imagenet_labels_file_is_torchvisions_list():
    """Labels come from a file so that a start need not import torchvision (and torch._dynamo with it)."""
    from torchvision.models import ResNet18_Weights

    from inference.imagenet import imagenet_labels

    assert imagenet_labels() == tuple(ResNet18_Weights.IMAGENET1K_V1.meta["categories"])


def test_a_start_that_runs_a_ready_made_model_imports_neither_torchvision_nor_dynamo(tiny_bundle):
    import subprocess
    import sys

    code = ("import sys\nfrom inference.bundle import load_bundle\nimport stream.service.runner\n"
            f"classifier = load_bundle({str(tiny_bundle)!r}).to_classifier()\n"
            "from inference.backends.select import weights_key\nweights_key(classifier)\n"
            "import inference.backends.torch_int8, inference.backends.openvino_runner\n"
            "print(sorted(m for m in ('torchvision', 'torch._dynamo', 'torch._inductor') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr


@pytest.mark.parametrize("classes", [1000, 3])
def test_the_shapes_checked_without_torchvision_are_torchvisions(classes):
    from inference.imagenet import resnet18_shapes

    expected = {name: tuple(tensor.shape) for name, tensor in resnet18(num_classes=classes).state_dict().items()}
    assert resnet18_shapes(classes) == expected
