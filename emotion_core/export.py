"""Exporting a model folder's fast-engine files: ONNX fp32 with fused attention, and int8 checked on validation.

`model.onnx` is the PyTorch model exported and optimised by ONNX Runtime (attention fused). The
int8 file is that graph quantised, with scales fixed on the validation texts (quantize.py). Int8
moves every class score a little, so the export measures on the validation texts how close to a
tie a text must be for int8 to change its label, and stores that margin in the file for
`onnx-int8` to rescore those texts in fp32. A choice of layers kept in float that would rescore too many texts is not worth
writing. Both files carry the SHA-256 of the weights they came from, so a stale export is never
used (engines.py).
"""

import contextlib
import logging
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .config import DataConfig
from .engines import OnnxEngine, top_two_gap, weights_digest
from .errors import EmotionCoreError
from .evaluation import eval_data
from .model_folder import FLOAT_ONNX, INT8_ONNX, write_with
from .quantize import FIXED_SCALES, fix_scales

logger = logging.getLogger(__name__)

GUARD_AGREEMENT = 0.998  # validation labels = fp32 that int8's rescoring margin keeps: headroom over the 99.5% promised
MAX_RESCORED = 0.2  # an int8 export that would rescore more validation texts than this is not worth writing


def rescoring_margin(scores: np.ndarray, reference: np.ndarray, target: float = GUARD_AGREEMENT) -> float:
    """The smallest top-two gap below which rescoring `scores`' rows leaves `target` of labels = `reference`.

    0.0 when `scores` already agree that often. Every row with a gap under the margin is rescored,
    flipped or not; the rows flipped with wider gaps are the ones left, at most 1 - target of all.
    """
    gaps = top_two_gap(scores)
    flipped = np.sort(gaps[scores.argmax(axis=1) != reference])
    allowed = int(len(reference) * (1 - target) + 1e-9)
    if len(flipped) <= allowed:
        return 0.0
    return float(np.nextafter(flipped[len(flipped) - allowed - 1], np.inf))


def float_layer_choices(layers: int) -> list[tuple[int, ...]]:
    """Which layers' feed-forward to keep in float, cheapest first: none; the first; then the last too; then more.

    The first layer's feed-forward is the most sensitive to int8 (on the first bundled model,
    quantizing it flipped many times as many labels as any other); each further choice costs some speed. With near-ties
    rescored in fp32, all-int8 is the fastest on the bundled model (docs/benchmarks.md).
    """
    order = [0, layers - 1, 1, layers - 2, 2][:max(1, layers)]
    return [tuple(sorted(set(order[:n]))) for n in range(len(order) + 1)]


