"""Inference engines: the same model run three ways on a CPU, picked by measurement.

| engine      | what                                              | speed vs fp32 | labels vs fp32 |
| ----------- | ------------------------------------------------- | ------------- | -------------- |
| `torch`     | PyTorch fp32 (the reference)                      | 1x            | 100%           |
| `bf16`      | PyTorch with bfloat16 autocast (AVX-512 BF16 CPUs) | ~1.6x         | 99.75%         |
| `onnx-int8` | ONNX Runtime, fused attention, int8 weights       | ~2.0x         | 99.85%         |

`auto` (the default) takes the fastest one this model folder and CPU allow. Figures: an earlier
bundled model on 2 AVX-512 cores, from `benchmarks/bench_inference.py` (docs/benchmarks.md). Some
models have no int8 export: none keeps 99.5% of their labels (the current bundled one among them).
"""

import contextlib
import hashlib
import logging
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .errors import EmotionCoreError

logger = logging.getLogger(__name__)

ENGINES = ("auto", "torch", "bf16", "onnx-int8")
ENGINE_ENV_VAR = "EMOTION_ENGINE"
ONNX_FILE = "model.int8.onnx"
MIN_AGREEMENT = 0.995  # labels identical to fp32 that an int8 export must keep, measured on validation texts


def cpu_has_bf16() -> bool:
    """True on CPUs with native bfloat16 arithmetic; elsewhere bf16 is emulated and slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def weights_digest(folder: Path) -> str:
    """SHA-256 of the safetensors weights, stored in the ONNX file so a stale export is never used."""
    digest = hashlib.sha256()
    with open(folder / "model.safetensors", "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class TorchEngine:
    """PyTorch in fp32, or with bfloat16 autocast."""

    def __init__(self, model: torch.nn.Module, bf16: bool = False):
        self.model, self.bf16 = model, bf16
        self.name = "bf16" if bf16 else "torch"

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Class scores for one padded batch."""
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            out = self.model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention_mask))
        return out.logits.float().numpy()


class OnnxEngine:
    """ONNX Runtime on the int8 export (`python -m emotion_core export`)."""

    name = "onnx-int8"

    def __init__(self, path: Path):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Class scores for one padded batch."""
        return self.session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]


def onnx_status(folder: Path | None) -> str | None:
    """Why the int8 export can't be used (None when it can)."""
    if folder is None or not (folder / ONNX_FILE).is_file():
        return f"no {ONNX_FILE} in the model folder (make one with: python -m emotion_core export --model FOLDER)"
    try:
        import onnx
        import onnxruntime  # noqa: F401
    except ImportError:
        return "onnxruntime is not installed"
    try:
        meta = {p.key: p.value for p in onnx.load(str(folder / ONNX_FILE), load_external_data=False).metadata_props}
        digest = weights_digest(folder)
    except Exception as exc:  # a damaged file, sharded weights: fall back, never crash the app
        return f"{ONNX_FILE} could not be checked ({type(exc).__name__})"
    if meta.get("source_sha256") != digest:
        return f"{ONNX_FILE} was exported from other weights; re-run python -m emotion_core export"
    return None


def load_engine(name: str | None, model: torch.nn.Module, folder: Path | None):
    """The engine asked for (argument, then $EMOTION_ENGINE, then `auto`), ready to run."""
    name = (name or os.environ.get(ENGINE_ENV_VAR) or "auto").lower()
    if name not in ENGINES:
        raise EmotionCoreError(f"Unknown engine {name!r}: choose one of {', '.join(ENGINES)}.")
    if name in ("auto", "onnx-int8"):
        problem = onnx_status(folder)
        if problem is None:
            try:
                return OnnxEngine(folder / ONNX_FILE)
            except Exception as exc:  # ONNX Runtime refused the file
                problem = f"ONNX Runtime could not load {ONNX_FILE} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        if name == "onnx-int8":
            raise EmotionCoreError(f"Engine onnx-int8 is not available: {problem}.")
        logger.info("not using onnx-int8: %s", problem)
    return TorchEngine(model, bf16=name == "bf16" or (name == "auto" and cpu_has_bf16()))


