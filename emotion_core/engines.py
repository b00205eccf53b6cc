"""Inference engines: the same model run several ways on a CPU, picked by measurement.

| engine      | what                                               | texts/s vs fp32 | 1 text vs fp32 | labels vs fp32 |
| ----------- | -------------------------------------------------- | --------------- | -------------- | -------------- |
| `torch`     | PyTorch fp32 (the reference)                       | 1x              | 1x             | 100%           |
| `bf16`      | PyTorch with bfloat16 autocast (AVX-512 BF16 CPUs) | ~1.6x           | ~1.3x          | 99.95%         |
| `onnx`      | ONNX Runtime fp32, fused attention                 | ~1.1x           | ~2.5x          | 100%           |
| `onnx-int8` | ONNX Runtime, fused attention, int8 weights        | ~1.5-2.5x       | ~3x            | 99.5% or more  |

`auto` (the default) takes the fastest this model folder and CPU allow: the int8 file when the
export wrote one; else, on CPUs with native bf16, `onnx` for small batches and `bf16` for large
(`onnx+bf16`); else `onnx`; else `torch`. Figures: the bundled model on 2 cores, from
`benchmarks/bench_inference.py` (docs/benchmarks.md). Some models have no int8 export: none keeps
99.5% of their labels (the current bundled one among them).
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

ENGINES = ("auto", "torch", "bf16", "onnx", "onnx-int8")
ENGINE_ENV_VAR = "EMOTION_ENGINE"
ONNX_FILE = "model.int8.onnx"
FLOAT_ONNX_FILE = "model.onnx"
ONNX_FILES = {"onnx": FLOAT_ONNX_FILE, "onnx-int8": ONNX_FILE}
SMALL_BATCH_TOKENS = 128  # below this many tokens a batch, ORT fp32 beats bf16 (measured: docs/benchmarks.md)
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
    """PyTorch in fp32, or with bfloat16 autocast in batches of 64 (1.1x as fast as 32).

    Autocast keeps layer norms and the residual stream in fp32. A whole-bf16 copy of the model
    ran 1.1x faster still, but flattened small models' explanations to zero (docs/benchmarks.md).
    """

    def __init__(self, model: torch.nn.Module, bf16: bool = False):
        self.model, self.bf16 = model, bf16
        self.name, self.batch_size = ("bf16", 64) if bf16 else ("torch", 32)

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Class scores for one padded batch."""
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            out = self.model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention_mask))
        return out.logits.float().numpy()


class OnnxEngine:
    """ONNX Runtime on an export of `python -m emotion_core export`: fp32 (`onnx`) or int8 (`onnx-int8`)."""

    batch_size = 32

    def __init__(self, path: Path, name: str = "onnx-int8"):
        import onnxruntime as ort

        self.name = name
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = torch.get_num_threads()
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Class scores for one padded batch."""
        return self.session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]


class SplitEngine:
    """Small batches on one engine, large ones on another: on AVX-512 BF16 CPUs ORT fp32 answers one
    text about twice as fast as bf16, and bf16 scores a file about 1.4x as fast as ORT fp32."""

    def __init__(self, small, large):
        self.small, self.large = small, large
        self.name, self.batch_size = f"{small.name}+{large.name}", large.batch_size

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Class scores for one padded batch, from the engine that is faster at its size."""
        engine = self.small if input_ids.size < SMALL_BATCH_TOKENS else self.large
        return engine.logits(input_ids, attention_mask)


def onnx_status(folder: Path | None, file: str = ONNX_FILE) -> str | None:
    """Why an ONNX export can't be used (None when it can)."""
    if folder is None or not (folder / file).is_file():
        return f"no {file} in the model folder (make one with: python -m emotion_core export --model FOLDER)"
    try:
        import onnx
        import onnxruntime  # noqa: F401
    except ImportError:
        return "onnxruntime is not installed"
    try:
        meta = {p.key: p.value for p in onnx.load(str(folder / file), load_external_data=False).metadata_props}
        digest = weights_digest(folder)
    except Exception as exc:  # a damaged file, sharded weights: fall back, never crash the app
        return f"{file} could not be checked ({type(exc).__name__})"
    if meta.get("source_sha256") != digest:
        return f"{file} was exported from other weights; re-run python -m emotion_core export"
    return None


