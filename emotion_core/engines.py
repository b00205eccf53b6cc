"""Inference engines: the same model run several ways on a CPU, picked by measurement.

- `torch`: PyTorch fp32, the reference every other engine is checked against;
- `onnx`: ONNX Runtime fp32 with fused attention (`model.onnx`);
- `onnx-int8`: ONNX Runtime int8 (`model.int8.onnx`), texts near a tie rescored in fp32.

`auto` (the default) takes the fastest this model folder allows: the int8 file when the export
wrote one, else the fp32 file, else PyTorch. How fast each is, on which CPUs: docs/engines.md
and docs/benchmarks.md.

With 2 threads or more, the ONNX engines run a file's batches side by side, one per core
(`ConcurrentEngine`), since two threads inside one small matrix product mostly wait on each other.

Every engine gives a text the same scores whatever it is batched with (int8's scales are fixed at
export: quantize.py), so no engine mixes two others by batch size, and there is no bf16 engine
(bfloat16 rounding moved a text's probabilities with its batch by 0.01). Int8 rounding moves every
class score a little, so it flips a label only where the top two scores were close. The export
measures how close on the validation texts and stores that margin in the int8 file; the
`onnx-int8` engine rescores the texts within it with the fp32 file.
"""

import collections
import hashlib
import itertools
import logging
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .errors import EmotionCoreError
from .model_folder import FLOAT_ONNX, INT8_ONNX, WEIGHTS
from .quantize import FIXED_SCALES

logger = logging.getLogger(__name__)

ENGINES = ("auto", "torch", "onnx", "onnx-int8")
ENGINE_ENV_VAR = "EMOTION_ENGINE"
ONNX_FILES = {"onnx": FLOAT_ONNX, "onnx-int8": INT8_ONNX}


