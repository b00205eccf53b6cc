"""Inference engines: the ONNX exports, engine choice, stale exports, and agreement with fp32."""

import shutil

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from emotion_core import Classifier, EmotionCoreError
from emotion_core.cli import main as cli
from emotion_core.model_folder import FLOAT_ONNX, INT8_ONNX
from tests.helpers import SHARED_EMOTION, bundled_engine


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_neutral_model):
    """A copy of the tiny trained model with its ONNX files made anew by the export command, on its validation texts
    (a random model's int8 would flip too many near-ties to be written)."""
    folder = tmp_path_factory.mktemp("exported") / "model"
    shutil.copytree(tiny_neutral_model, folder)
    for file in (FLOAT_ONNX, INT8_ONNX):
        (folder / file).unlink()
    assert cli(["export", "--model", str(folder)]) == 0
    return folder


def test_export_writes_the_onnx_files_and_auto_uses_the_fastest(exported):
    assert (exported / INT8_ONNX).is_file() and (exported / FLOAT_ONNX).is_file()
    assert not list(exported.glob(".*tmp*"))
    assert Classifier.from_pretrained(exported).engine.name == "onnx-int8"
    (exported / INT8_ONNX).rename(exported / "aside.onnx")
    try:
        assert Classifier.from_pretrained(exported).engine.name == "onnx"
    finally:
        (exported / "aside.onnx").rename(exported / INT8_ONNX)


def test_every_engine_gives_a_distribution_close_to_fp32(exported):
    texts = ["i feel happy today", "so sad and lonely", "what a surprise that was, really"]
    reference = Classifier.from_pretrained(exported, engine="torch").predict_proba(texts)
    for engine in ("onnx", "onnx-int8"):
        probs = Classifier.from_pretrained(exported, engine=engine).predict_proba(texts)
        assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)
        assert np.abs(probs - reference).max() < 0.05, engine


def test_fp32_export_gives_the_numbers_of_fp32_from_half_the_bytes(exported):
    """The tiny model's weights are fp32: stored as they are. Rounded to fp16, they are stored as fp16."""
    import onnx

    texts = ["i feel happy today", "so sad and lonely"]
    reference = Classifier.from_pretrained(exported, engine="torch").logits(texts)
    assert np.abs(Classifier.from_pretrained(exported, engine="onnx").logits(texts) - reference).max() < 1e-4
    graph = onnx.load(str(exported / FLOAT_ONNX))
    assert not any(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.graph.initializer)  # fp32 weights kept whole
    half = shutil.copytree(exported, exported.parent / "half")
    weights = load_file(half / "model.safetensors")
    save_file({k: v.half().float() if v.is_floating_point() else v for k, v in weights.items()},
              half / "model.safetensors", metadata={"format": "pt"})
    assert cli(["export", "--model", str(half)]) == 0
    graph = onnx.load(str(half / FLOAT_ONNX))
    assert sum(t.data_type == onnx.TensorProto.FLOAT16 for t in graph.graph.initializer) >= 4  # the big matrices
    assert (half / FLOAT_ONNX).stat().st_size < 0.7 * (exported / FLOAT_ONNX).stat().st_size
    reference = Classifier.from_pretrained(half, engine="torch").logits(texts)
    assert np.abs(Classifier.from_pretrained(half, engine="onnx").logits(texts) - reference).max() < 1e-4


def test_engine_from_environment(exported, monkeypatch):
    monkeypatch.setenv("EMOTION_ENGINE", "torch")
    assert Classifier.from_pretrained(exported).engine.name == "torch"


def test_auto_without_exports_is_pytorch(tiny_model_dir):
    assert Classifier.from_pretrained(tiny_model_dir).engine.name == "torch"


@pytest.mark.parametrize("engine", ["onnx", "onnx-int8"])
def test_asking_for_onnx_without_the_file_says_how_to_make_it(tiny_model_dir, engine):
    with pytest.raises(EmotionCoreError, match=f"Engine {engine} is not available.*python -m emotion_core export --model"):
        Classifier.from_pretrained(tiny_model_dir, engine=engine)


def test_unknown_engine():
    with pytest.raises(EmotionCoreError, match="Unknown engine 'gpu'"):
        Classifier.from_pretrained(engine="gpu")