def load_onnx(name: str, folder: Path | None) -> OnnxEngine:
    """ONNX engine `name` ("onnx" or "onnx-int8") on its file in `folder`; EmotionCoreError saying why not."""
    file = ONNX_FILES[name]
    problem = onnx_status(folder, file)
    if problem is None:
        try:
            return OnnxEngine(folder / file, name)
        except Exception as exc:  # ONNX Runtime refused the file
            problem = f"ONNX Runtime could not load {file} ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    raise EmotionCoreError(f"Engine {name} is not available: {problem}.")


def load_engine(name: str | None, model: torch.nn.Module, folder: Path | None):
    """The engine asked for (argument, then $EMOTION_ENGINE, then `auto`), ready to run."""
    name = (name or os.environ.get(ENGINE_ENV_VAR) or "auto").lower()
    if name not in ENGINES:
        raise EmotionCoreError(f"Unknown engine {name!r}: choose one of {', '.join(ENGINES)}.")
    if name in ONNX_FILES:
        return load_onnx(name, folder)
    if name != "auto":
        return TorchEngine(model, bf16=name == "bf16")
    for choice in ("onnx-int8", "onnx"):  # fastest first
        try:
            onnx_engine = load_onnx(choice, folder)
            break
        except EmotionCoreError as exc:
            logger.info("auto: %s", exc)
    else:
        return TorchEngine(model, bf16=cpu_has_bf16())
    if onnx_engine.name == "onnx" and cpu_has_bf16():
        return SplitEngine(onnx_engine, TorchEngine(model, bf16=True))
    return onnx_engine


def float_layer_choices(layers: int) -> list[tuple[int, ...]]:
    """Which layers' feed-forward to keep in float, cheapest first: the first; then the last too; then more.

    The first layer's feed-forward is the most sensitive to int8 (on the first bundled model,
    quantizing it flipped 10x as many labels); each further choice costs some speed.
    """
    order = [0, layers - 1, 1, layers - 2, 2][:max(1, layers)]
    return [tuple(sorted(set(order[:n]))) for n in range(1, len(order) + 1)]


def export_onnx(model: torch.nn.Module, folder: Path, agreement: Callable[[OnnxEngine], float] | None = None) -> list[Path]:
    """Export the model to ONNX, fuse it for ORT: `folder/model.onnx`; quantize its weights: `model.int8.onnx`.

    Eager attention exports the classic pattern that ORT fuses into one (quantizable) Attention
    op. The fp32 file gives the labels of fp32. In the int8 file some layers' feed-forward stay in
    float: `agreement` (the share of validation labels an engine gives identically to fp32) picks
    the fastest choice that keeps MIN_AGREEMENT; without it, only the first layer's. When no choice
    keeps it, no int8 file is written. Returns the files written.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    folder = Path(folder).resolve()  # absolute: the export runs inside a temporary working folder
    attention = model.config._attn_implementation
    model.set_attn_implementation("eager")
    written = []
    try:
        with tempfile.TemporaryDirectory(prefix="emotion-onnx-") as tmp, contextlib.chdir(tmp):
            fp32, fused, int8 = (Path(tmp) / name for name in ("plain.onnx", FLOAT_ONNX_FILE, ONNX_FILE))
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
                    written.append(stamp_and_move(int8, folder))
                    break
            else:
                logger.warning("no int8 export keeps %.1f%% of labels identical; none written", 100 * MIN_AGREEMENT)
                (folder / ONNX_FILE).unlink(missing_ok=True)
            written.insert(0, stamp_and_move(fused, folder, halve=True))
    finally:
        model.set_attn_implementation(attention)
    for path in written:
        logger.info("exported %s (%.1f MB)", path, path.stat().st_size / 1e6)
    return written


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


def stamp_and_move(path: Path, folder: Path, halve: bool = False) -> Path:
    """Record which weights the file came from, then move it into the folder atomically.

    With `halve`, float weights that fp16 holds exactly (all of them, for a model saved with
    --save-fp16) are stored as fp16 behind a Cast, which ORT folds away when it loads the file:
    half the size on disk, the same numbers.
    """
    import onnx

    graph = onnx.load(str(path))
    if halve:
        store_exact_fp16(graph)
    onnx.helper.set_model_props(graph, {"source_sha256": weights_digest(folder)})
    partial = folder / f".{path.name}.tmp"
    onnx.save(graph, str(partial))
    os.replace(partial, folder / path.name)
    return folder / path.name


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
