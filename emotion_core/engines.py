"""Inference engines: the same model run three ways on a CPU, picked by measurement.

| engine      | what                                              | speed vs fp32 | labels vs fp32 |
| ----------- | ------------------------------------------------- | ------------- | -------------- |
| `torch`     | PyTorch fp32 (the reference)                      | 1x            | 100%           |
| `bf16`      | PyTorch with bfloat16 autocast (AVX-512 BF16 CPUs) | ~1.7x         | ~99.8%         |
| `onnx-int8` | ONNX Runtime, int8 weights (dynamic quantization) | ~2.4x         | ~99.8%         |

`auto` (the default) takes the fastest one this model folder and CPU allow. Figures come from
`benchmarks/bench_inference.py`; see docs/benchmarks.md.
"""

import hashlib
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from .errors import EmotionCoreError

logger = logging.getLogger(__name__)

ENGINES = ("auto", "torch", "bf16", "onnx-int8")
ENGINE_ENV_VAR = "EMOTION_ENGINE"
ONNX_FILE = "model.int8.onnx"
# The first layer stays in float: quantizing it flips about 3x as many labels (measured, bundled model).
KEEP_FLOAT = ("layer.0/",)


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
    meta = {p.key: p.value for p in onnx.load(str(folder / ONNX_FILE), load_external_data=False).metadata_props}
    if meta.get("source_sha256") != weights_digest(folder):
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
            return OnnxEngine(folder / ONNX_FILE)
        if name == "onnx-int8":
            raise EmotionCoreError(f"Engine onnx-int8 is not available: {problem}.")
        logger.info("not using onnx-int8: %s", problem)
    return TorchEngine(model, bf16=name == "bf16" or (name == "auto" and cpu_has_bf16()))


def export_onnx(model: torch.nn.Module, folder: Path) -> Path:
    """Export the model to ONNX with int8 weights as `folder/model.int8.onnx` (atomically)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    folder = Path(folder)
    with tempfile.TemporaryDirectory(prefix="emotion-onnx-") as tmp:
        fp32 = Path(tmp) / "model.onnx"
        example = torch.ones((2, 8), dtype=torch.long)
        with warnings.catch_warnings():  # tracer notes on shape checks that hold for every padded batch
            warnings.simplefilter("ignore")
            torch.onnx.export(  # TorchScript exporter: one file, dynamic batch and length
                model.eval(), (example, example), str(fp32), input_names=["input_ids", "attention_mask"],
                output_names=["logits"], opset_version=17, dynamo=False,
                dynamic_axes={"input_ids": {0: "batch", 1: "length"}, "attention_mask": {0: "batch", 1: "length"},
                              "logits": {0: "batch"}},
            )
        import onnx

        graph = onnx.load(str(fp32))
        keep = [n.name for n in graph.graph.node if n.op_type == "MatMul" and any(k in n.name for k in KEEP_FLOAT)]
        int8 = Path(tmp) / ONNX_FILE
        quantize_dynamic(str(fp32), str(int8), weight_type=QuantType.QInt8, per_channel=True, nodes_to_exclude=keep)
        quantized = onnx.load(str(int8))
        onnx.helper.set_model_props(quantized, {"source_sha256": weights_digest(folder)})
        onnx.save(quantized, str(int8))
        target = folder / ONNX_FILE
        shutil.move(int8, folder / f".{ONNX_FILE}.tmp")
        os.replace(folder / f".{ONNX_FILE}.tmp", target)
    logger.info("exported %s (%.1f MB)", target, target.stat().st_size / 1e6)
    return target