def test_stale_export_is_never_used(tmp_path, exported):
    folder = tmp_path / "retrained"
    shutil.copytree(exported, folder)
    weights = load_file(folder / "model.safetensors")
    save_file({k: v * 1.01 if v.is_floating_point() else v for k, v in weights.items()}, folder / "model.safetensors",
              metadata={"format": "pt"})
    assert Classifier.from_pretrained(folder).engine.name == "torch"
    for engine in ("onnx", "onnx-int8"):
        with pytest.raises(EmotionCoreError, match="exported from other weights"):
            Classifier.from_pretrained(folder, engine=engine)


@pytest.mark.slow
def test_bundled_default_engine_keeps_the_labels_of_fp32_on_validation():
    """The bundled model's default engine (int8 rescoring its near-ties in fp32, where the export wrote
    one; else fp32) keeps 99.5% of the validation labels of fp32."""
    from emotion_core.config import DataConfig
    from emotion_core.data import load_sources

    fast = Classifier.from_pretrained()
    assert fast.engine.name == bundled_engine()
    splits, _ = load_sources(DataConfig(data=[str(SHARED_EMOTION), str(SHARED_EMOTION.parent / "goemotions")],
                                        normalize="none"))
    ids = fast.encode(splits["validation"]["text"])
    reference = Classifier.from_pretrained(engine="torch").logits_of_ids(ids).argmax(axis=1)
    assert np.mean(fast.logits_of_ids(ids).argmax(axis=1) == reference) >= 0.995


def test_rescoring_margin_leaves_at_most_the_allowed_flips():
    from emotion_core.export import rescoring_margin

    reference = np.zeros(1000, dtype=int)
    scores = np.tile([3.0, 0.0], (1000, 1))  # every row: class 0 by a gap of 3
    assert rescoring_margin(scores, reference) == 0.0
    gaps = [0.1, 0.2, 0.3, 0.4, 0.5]
    scores[:5] = [[0.0, gap] for gap in gaps]  # five flips to class 1; 99.8% of 1000 allows two
    margin = rescoring_margin(scores, reference)
    assert 0.3 < margin < 0.3001
    assert rescoring_margin(scores, reference, target=0.995) == 0.0  # 99.5% allows all five


def test_guarded_engine_rescores_only_near_ties_cut_to_their_length():
    from emotion_core.engines import GuardedEngine

    class Fake:
        def __init__(self, name, scores):
            self.name, self.batch_size, self.scores, self.seen = name, 32, scores, []

        def logits(self, input_ids, attention_mask):
            self.seen.append(input_ids.shape)
            return np.array(self.scores[:len(input_ids)], dtype=np.float32)

    fast = Fake("onnx-int8", [[2.0, 0.0], [0.0, 0.05], [1.0, 0.9]])
    exact = Fake("onnx", [[5.0, 6.0], [7.0, 8.0]])
    engine = GuardedEngine(fast, exact, margin=0.2)
    ids = np.ones((3, 10), dtype=np.int64)
    mask = np.zeros((3, 10), dtype=np.int64)
    mask[0, :10], mask[1, :4], mask[2, :6] = 1, 1, 1
    out = engine.logits(ids, mask)
    assert engine.name == "onnx-int8" and exact.seen == [(2, 6)]  # rows 1 and 2, as wide as the longer
    assert out.tolist() == [[2.0, 0.0], [5.0, 6.0], [7.0, 8.0]]


def rigged_scores(flips: int, gap: float):
    """A `score` for export_onnx: fp32 gives class 0 to 1,000 texts; int8 flips `flips` of them by `gap`. The pass
    that fixes int8's scales runs a batch through the file, as the validation texts would."""
    def score(engine):
        if engine.name == "calibration":
            engine.logits(np.ones((2, 8), dtype=np.int64), np.ones((2, 8), dtype=np.int64))
        scores = np.tile([3.0, 0.0], (1000, 1)).astype(np.float32)
        if engine.name == "onnx-int8":
            scores[:flips] = [0.0, gap]
        return scores
    return score


