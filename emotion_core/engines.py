"""Inference engines: the same model run several ways on a CPU, picked by measurement.

| engine      | what                                               | texts/s vs fp32 | 1 text vs fp32 | labels vs fp32 |
| ----------- | -------------------------------------------------- | --------------- | -------------- | -------------- |
| `torch`     | PyTorch fp32 (the reference)                       | 1x              | 1x             | 100%           |
| `bf16`      | PyTorch with bfloat16 autocast (AVX-512 BF16 CPUs) | ~2.6x           | ~1.7x          | 99.85%         |
| `onnx`      | ONNX Runtime fp32, fused attention                 | ~1.8x           | ~2.9x          | 100%           |
| `onnx-int8` | ONNX Runtime int8, near-ties rescored in fp32      | ~3.2x           | ~8x            | 99.5% or more  |

`auto` (the default) takes the fastest this model folder and CPU allow: the int8 file when the
export wrote one; else, on CPUs with native bf16, `onnx` for small batches and `bf16` for large
(`onnx+bf16`); else `onnx`; else `torch`. Figures: the bundled model on 2 cores of a Zen 5 CPU
(AVX-512 BF16 and VNNI), from `benchmarks/bench_inference.py` (docs/benchmarks.md); on CPUs
without native bf16, `bf16` is slower than fp32 and int8 gains less (~1.7x on an Intel Xeon).

With 2 threads or more, the ONNX engines run a file's batches side by side, one per core
(`ConcurrentEngine`): for int8, 5-28% more texts/s than each batch on all cores in turn (typically 10-15%).

Int8 rounding moves every class score a little, so it flips a label only where the top two
scores were close. The export measures how close on the validation texts and stores that margin
in the int8 file; the `onnx-int8` engine rescores the texts within it with the fp32 file.
"""

import collections
import contextlib
import hashlib
import itertools
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from .errors import EmotionCoreError
from .model_folder import FLOAT_ONNX, INT8_ONNX, WEIGHTS, write_with

logger = logging.getLogger(__name__)

ENGINES = ("auto", "torch", "bf16", "onnx", "onnx-int8")
ENGINE_ENV_VAR = "EMOTION_ENGINE"
ONNX_FILES = {"onnx": FLOAT_ONNX, "onnx-int8": INT8_ONNX}
SMALL_BATCH_TOKENS = 128  # below this many tokens a batch, ORT fp32 beats bf16 (measured: docs/benchmarks.md)
GUARD_AGREEMENT = 0.998  # validation labels = fp32 that int8's rescoring margin keeps: headroom over the 99.5% promised
MAX_RESCORED = 0.2  # an int8 export that would rescore more validation texts than this is not worth writing


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
    with open(folder / WEIGHTS, "rb") as f:
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

    def __init__(self, path: Path, name: str = "onnx-int8", spin: bool = True, threads: int | None = None):
        """`spin=False` for a session that runs now and then beside another: its idle threads sleep
        instead of spinning on the cores the other one needs. `threads`: torch's thread count by default."""
        import onnxruntime as ort

        self.name = name
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = threads or torch.get_num_threads()
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
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