def cpu_threads() -> int:
    """Threads for one engine: torch's setting where torch is loaded (a caller may have set it), else
    $OMP_NUM_THREADS (Ray and Spark give each worker its share that way), else the cores this process may run on."""
    torch = sys.modules.get("torch")
    if torch:
        return torch.get_num_threads()
    setting = os.environ.get("OMP_NUM_THREADS", "").strip()
    if setting.isascii() and setting.isdigit() and int(setting) > 0:
        return int(setting)
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def weights_digest(folder: Path) -> str:
    """SHA-256 of the safetensors weights, stored in the ONNX file so a stale export is never used."""
    digest = hashlib.sha256()
    with open(folder / WEIGHTS, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class TorchEngine:
    """PyTorch in fp32: the reference every other engine is checked against."""

    name, batch_size = "torch", 32

    def __init__(self, model):
        self.model = model

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Class scores for one padded batch."""
        import torch

        with torch.inference_mode():
            out = self.model(input_ids=torch.from_numpy(input_ids), attention_mask=torch.from_numpy(attention_mask))
        return out.logits.numpy()


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
        options.intra_op_num_threads = threads or cpu_threads()
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.metadata: dict[str, str] = self.session.get_modelmeta().custom_metadata_map  # what the export wrote

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Class scores for one padded batch."""
        return self.session.run(["logits"], {"input_ids": input_ids, "attention_mask": attention_mask})[0]


class GuardedEngine:
    """Int8 scores, except for texts whose top two int8 scores are within `margin`: those come from fp32.

    Labels flip under int8 only near a tie, so this keeps the labels of fp32 where int8 alone
    would not, for the price of rescoring a few percent of texts (docs/benchmarks.md). Batches of
    64 halve the rescoring calls, which costs int8 alone nothing measurable.
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
    not (ORT lets go of the GIL while it runs), while one text (an API call) still gets both
    cores (docs/benchmarks.md). Each call keeps at most `workers` batches in flight, so calls
    from several request threads take turns instead of queueing behind a whole file.
    """

    batch_size = 32  # as fast as 64 side by side, and each run's buffers are half the size

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


def without_rescoring(engine):
    """`engine` without its fp32 rescoring of near-ties (the engine itself when it has none).

    For the pieces of a long document whose own labels no one is shown: rescoring keeps a piece's
    label that of fp32, but the document's answer is read from its pieces' probabilities, and on
    validation documents it was fp32's as often without the rescoring, which made reading them
    much slower (docs/engines.md).
    """
    if isinstance(engine, ConcurrentEngine) and isinstance(engine.shared, GuardedEngine):
        return ConcurrentEngine(engine.alone.fast, engine.shared.fast, engine.workers)
    return engine.fast if isinstance(engine, GuardedEngine) else engine


def top_two_gap(scores: np.ndarray) -> np.ndarray:
    """How far each row's best class score is ahead of its second best."""
    top = np.sort(scores, axis=1)
    return top[:, -1] - top[:, -2]


def load_onnx(name: str, folder: Path | None) -> OnnxEngine | GuardedEngine | ConcurrentEngine:
    """ONNX engine `name` ("onnx" or "onnx-int8") on its file in `folder`; EmotionCoreError saying why not.

    An int8 file that names a rescoring margin comes with the fp32 file to rescore with. With
    several threads, batches also run side by side on single-threaded sessions (`ConcurrentEngine`).
    """
    file = ONNX_FILES[name]
    try:
        fast = open_session(folder, file, name)
        digest = fast.metadata["source_sha256"]  # checked against the weights: the other sessions compare with it
        margin = float(fast.metadata.get("rescoring_margin", 0))

        def engine(threads: int | None = None) -> OnnxEngine | GuardedEngine:
            quick = fast if threads is None else open_session(folder, file, name, digest, threads=threads)
            if not margin:
                return quick
            try:
                exact = open_session(folder, FLOAT_ONNX, "onnx", digest, spin=False, threads=threads)
            except ValueError as exc:
                raise ValueError(f"it rescores near-ties with {FLOAT_ONNX}, and {exc}") from None
            return GuardedEngine(quick, exact, margin)

        workers = cpu_threads()
        return ConcurrentEngine(engine(), engine(threads=1), workers) if workers > 1 else engine()
    except ValueError as exc:
        raise EmotionCoreError(f"Engine {name} is not available: {exc}.") from None


def open_session(folder: Path | None, file: str, name: str, digest: str | None = None, spin: bool = True,
                 threads: int | None = None) -> OnnxEngine:
    """An ORT session on an export made from the folder's weights (`digest`: their SHA-256, when known); ValueError
    saying why not: no file, no onnxruntime, a file ORT refuses, or an export of other weights."""
    if folder is None or not (folder / file).is_file():
        raise ValueError(f"no {file} in the model folder (make one with: python -m emotion_core export --model FOLDER)")
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ValueError("onnxruntime is not installed") from None
    try:
        session = OnnxEngine(folder / file, name, spin, threads)
    except Exception as exc:  # a file ORT can't run
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ValueError(f"ONNX Runtime could not load {file} ({reason})") from None
    if digest is None:
        try:
            digest = weights_digest(folder)
        except OSError as exc:  # sharded weights, an unreadable file: fall back, never crash the app
            raise ValueError(f"{file} could not be checked against the weights ({type(exc).__name__})") from None
    if session.metadata.get("source_sha256") != digest:
        raise ValueError(f"{file} was exported from other weights; re-run python -m emotion_core export")
    if file == INT8_ONNX and FIXED_SCALES not in session.metadata:
        raise ValueError(f"{file} scales each batch its own way, so a text's scores move with its neighbours; "
                         "re-run python -m emotion_core export")
    return session


def load_engine(name: str | None, model: Callable, folder: Path | None):
    """The engine asked for (argument, then $EMOTION_ENGINE, then `auto`), ready to run; `model()` gives the
    PyTorch model, loaded only for an engine that runs it."""
    name = (name or os.environ.get(ENGINE_ENV_VAR) or "auto").lower()
    if name not in ENGINES:
        raise EmotionCoreError(f"Unknown engine {name!r}: choose one of {', '.join(ENGINES)}.")
    if name in ONNX_FILES:
        return load_onnx(name, folder)
    if name != "auto":
        return TorchEngine(model())
    for choice in ("onnx-int8", "onnx"):  # fastest first
        try:
            return load_onnx(choice, folder)
        except EmotionCoreError as exc:
            logger.info("auto: %s", exc)
    return TorchEngine(model())
