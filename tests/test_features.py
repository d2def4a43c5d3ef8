"""Embeddings alongside logits: every local path gives the penultimate features from the same forward pass, beside
the logits `predict` gives, and close to torch fp32's."""

import pytest
import torch

from capture.catalog_dataset import render_class
from inference.backends.choice import Choice, why_unavailable
from inference.backends.select import RunnerFactory
from inference.bundle import load_bundle
from inference.model import TorchClassifier
from inference.preprocess import BatchPreprocessor, InputSpec
from inference.threads import ThreadPlan
from stream.service.calibration import rendered_frames
from tests.fakes import tiny_classifier

INT8_BUILD = pytest.mark.slow  # the torch int8 package takes about 40 s to build (once per session)
MIN_COSINE = {"fp32": 0.9999, "bf16": 0.995, "int8": 0.98}
"""Least mean cosine similarity with torch fp32's features, per precision. Measured with the tiny bundle: 1.0000
for fp32 and bf16 (both backends), 0.9997 for torch int8 and 0.9991 for OpenVINO int8 (its worst frame 0.990)."""
CHOICES = [Choice("torch", "fp32"), Choice("torch", "bf16"), pytest.param(Choice("torch", "int8"), marks=INT8_BUILD),
           Choice("openvino", "fp32"), Choice("openvino", "bf16"), Choice("openvino", "int8")]
RGB_UINT8_CHOICES = [pytest.param(Choice("torch", "int8"), marks=INT8_BUILD), Choice("openvino", "fp32"),
                     Choice("openvino", "int8")]


def tiny_with_head(labels: int = 3, crop: int = 32) -> TorchClassifier:
    """A torchvision-like tiny CNN (random, seeded) whose head is a final Linear named `fc` on 16 features."""
    torch.manual_seed(0)

    class Tiny(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, stride=2), torch.nn.ReLU(),
                                            torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
            self.fc = torch.nn.Linear(16, labels)

        def forward(self, batch: torch.Tensor) -> torch.Tensor:
            return self.fc(self.body(batch))

    return TorchClassifier(Tiny().eval(), [f"label{i}" for i in range(labels)], "tiny-head", InputSpec.for_crop(crop))


def available(choice: Choice) -> None:
    if why_unavailable(choice):
        pytest.skip(why_unavailable(choice))


@pytest.fixture(scope="module")
def factory(tiny_bundle, streamrec_cache) -> RunnerFactory:
    """Runners of the tiny bundle (a ResNet-18: 512 features), cached where test_backends finds them again."""
    classifier = load_bundle(tiny_bundle).to_classifier()
    return RunnerFactory(classifier, rendered_frames, streamrec_cache / "models", plan=ThreadPlan(1, 2), batch_size=8)


@pytest.fixture(scope="module")
def frames() -> list:
    return [image for label in range(1, 11) for image in render_class(label, 4, seed=55, out_size=224)]


@pytest.fixture(scope="module")
def batch(factory, frames) -> torch.Tensor:
    return BatchPreprocessor(factory.source.input_spec, len(frames))(frames).clone()


@pytest.fixture(scope="module")
def fp32(factory, batch) -> tuple[torch.Tensor, torch.Tensor]:
    """torch fp32's (logits, features) for `batch`: the reference."""
    return factory.source.predict_with_features(batch)


@pytest.mark.parametrize("choice", CHOICES, ids=str)
def test_each_path_gives_the_logits_of_predict_and_features_of_the_model_width(factory, batch, choice):
    available(choice)
    runner = factory(choice)
    logits, features = runner.predict_with_features(batch)
    assert features is not None and features.shape == (len(batch), 512) and features.dtype == torch.float32
    assert logits.shape == (len(batch), len(runner.labels)) and logits.dtype == torch.float32
    torch.testing.assert_close(logits, runner.predict(batch), rtol=0, atol=1e-5)


@pytest.mark.parametrize("choice", CHOICES, ids=str)
def test_each_paths_features_are_close_to_fp32s_and_its_top1_agrees(factory, batch, fp32, choice):
    available(choice)
    logits, features = factory(choice).predict_with_features(batch)
    cosine = float(torch.nn.functional.cosine_similarity(features, fp32[1], dim=1).mean())
    agreement = float((logits.argmax(1) == fp32[0].argmax(1)).float().mean())
    assert cosine >= MIN_COSINE[choice.precision], f"{choice}: mean cosine {cosine:.4f}"
    assert agreement >= 0.95, f"{choice}: top-1 agreement {agreement:.1%}"  # as in test_backends: a tiny 48 px model


@pytest.mark.parametrize("choice", RGB_UINT8_CHOICES, ids=str)
def test_rgb_uint8_crops_give_the_features_of_the_normalized_floats(factory, frames, batch, choice):
    available(choice)
    runner = factory(choice)
    crops = BatchPreprocessor(runner.input_spec, len(frames), rgb_uint8=True)(frames)
    from_crops, from_floats = runner.predict_with_features(crops), runner.predict_with_features(batch)
    torch.testing.assert_close(from_crops[0], from_floats[0], rtol=0, atol=1e-4)
    torch.testing.assert_close(from_crops[1], from_floats[1], rtol=0, atol=1e-4)


def test_the_fp32_runner_gives_the_plain_models_logits(factory, batch):
    logits, _features = factory(Choice("torch", "fp32")).predict_with_features(batch)
    torch.testing.assert_close(logits, factory.source.module(batch).detach(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("choice", [Choice("torch", "fp32"), Choice("openvino", "fp32")], ids=str)
def test_a_model_without_a_final_fc_gives_its_logits_and_no_features(tmp_path, choice):
    """Also what a compiled model cached before the features gives: an output as wide as the labels."""
    available(choice)
    source = tiny_classifier()
    runner = RunnerFactory(source, rendered_frames, tmp_path, ThreadPlan(1, 1), batch_size=4)(choice)
    batch = torch.randn(4, 3, source.input_spec.crop, source.input_spec.crop)
    logits, features = runner.predict_with_features(batch)
    assert features is None
    torch.testing.assert_close(logits, source.predict(batch), rtol=0, atol=1e-4)