def run_on(engine) -> tuple:
    """The engines that a ConcurrentEngine (2 threads or more) runs batches on; others run on themselves."""
    from emotion_core.engines import ConcurrentEngine

    return (engine.alone, engine.shared) if isinstance(engine, ConcurrentEngine) else (engine,)


def test_export_sets_the_rescoring_margin_from_validation_scores(tmp_path, tiny_model_dir, caplog):
    import logging

    import onnx

    from emotion_core.engines import GuardedEngine, OnnxEngine
    from emotion_core.export import export_onnx

    model = Classifier.from_pretrained(tiny_model_dir, engine="torch").model
    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    with caplog.at_level(logging.INFO, logger="emotion_core.export"):
        written = export_onnx(model, folder, score=rigged_scores(flips=10, gap=0.25))
    assert written == [folder / FLOAT_ONNX, folder / INT8_ONNX]
    assert "99.00% labels = fp32; 100.00% rescoring the 1.0% of texts whose top two scores are within 0.250" in caplog.text
    meta = {p.key: p.value for p in onnx.load(str(folder / INT8_ONNX)).metadata_props}
    assert 0.25 < float(meta["rescoring_margin"]) < 0.2501
    engine = Classifier.from_pretrained(folder).engine
    for guarded in run_on(engine):
        assert isinstance(guarded, GuardedEngine) and guarded.name == "onnx-int8" and guarded.exact.name == "onnx"
    (folder / FLOAT_ONNX).unlink()
    with pytest.raises(EmotionCoreError, match="onnx-int8 is not available: it rescores near-ties with model.onnx, "
                                               "and no model.onnx in the model folder"):
        Classifier.from_pretrained(folder, engine="onnx-int8")
    export_onnx(model, folder, score=rigged_scores(flips=0, gap=1.0))  # int8 agrees: nothing to rescore
    assert all(type(engine) is OnnxEngine for engine in run_on(Classifier.from_pretrained(folder).engine))


@pytest.mark.parametrize("threads", [1, 2])
def test_pieces_of_a_document_are_rescored_only_when_their_sentences_are_shown(tmp_path, tiny_model_dir, set_threads,
                                                                               threads):
    """predict reads a long document's pieces in int8 alone (only its answer is returned); analyze, which returns
    each sentence's label, rescores them; a text scored whole is rescored either way."""
    from emotion_core.documents import combine
    from emotion_core.engines import GuardedEngine
    from emotion_core.export import export_onnx

    set_threads(threads)
    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    export_onnx(Classifier.from_pretrained(folder, engine="torch").model, folder, score=rigged_scores(10, 0.25))
    classifier = Classifier.from_pretrained(folder)
    rescored = []
    for guarded in run_on(classifier.engine):
        assert isinstance(guarded, GuardedEngine)
        guarded.margin = np.inf  # every text is near a tie: each one the engine guards is rescored
        run = guarded.exact.logits
        guarded.exact.logits = lambda ids, mask, run=run: rescored.append(len(ids)) or run(ids, mask)
    document = " ".join(f"I am sad about number {i} today." for i in range(20)) + " I am furious."
    assert len(classifier.encode([document], truncate=False)[0]) > classifier.max_length
    probs = classifier.predict_proba([document])
    assert rescored == []
    read = classifier.analyze([document])[0]
    assert sum(rescored) == len(read.sentences) == 21 and not read.whole
    pieces = classifier.logits_of_ids(classifier.split([document], [False])[1], engine=classifier.document_engine)
    assert np.allclose(probs[0], combine(classifier.calibration.probabilities(pieces), classifier.labels), atol=1e-6)
    rescored.clear()
    classifier.predict_proba(["I am sad today.", document])
    assert rescored == [1]  # the short text, scored whole


def test_export_refuses_int8_that_would_rescore_too_much(tmp_path, tiny_model_dir, caplog):
    import logging

    from emotion_core.export import MAX_RESCORED, export_onnx, float_layer_choices

    assert float_layer_choices(6) == [(), (0,), (0, 5), (0, 1, 5), (0, 1, 4, 5), (0, 1, 2, 4, 5)]
    assert float_layer_choices(1) == [(), (0,)]
    model = Classifier.from_pretrained(tiny_model_dir, engine="torch").model
    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    (folder / INT8_ONNX).write_bytes(b"an older export")
    with caplog.at_level(logging.INFO, logger="emotion_core.export"):
        written = export_onnx(model, folder, score=rigged_scores(flips=int(1000 * MAX_RESCORED) + 50, gap=0.25))
    assert written == [folder / FLOAT_ONNX] and not (folder / INT8_ONNX).exists()
    assert caplog.text.count("labels = fp32") == 2 and "no int8 export keeps 99.8%" in caplog.text  # one layer: two choices