class GuardedEngine:
    """Int8 scores, except for texts whose top two int8 scores are within `margin`: those come from fp32.

    Labels flip under int8 only near a tie, so this keeps the labels of fp32 where int8 alone
    would not, for the price of rescoring a few percent of texts (docs/benchmarks.md). Batches of
    64 halve the rescoring calls: 414 texts/s against 376 with 32 (int8 alone: 452 against 461).
    """

    batch_size = 64

    def __init__(self, fast: OnnxEngine, exact: OnnxEngine, margin: float):
        self.fast, self.exact, self.margin, self.name = fast, exact, margin, fast.name

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Class scores for one padded batch; near-ties rescored, cut to their own longest text."""
        scores = self.fast.logits(input_ids, attention_mask)
        close = np.flatnonzero(top_two_gap(scores) < self.margin)
        if close.size:
            width = int(attention_mask[close].sum(axis=1).max())
            scores[close] = self.exact.logits(input_ids[close, :width], attention_mask[close, :width])
        return scores


class ConcurrentEngine:
    """Several batches at once, one per core, each on a single-threaded session; one batch alone on `alone`.

    Two threads inside one small matrix product wait on each other; two batches side by side do
    not (ORT lets go of the GIL while it runs). On 2 cores int8 scores 5-28% more texts/s that
    way than with each batch on both cores in turn, while one text (an API call) still gets both
    cores (docs/benchmarks.md). Each call keeps at most `workers` batches in flight, so calls
    from several request threads take turns instead of queueing behind a whole file.
    """

    batch_size = 32  # as fast as 64 side by side, and each run's buffers are half the size (~100 MB less at peak)

    def __init__(self, alone, shared, workers: int):
        self.alone, self.shared, self.name, self.workers = alone, shared, alone.name, workers
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="emotion-engine")

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Class scores for one padded batch, on all cores."""
        return self.alone.logits(input_ids, attention_mask)

    def map(self, batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> Iterator[np.ndarray]:
        """Class scores for each (input_ids, attention_mask) batch, in order, `workers` computed at once."""
        batches = iter(batches)
        first = list(itertools.islice(batches, 2))
        if len(first) < 2:
            yield from (self.alone.logits(*batch) for batch in first)
            return
        pending = collections.deque()
        for batch in itertools.chain(first, batches):
            pending.append(self.pool.submit(self.shared.logits, *batch))
            if len(pending) == self.workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def run_batches(engine, batches: Iterable[tuple[np.ndarray, np.ndarray]]) -> Iterator[np.ndarray]:
    """Class scores for each padded batch: side by side where the engine can (`map`), else in turn."""
    if hasattr(engine, "map"):
        return engine.map(batches)
    return map(lambda batch: engine.logits(*batch), batches)


def top_two_gap(scores: np.ndarray) -> np.ndarray:
    """How far each row's best class score is ahead of its second best."""
    top = np.sort(scores, axis=1)
    return top[:, -1] - top[:, -2]


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


def check_onnx(folder: Path | None, file: str, digest: str | None = None) -> dict[str, str]:
    """The metadata of an export that was made from the folder's weights; ValueError saying why not.

    `digest`: the weights' SHA-256 when a check of the other file has already computed it.
    """
    if folder is None or not (folder / file).is_file():
        raise ValueError(f"no {file} in the model folder (make one with: python -m emotion_core export --model FOLDER)")
    try:
        import onnx
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ValueError("onnxruntime is not installed") from None
    try:
        meta = {p.key: p.value for p in onnx.load(str(folder / file), load_external_data=False).metadata_props}
        digest = digest or weights_digest(folder)
    except Exception as exc:  # a damaged file, sharded weights: fall back, never crash the app
        raise ValueError(f"{file} could not be checked ({type(exc).__name__})") from None
    if meta.get("source_sha256") != digest:
        raise ValueError(f"{file} was exported from other weights; re-run python -m emotion_core export")
    return meta


def load_onnx(name: str, folder: Path | None, side_by_side: bool = True) -> OnnxEngine | GuardedEngine | ConcurrentEngine:
    """ONNX engine `name` ("onnx" or "onnx-int8") on its file in `folder`; EmotionCoreError saying why not.

    An int8 file that names a rescoring margin comes with the fp32 file to rescore with. With
    several threads and `side_by_side`, batches also run side by side on single-threaded sessions
    (`ConcurrentEngine`).
    """
    file = ONNX_FILES[name]
    try:
        meta = check_onnx(folder, file)
        margin = float(meta.get("rescoring_margin", 0))
        if margin:
            check_rescorer(folder, meta["source_sha256"])

        def engine(threads: int | None = None) -> OnnxEngine | GuardedEngine:
            fast = open_session(folder / file, name, threads=threads)
            if not margin:
                return fast
            return GuardedEngine(fast, open_session(folder / FLOAT_ONNX, "onnx", spin=False, threads=threads), margin)

        workers = torch.get_num_threads()
        return ConcurrentEngine(engine(), engine(threads=1), workers) if workers > 1 and side_by_side else engine()
    except ValueError as exc:
        raise EmotionCoreError(f"Engine {name} is not available: {exc}.") from None


def check_rescorer(folder: Path, digest: str) -> None:
    """The fp32 file that an int8 file with a margin rescores with must match the weights; ValueError if not."""
    try:
        check_onnx(folder, FLOAT_ONNX, digest)
    except ValueError as exc:
        raise ValueError(f"it rescores near-ties with {FLOAT_ONNX}, and {exc}") from None


def open_session(path: Path, name: str, spin: bool = True, threads: int | None = None) -> OnnxEngine:
    """An ORT session on the file; ValueError with ORT's first line when ORT refuses it."""
    try:
        return OnnxEngine(path, name, spin, threads)
    except Exception as exc:  # a file ORT can't run
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"ONNX Runtime could not load {path.name} ({reason})") from None


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
        try:  # fp32 ORT beside bf16 runs only small batches, one at a time: no side-by-side sessions for it
            onnx_engine = load_onnx(choice, folder, side_by_side=choice == "onnx-int8" or not cpu_has_bf16())
            break
        except EmotionCoreError as exc:
            logger.info("auto: %s", exc)
    else:
        return TorchEngine(model, bf16=cpu_has_bf16())
    if onnx_engine.name == "onnx" and cpu_has_bf16():
        return SplitEngine(onnx_engine, TorchEngine(model, bf16=True))
    return onnx_engine