def float_layer_choices(layers: int) -> list[tuple[int, ...]]:
    """Which layers' feed-forward to keep in float, cheapest first: the first; then the last too; then more.

    The first layer's feed-forward is the most sensitive to int8 (on the first bundled model,
    quantizing it flipped 10x as many labels); each further choice costs some speed.
    """
    order = [0, layers - 1, 1, layers - 2, 2][:max(1, layers)]
    return [tuple(sorted(set(order[:n]))) for n in range(1, len(order) + 1)]


def export_onnx(model: torch.nn.Module, folder: Path, agreement: Callable[[OnnxEngine], float] | None = None) -> Path | None:
    """Export the model to ONNX, fuse it for ORT, quantize its weights to int8: `folder/model.int8.onnx`.

    Eager attention exports the classic pattern that ORT fuses into one (quantizable) Attention
    op. Some layers' feed-forward stay in float: `agreement` (the share of validation labels an
    engine gives identically to fp32) picks the fastest choice that keeps MIN_AGREEMENT; without
    it, only the first layer's. When no choice keeps it, nothing is written and `auto` uses bf16.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    folder = Path(folder).resolve()  # absolute: the export runs inside a temporary working folder
    attention = model.config._attn_implementation
    model.set_attn_implementation("eager")
    try:
        with tempfile.TemporaryDirectory(prefix="emotion-onnx-") as tmp, contextlib.chdir(tmp):
            fp32, fused, int8 = (Path(tmp) / name for name in ("model.onnx", "fused.onnx", ONNX_FILE))
            export_fp32(model.eval(), fp32)
            config = model.config
            heads = getattr(config, "num_attention_heads", None) or getattr(config, "n_heads", 0)
            hidden = getattr(config, "hidden_size", None) or getattr(config, "dim", 0)
            layers = getattr(config, "num_hidden_layers", None) or getattr(config, "n_layers", 1)
            optimize_model(str(fp32), model_type="bert", num_heads=heads, hidden_size=hidden).save_model_to_file(str(fused))
            feed_forward = [n.name for n in onnx_nodes(fused) if n.op_type == "MatMul" and "attention" not in n.name]
            for keep in float_layer_choices(layers) if agreement else [(0,)]:
                names = [name for name in feed_forward if any(f"layer.{i}/" in name for i in keep)]
                quantize_dynamic(str(fused), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                                 nodes_to_exclude=names, extra_options={"DefaultTensorType": 1})  # 1: float outputs of fused ops
                share = agreement(OnnxEngine(int8)) if agreement else None
                logger.info("int8 export, feed-forward in float for layers %s: %s", keep,
                            "not checked" if share is None else f"{share:.2%} labels = fp32")
                if share is None or share >= MIN_AGREEMENT:
                    stamp_and_move(int8, folder)
                    break
            else:
                logger.warning("no int8 export keeps %.1f%% of labels identical; none written", 100 * MIN_AGREEMENT)
                (folder / ONNX_FILE).unlink(missing_ok=True)
                return None
    finally:
        model.set_attn_implementation(attention)
    target = folder / ONNX_FILE
    logger.info("exported %s (%.1f MB)", target, target.stat().st_size / 1e6)
    return target


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


def stamp_and_move(int8: Path, folder: Path) -> None:
    """Record which weights the file came from, then move it into the folder atomically."""
    import onnx

    quantized = onnx.load(str(int8))
    onnx.helper.set_model_props(quantized, {"source_sha256": weights_digest(folder)})
    partial = folder / f".{ONNX_FILE}.tmp"
    onnx.save(quantized, str(partial))
    os.replace(partial, folder / ONNX_FILE)