def test_export_command_checks_against_the_validation_split(tmp_path, tiny_model_dir, toy_dir, caplog):
    import logging

    folder = shutil.copytree(tiny_model_dir, tmp_path / "model")
    with caplog.at_level(logging.INFO, logger="emotion_core.export"):
        code = cli(["export", "--model", str(folder), "--data", str(toy_dir)])
    assert code == 0 and "labels = fp32" in caplog.text


@pytest.fixture()
def set_threads():
    """Sets torch's (and so ORT's) thread count for one test, whatever this machine has; restores it after."""
    import torch

    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def test_batches_run_side_by_side_on_single_threaded_sessions(exported, set_threads):
    """Many batches go to the pool's threads, two at once, with the scores of running them in turn;
    one batch (one text) runs on the session with both threads, in the caller's thread."""
    import threading

    from emotion_core.engines import ConcurrentEngine

    set_threads(2)
    classifier = Classifier.from_pretrained(exported, engine="onnx-int8")
    engine = classifier.engine
    assert isinstance(engine, ConcurrentEngine) and engine.name == "onnx-int8"
    threads = lambda e: e.session.get_session_options().intra_op_num_threads  # noqa: E731
    assert threads(engine.alone) == 2 and threads(engine.shared) == 1
    both_running = threading.Barrier(2, timeout=10)  # broken (and the test failed) unless two batches run at once
    calls = {"alone": [], "shared": []}
    for key in calls:
        run = getattr(engine, key).logits

        def spy(ids, mask, key=key, run=run):
            calls[key].append(threading.current_thread().name)
            if key == "shared" and len(calls[key]) <= 2:
                both_running.wait()
            return run(ids, mask)
        getattr(engine, key).logits = spy
    texts = [f"i feel {'so ' * (i % 7)}happy {i} times today" for i in range(100)]
    probs = classifier.predict_proba(texts, batch_size=8)
    assert len(calls["shared"]) == 13 and calls["alone"] == []
    assert all(name.startswith("emotion-engine") for name in calls["shared"])
    in_turn = classifier.logits_of_ids(classifier.encode(texts), batch_size=8, engine=engine.alone)
    assert np.array_equal(probs.argmax(axis=1), in_turn.argmax(axis=1))
    assert np.abs(probs - classifier.calibration.probabilities(in_turn)).max() < 1e-5
    calls["alone"].clear()
    classifier.predict("i feel happy")
    assert calls["alone"] == [threading.current_thread().name] and len(calls["shared"]) == 13


def test_one_call_keeps_only_as_many_batches_in_flight_as_workers():
    """A whole file is not queued at once: a second caller's batches wait behind two, not behind all."""
    import threading

    from emotion_core.engines import ConcurrentEngine

    class Slow:
        name, batch_size = "fake", 8

        def __init__(self):
            self.running, self.most, self.lock = 0, 0, threading.Lock()

        def logits(self, input_ids, attention_mask):
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
            threading.Event().wait(0.01)
            with self.lock:
                self.running -= 1
            return input_ids[:, :1].astype(np.float32)

    shared = Slow()
    engine = ConcurrentEngine(Slow(), shared, workers=2)
    padded = []
    batches = (padded.append(i) or (np.full((1, 1), i), np.ones((1, 1))) for i in range(10))
    results = engine.map(batches)
    first = next(results)
    assert first.item() == 0 and len(padded) <= 3  # batches are made as they are needed, not all up front
    assert [r.item() for r in results] == list(range(1, 10)) and shared.most == 2


def test_one_thread_runs_batches_in_turn(exported, set_threads):
    from emotion_core.engines import OnnxEngine

    set_threads(1)
    assert type(Classifier.from_pretrained(exported, engine="onnx").engine) is OnnxEngine