def float_layer_choices(layers: int) -> list[tuple[int, ...]]:
    """Which layers' feed-forward to keep in float, cheapest first: none; the first; then the last too; then more.

    The first layer's feed-forward is the most sensitive to int8 (on the first bundled model,
    quantizing it flipped 10x as many labels); each further choice costs some speed. With near-ties
    rescored in fp32, all-int8 is the fastest on the bundled model (docs/benchmarks.md).
    """
    order = [0, layers - 1, 1, layers - 2, 2][:max(1, layers)]
    return [tuple(sorted(set(order[:n]))) for n in range(len(order) + 1)]


def export_onnx(model: torch.nn.Module, folder: Path, score: Callable[[OnnxEngine], np.ndarray] | None = None) -> list[Path]:
    """Export the model to ONNX, fuse it for ORT: `folder/model.onnx`; quantize its weights: `model.int8.onnx`.

    Eager attention exports the classic pattern that ORT fuses into one (quantizable) Attention
    op. The fp32 file gives the labels of fp32. `score` (an engine's class scores for the
    validation texts) checks the int8 file and sets its rescoring margin; without it, the int8
    file is written unchecked and rescores nothing. Returns the files written.
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


def quantize_checked(fused: Path, int8: Path, layers: int, score: Callable[[OnnxEngine], np.ndarray] | None) -> dict | None:
    """Quantize `fused` into `int8`: the metadata the int8 file needs, or None when no choice is worth writing.

    Choices of layers whose feed-forward stays in float, cheapest first: the first whose
    rescoring margin (GUARD_AGREEMENT of validation labels = fp32) rescores at most MAX_RESCORED.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    feed_forward = [n.name for n in onnx_nodes(fused) if n.op_type == "MatMul" and "attention" not in n.name]
    reference = score(OnnxEngine(fused, "onnx")).argmax(axis=1) if score else None
    for keep in float_layer_choices(layers) if score else [(0,)]:  # unchecked: the most sensitive layer in float
        names = [name for name in feed_forward if any(f"layer.{i}/" in name for i in keep)]
        quantize_dynamic(str(fused), str(int8), weight_type=QuantType.QInt8, per_channel=True,
                         nodes_to_exclude=names, extra_options={"DefaultTensorType": 1})  # 1: float outputs of fused ops
        if score is None:
            logger.info("int8 export, feed-forward in float for layer 0: not checked")
            return {}
        scores = score(OnnxEngine(int8))
        margin = rescoring_margin(scores, reference)
        near, same = top_two_gap(scores) < margin, scores.argmax(axis=1) == reference
        logger.info("int8 export, feed-forward in float for layers %s: %.2f%% labels = fp32; %.2f%% rescoring the "
                    "%.1f%% of texts whose top two scores are within %.3f", ", ".join(map(str, keep)) or "none",
                    100 * same.mean(), 100 * (near | same).mean(), 100 * near.mean(), margin)
        if near.mean() <= MAX_RESCORED:
            return {"rescoring_margin": repr(margin)}
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
