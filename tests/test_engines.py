"""Inference engines: the int8 ONNX export, engine choice, stale exports, and agreement with fp32."""

import shutil

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from conftest import SHARED_EMOTION, bundled_engine
from emotion_core import Classifier, EmotionCoreError
from emotion_core.cli import main as cli
from emotion_core.engines import ONNX_FILE, cpu_has_bf16


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_model_dir):
    """A copy of the tiny model with its int8 ONNX file, made by the export command."""
    folder = tmp_path_factory.mktemp("exported") / "model"
    shutil.copytree(tiny_model_dir, folder)
    assert cli(["export", "--model", str(folder)]) == 0
    return folder


def test_export_writes_the_onnx_file_and_auto_uses_it(exported):
    assert (exported / ONNX_FILE).is_file()
    assert not list(exported.glob(".*tmp*"))
    assert Classifier.from_pretrained(exported).engine.name == "onnx-int8"


def test_every_engine_gives_a_distribution_close_to_fp32(exported):
    texts = ["i feel happy today", "so sad and lonely", "what a surprise that was, really"]
    reference = Classifier.from_pretrained(exported, engine="torch").predict_proba(texts)
    for engine in ("bf16", "onnx-int8"):
        probs = Classifier.from_pretrained(exported, engine=engine).predict_proba(texts)
        assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
        assert np.abs(probs - reference).max() < 0.05, engine


def test_engine_from_environment(exported, monkeypatch):
    monkeypatch.setenv("EMOTION_ENGINE", "torch")
    assert Classifier.from_pretrained(exported).engine.name == "torch"


def test_auto_without_export_is_bf16_where_the_cpu_has_it(tiny_model_dir):
    assert Classifier.from_pretrained(tiny_model_dir).engine.name == ("bf16" if cpu_has_bf16() else "torch")


def test_asking_for_onnx_without_the_file_says_how_to_make_it(tiny_model_dir):
    with pytest.raises(EmotionCoreError, match="python -m emotion_core export --model"):
        Classifier.from_pretrained(tiny_model_dir, engine="onnx-int8")


def test_unknown_engine():
    with pytest.raises(EmotionCoreError, match="Unknown engine 'gpu'"):
        Classifier.from_pretrained(engine="gpu")


def test_stale_export_is_never_used(tmp_path, exported):
    folder = tmp_path / "retrained"
    shutil.copytree(exported, folder)
    weights = load_file(folder / "model.safetensors")
    save_file({k: v * 1.01 if v.is_floating_point() else v for k, v in weights.items()}, folder / "model.safetensors",
              metadata={"format": "pt"})
    assert Classifier.from_pretrained(folder).engine.name in ("bf16", "torch")
    with pytest.raises(EmotionCoreError, match="exported from other weights"):
        Classifier.from_pretrained(folder, engine="onnx-int8")


@pytest.mark.slow
def test_bundled_default_engine_keeps_the_labels_of_fp32_on_validation():
    """The bundled model runs int8 only with an export that keeps 99.5% of validation labels; else bf16 / fp32."""
    from emotion_core.config import BUNDLED_MODEL, DataConfig
    from emotion_core.data import load_sources
    from emotion_core.engines import onnx_status

    fast = Classifier.from_pretrained()
    assert fast.engine.name == bundled_engine()
    if fast.engine.name != "onnx-int8":  # the export found no int8 choice that keeps the labels, and wrote none
        assert "no model.int8.onnx" in onnx_status(BUNDLED_MODEL)
        return
    splits, _ = load_sources(DataConfig(data=[str(SHARED_EMOTION), str(SHARED_EMOTION.parent / "goemotions")],
                                        normalize="none"))
    ids = fast.encode(splits["validation"]["text"])
    reference = Classifier.from_pretrained(engine="torch").agreement(ids)
    assert reference(fast.engine) >= 0.995


def test_export_keeps_more_layers_in_float_until_labels_agree(tmp_path, tiny_model_dir, caplog):
    import logging

    import torch

    from emotion_core.engines import export_onnx, float_layer_choices

    assert float_layer_choices(6) == [(0,), (0, 5), (0, 1, 5), (0, 1, 4, 5), (0, 1, 2, 4, 5)]
    assert float_layer_choices(1) == [(0,)]
    model = Classifier.from_pretrained(tiny_model_dir, engine="torch").model
    seen = []
    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    with caplog.at_level(logging.INFO, logger="emotion_core.engines"):
        assert export_onnx(model, folder, agreement=lambda engine: seen.append(engine) or 0.9) is None
    assert len(seen) == 1 and not (folder / ONNX_FILE).exists()  # one layer: one choice, refused, nothing written
    assert "90.00% labels = fp32" in caplog.text
    written = export_onnx(model, folder, agreement=lambda engine: 1.0)
    assert written == folder / ONNX_FILE and isinstance(model, torch.nn.Module)


def test_export_command_checks_against_the_validation_split(tmp_path, tiny_model_dir, toy_dir, caplog):
    import logging

    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    with caplog.at_level(logging.INFO, logger="emotion_core.engines"):
        code = cli(["export", "--model", str(folder), "--data", str(toy_dir)])
    assert code == 0 and "labels = fp32" in caplog.text