def export_onnx(model: torch.nn.Module, folder: Path, score: Callable[[OnnxEngine], np.ndarray] | None = None) -> list[Path]:
    """Export the model to ONNX, fuse it for ORT: `folder/model.onnx`; quantize it: `model.int8.onnx`.

    Eager attention exports the classic pattern that ORT fuses into one (quantizable) Attention
    op. The fp32 file gives the labels of fp32. `score` (an engine's class scores for the
    validation texts) fixes the int8 file's scales, checks it and sets its rescoring margin;
    without it, only the fp32 file is written. Returns the files written.
    """
    from onnxruntime.transformers.optimizer import optimize_model

    folder = Path(folder).resolve()  # absolute: the export runs inside a temporary working folder
    attention = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with tempfile.TemporaryDirectory(prefix="emotion-onnx-") as tmp, contextlib.chdir(tmp):
            fp32, fused, int8 = (Path(tmp) / name for name in ("plain.onnx", FLOAT_ONNX, INT8_ONNX))
            export_fp32(model.eval(), fp32)
            config = model.config
            heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_heads", 0)
            hidden = getattr(config, "hidden_size", None) or getattr(config, "dim", 0)
            layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers", 1)
            optimize_model(str(fp32), model_type="bert", num_heads=heads, hidden_size=hidden).save_model_to_file(str(fused))
            props = quantize_checked(fused, int8, layers, score)
            written = [stamp_and_move(fused, folder, halve=True)]
            if props is None:
                (folder / INT8_ONNX).unlink(missing_ok=True)
            else:
                written.append(stamp_and_move(int8, folder, props=props))
    finally:
        model.set_attn_implementation(attention)
    for path in written:
        logger.info("exported %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return written


def quantize_checked(fused: Path, int8: Path, layers: int, score: Callable | None) -> dict | None:
    """Quantize `fused` into `int8`: the metadata the int8 file needs, or None when no choice is worth writing.

    Choices of layers whose feed-forward stays in float, cheapest first: the first whose
    rescoring margin (GUARD_AGREEMENT of validation labels = fp32) rescores at most MAX_RESCORED.
    Int8's scales are fixed on the validation texts (quantize.py), so without them (`score` None)
    no int8 file is written.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    if score is None:
        logger.warning("no validation texts: int8 is not written (its scales are fixed on them; export with --data)")
        return None
    feed_forward = [n.name for n in onnx_nodes(fused) if n.op_type == "MatMul" and "attention" not in n.name]
    reference = score(OnnxEngine(fused, "onnx")).argmax(axis=1)
    for keep in float_layer_choices(layers):
        names = [name for name in feed_forward if any(f"layer.{i}/" in name for i in keep)]
        quantize_dynamic(str(fused), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_exclude=names, extra_options={"DefaultTensorType": 1})  # 1: float outputs of fused ops
        fix_scales(int8, score)
        scores = score(OnnxEngine(int8))
        margin = rescoring_margin(scores, reference)
        near, same = top_two_gap(scores) < margin, scores.argmax(axis=1) == reference
        logger.info("int8 export, feed-forward in float for layers %s: %.2f%% labels = fp32; %.2f%% rescoring the "
                    "%.1f%% of texts whose top two scores are within %.3f", ", ".join(map(str, keep)) or "none",
                    100 * same.mean(), 100 * (near | same).mean(), 100 * near.mean(), margin)
        if near.mean() <= MAX_RESCORED:
            return {"rescoring_margin": repr(margin), FIXED_SCALES: "1"}
    logger.warning("no int8 export keeps %.1f%% of labels identical rescoring at most %.0f%% of texts; none written",
                   100 * GUARD_AGREEMENT, 100 * MAX_RESCORED)
    return None


def export_fp32(model: torch.nn.Module, path: Path) -> None:
    """TorchScript export: one file, dynamic batch size and length."""
    example = torch.ones((2, 8), dtype=torch.long)
    with warnings.catch_warnings():  # tracer notes on shape checks that hold for every padded batch
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model, (example, example), str(path), input_names=["input_ids", "attention_mask"], output_names=["logits"],
            opset_version=17, dynamo=False,
            dynamic_axes={"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"},
                          "logits": {0: "batch"}},
        )


def onnx_nodes(path: Path) -> list:
    """The nodes of an ONNX graph."""
    import onnx

    return list(onnx.load(str(path)).graph.node)


def stamp_and_move(path: Path, folder: Path, halve: bool = False, props: dict | None = None) -> Path:
    """Record which weights the file came from (and `props`), then move it into the folder atomically.

    With `halve`, float weights that fp16 holds exactly (all of them, for a model saved with
    --save-fp16) are stored as fp16 behind a Cast, which ORT folds away when it loads the file:
    half the size on disk, the same numbers.
    """
    import onnx

    graph = onnx.load(str(path))
    if halve:
        store_exact_fp16(graph)
    onnx.helper.set_model_props(graph, {"source_sha256": weights_digest(folder)} | (props or {}))
    return write_with(folder / path.name, lambda partial: onnx.save(graph, str(partial)))


def store_exact_fp16(graph) -> None:
    """Turn fp32 initializers that round-trip through fp16 unchanged into fp16 ones plus a Cast node."""
    from onnx import TensorProto, helper, numpy_helper

    casts, initializers = [], []
    for tensor in graph.graph.initializer:
        values = numpy_helper.to_array(tensor)
        if tensor.data_type == TensorProto.FLOAT and values.size >= 1024:
            half = values.astype(np.float16)
            if np.array_equal(half.astype(np.float32), values):
                tensor = numpy_helper.from_array(half, f"{tensor.name}.fp16")
                casts.append(helper.make_node("Cast", [tensor.name], [tensor.name.removesuffix(".fp16")], to=TensorProto.FLOAT))
        initializers.append(tensor)
    graph.graph.ClearField("initializer")
    graph.graph.initializer.extend(initializers)
    nodes = casts + list(graph.graph.node)
    graph.graph.ClearField("node")
    graph.graph.node.extend(nodes)


def export_folder(folder: str | Path, data_cfg: DataConfig | None = None) -> list[Path]:
    """Write the ONNX exports of an existing model folder, int8 checked against fp32 on its validation texts."""
    from .predict import Classifier

    classifier = Classifier.from_pretrained(folder, engine="torch")
    if classifier.folder is None:
        raise EmotionCoreError("export needs a local model folder (download a Hub model first).")
    if data_cfg is None and not classifier.run_config.get("sources"):
        logger.warning("%s does not say what data it was trained on: int8 not written (pass --data)", folder)
        return export_onnx(classifier.model, classifier.folder)
    texts = eval_data(classifier, data_cfg, splits=("validation",))["validation"][0]  # texts, labels, sources
    return export_onnx(classifier.model, classifier.folder, score=classifier.scorer(classifier.encode(texts)))
