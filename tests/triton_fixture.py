"""A real Triton Inference Server on loopback, from the `nvidia-pytriton` package in its own virtual environment
(it pins numpy < 2; `make test` creates it, STREAMREC_TRITON_VENV says where). This server build has no ONNX
Runtime backend, so an exported model is served through a small Python-backend model.py running ONNX Runtime."""

import os
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Sequence

import pytest

TRITON_VENV = Path(os.environ.get("STREAMREC_TRITON_VENV", Path.home() / ".cache/streamrec/triton-venv"))
PYTHON_MODEL = '''import time

import numpy as np
import onnxruntime
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        folder = f"{args['model_repository']}/{args['model_version']}/model.onnx"
        self.session = onnxruntime.InferenceSession(folder, providers=["CPUExecutionProvider"])

    def execute(self, requests):
        responses = []
        time.sleep(DELAY_S)
        for request in requests:
            crops = pb_utils.get_input_tensor_by_name(request, "input").as_numpy()
            logits = self.session.run(["logits"], {"input": crops})[0].astype(np.float32)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("logits", logits)]))
        return responses
'''


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def served_by_python_backend(model_folder: Path, delay_s: float = 0.0) -> None:
    """Turn an exported ONNX model folder into one Triton's Python backend runs (same model.onnx, same config);
    `delay_s` makes every execution that much slower (a busy or overloaded server)."""
    config = model_folder / "config.pbtxt"
    config.write_text(config.read_text().replace('platform: "onnxruntime_onnx"', 'backend: "python"'))
    (model_folder / "1" / "model.py").write_text(PYTHON_MODEL.replace("DELAY_S", repr(delay_s)))


class TritonServer:
    """tritonserver on loopback ports; stop() and start() again on the same ports. `extra_args` go on its command
    line (TLS, restricted protocols)."""

    def __init__(self, repository: Path, scratch: Path, extra_args: Sequence[str] = ()) -> None:
        packages = next(TRITON_VENV.glob("lib/python3*/site-packages"))
        server = packages / "pytriton" / "tritonserver"
        self.backends = scratch / "backends"
        shutil.copytree(server / "backends" / "python", self.backends / "python")
        version = packages.parent.name.removeprefix("python")  # the stub must match the environment's python
        shutil.copy(server / "python_backend_stubs" / version / "triton_python_backend_stub", self.backends / "python")
        libdir = subprocess.run([str(TRITON_VENV / "bin" / "python"), "-c",
                                 "import sysconfig; print(sysconfig.get_config_var('LIBDIR'))"],
                                capture_output=True, text=True, check=True).stdout.strip()
        self.env = {**os.environ, "PYTHONPATH": str(packages), "VIRTUAL_ENV": str(TRITON_VENV),
                    "PATH": f"{TRITON_VENV / 'bin'}:{os.environ.get('PATH', '')}",  # the stub's python is found here
                    "LD_LIBRARY_PATH": f"{libdir}:{packages / 'nvidia_pytriton.libs'}"}
        self.binary, self.repository, self.log = server / "bin" / "tritonserver", repository, scratch / "server.log"
        self.http_port, self.grpc_port = free_port(), free_port()
        self.extra_args = list(extra_args)
        self.process = None
        self.start()

    def start(self, timeout_s: float = 60) -> None:
        command = [str(self.binary), "--model-repository", str(self.repository), "--backend-directory",
                   str(self.backends), "--http-address", "127.0.0.1", "--http-port", str(self.http_port),
                   "--grpc-address", "127.0.0.1", "--grpc-port", str(self.grpc_port), "--allow-metrics", "false",
                   *self.extra_args]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.process.poll() is None:
            if self.ready():
                return
            time.sleep(0.1)
        raise RuntimeError(f"tritonserver did not become ready: {self.log.read_text()[-2000:]}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/v2/health/ready", timeout=1) as reply:
                return reply.status == 200
        except OSError:
            return False

    def kill(self) -> None:
        """End the server at once (SIGKILL), as a crash or a power cut would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(5)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def serve_exported(classifier, name: str, folder: Path) -> TritonServer:
    """`classifier` exported by `export_triton` as `name` under `folder`, served on loopback (skips the test when
    there is no Triton server)."""
    from inference.triton_export import export_triton

    require_triton()
    repository = folder / "repository"
    served_by_python_backend(export_triton(classifier, repository, name))
    return TritonServer(repository, folder)


def require_triton() -> None:
    if not any(TRITON_VENV.glob("lib/python3*/site-packages/pytriton/tritonserver/bin/tritonserver")):
        pytest.skip(f"no Triton server in {TRITON_VENV} (make test installs it: scripts/install-triton-server)")
