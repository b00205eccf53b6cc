"""Int8 with fixed scales: every text's scores the same whatever it is batched with.

ONNX Runtime's dynamic quantization scales each activation by the range it takes in the batch
at hand, padding included, so one text's probabilities moved with its neighbours (by as much as
0.5 on the bundled model). Here each of those activations gets one scale for good: the range it
took over the validation texts' real tokens, noted by running them through the dynamically
quantized file. Activation outliers sit in the same few dimensions for every text, so a fixed
range is about as fine as a batch's own, and int8's agreement with fp32 is checked on validation
as before (export.py).

The rewrite also puts the graph in the form ONNX Runtime runs fastest on CPUs without VNNI: the
int8 matrix products as `MatMulIntegerToFloat`, and each `SkipLayerNormalization` as an `Add`
and a `LayerNormalization`, which ran several times faster (docs/engines.md).
"""

from collections.abc import Callable
from pathlib import Path

import numpy as np

from .errors import EmotionCoreError

FIXED_SCALES = "fixed_scales"  # the int8 file's metadata key saying so (engines.py refuses an int8 file without it)


class RangeProbe:
    """An engine on the dynamically quantized file that notes the range of each activation it quantizes.

    Only real tokens count: padding's activations are never read by the rest of the graph, and with
    fixed scales they are clipped without effect on any real token.
    """

    name, batch_size = "calibration", 32

    def __init__(self, graph, tensors: list[str]):
        import onnxruntime as ort
        from onnx import TensorProto, helper

        probe = type(graph)()
        probe.CopyFrom(graph)
        probe.graph.output.extend(helper.make_tensor_value_info(name, TensorProto.FLOAT, None) for name in tensors)
        self.session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
        self.tensors = tensors
        self.low, self.high = dict.fromkeys(tensors, 0.0), dict.fromkeys(tensors, 0.0)  # a range always holds 0
        self.batches = 0

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """Class scores for one padded batch, noting the ranges on the way."""
        logits, *values = self.session.run(["logits", *self.tensors], {"input_ids": input_ids, "attention_mask": attention_mask})
        real = attention_mask.astype(bool)
        for name, value in zip(self.tensors, values):
            value = value[real] if value.ndim == 3 else value  # (batch, length, width): real tokens; else pooled rows
            self.low[name] = min(self.low[name], float(value.min()))
            self.high[name] = max(self.high[name], float(value.max()))
        self.batches += 1
        return logits


def fix_scales(path: Path, score: Callable[[RangeProbe], np.ndarray]) -> None:
    """Rewrite the dynamically quantized file at `path` with fixed scales, noted by `score` (class scores of the
    validation texts from an engine) running it; then in the form that runs fastest."""
    import onnx

    graph = onnx.load(str(path))
    dynamic = [node for node in graph.graph.node if node.op_type == "DynamicQuantizeLinear"]
    probe = RangeProbe(graph, [node.input[0] for node in dynamic])
    score(probe)
    if not probe.batches:
        raise EmotionCoreError("int8's scales need texts to be noted on: the validation texts ran through nothing")
    rebuild(graph, {node.output[0]: [fix(graph, node, probe.low[node.input[0]], probe.high[node.input[0]])] for node in dynamic})
    rebuild(graph, fuse_integer_products(graph))
    rebuild(graph, split_skip_layer_norms(graph))
    onnx.save(graph, str(path))


def fix(graph, node, low: float, high: float):
    """The QuantizeLinear of range [low, high] (uint8, as the dynamic one was) to put in place of one
    DynamicQuantizeLinear: its scale and zero point become constants under the names its outputs had."""
    from onnx import helper, numpy_helper

    scale = np.float32((high - low) / 255 or 1.0)
    zero = np.uint8(np.clip(np.round(-low / scale), 0, 255))
    quantized, scale_name, zero_name = node.output
    graph.graph.initializer.extend([numpy_helper.from_array(np.array(scale), scale_name),
                                    numpy_helper.from_array(np.array(zero), zero_name)])
    return helper.make_node("QuantizeLinear", [node.input[0], scale_name, zero_name], [quantized], name=f"{node.name}_fixed")


def fuse_integer_products(graph) -> dict[str, list]:
    """MatMulInteger, Cast and Mul by the product of both scales, as one MatMulIntegerToFloat (the swaps to make).

    ONNX Runtime fuses the dynamic pattern into one operator by itself, but not this one once the
    activation's scale is a constant."""
    from onnx import helper

    made_by = {out: node for node in graph.graph.node for out in node.output}
    used_by: dict[str, list] = {}
    for node in graph.graph.node:
        for name in node.input:
            used_by.setdefault(name, []).append(node)
    swaps = {}
    for product in [node for node in graph.graph.node if node.op_type == "MatMulInteger"]:
        cast = only_user(used_by, product.output[0], "Cast")
        mul = cast and only_user(used_by, cast.output[0], "Mul")
        scales = mul and made_by.get(next(name for name in mul.input if name != cast.output[0]))
        if scales is None or scales.op_type != "Mul" or len(used_by[scales.output[0]]) != 1:
            continue
        a, b, a_zero, b_zero = product.input
        a_scale, b_scale = sorted(scales.input, key=lambda name: name != made_by[a].input[1])  # the activation's first
        swaps |= {cast.output[0]: [], mul.output[0]: [], scales.output[0]: [], product.output[0]: [helper.make_node(
            "MatMulIntegerToFloat", [a, b, a_scale, b_scale, a_zero, b_zero], [mul.output[0]],
            name=f"{product.name}_to_float", domain="com.microsoft")]}
    return swaps


def only_user(used_by: dict, name: str, op_type: str):
    """The one node that reads `name`, when it is of `op_type`; else None."""
    users = used_by.get(name, [])
    return users[0] if len(users) == 1 and users[0].op_type == op_type else None


def split_skip_layer_norms(graph) -> dict[str, list]:
    """Each SkipLayerNormalization (input + skip + bias, then layer norm) as Adds and a LayerNormalization (the swaps)."""
    from onnx import helper

    swaps = {}
    for node in [node for node in graph.graph.node if node.op_type == "SkipLayerNormalization"]:
        if any(node.output[1:]):  # its mean or its sum read elsewhere: leave it whole
            continue
        x, skip, gamma, beta, *bias = node.input
        epsilon = next((a.f for a in node.attribute if a.name == "epsilon"), 1e-12)
        total = f"{node.name}_sum"
        adds = [helper.make_node("Add", [x, skip], [total], name=f"{node.name}_add")]
        if bias and bias[0]:
            adds.append(helper.make_node("Add", [total, bias[0]], [f"{total}_bias"], name=f"{node.name}_add_bias"))
            total = f"{total}_bias"
        swaps[node.output[0]] = [*adds, helper.make_node("LayerNormalization", [total, gamma, beta], [node.output[0]],
                                                   name=f"{node.name}_norm", axis=-1, epsilon=epsilon)]
    return swaps


def rebuild(graph, swaps: dict[str, list]) -> None:
    """The graph's nodes with each node whose first output is in `swaps` replaced by the nodes it maps to (none:
    removed).

    A replacement takes its node's place, so the graph stays in order when what it reads is made before that place.
    """
    nodes = [new for node in graph.graph.node for new in swaps.get(node.output[0], [node])]
    graph.graph.ClearField("node")
    graph.graph.node.extend(nodes)
