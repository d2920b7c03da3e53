"""ONNX export of a trained model: a sequence graph and a streaming step graph.

:func:`export_onnx` writes two files into one folder:

* ``model.onnx`` (sequence graph): inputs ``x [batch, time, channels]`` and the
  initial state, outputs ``logits [batch, time, classes]`` and the final state;
* ``model_step.onnx`` (step graph): inputs ``x [batch, channels]`` and the
  state, outputs ``logits [batch, classes]`` and the next state.

Names are fixed: inputs ``x``, ``h_in`` (and ``c_in`` for LSTM), outputs
``logits``, ``h_out`` (and ``c_out``); each state tensor is ``[layers, batch,
hidden]``.  The state is always an explicit input (a consumer starts a stream
with zeros), so neither graph contains a Shape/Expand/ConstantOfShape subgraph.
Logits are raw scores; softmax is left to the consumer.

Both files carry the same ``metadata_props`` (all values are strings, lists and
objects as JSON), enough to run the model without gaitedge or torch:

=================  ===========================================================
``format``         ``gaitedge-onnx``
``format_version`` integer, currently 1
``graph``          ``sequence`` or ``step``
``gaitedge_version`` version of the exporting package
``family``         model family (``lstm``, ``gru``, ``elman``)
``hparams``        family hyperparameters (JSON object)
``classes``        class names in logit order (JSON list)
``channels``       input channel names in input order (JSON list)
``units``          unit of each input channel (JSON list)
``rate_hz``        sampling rate the model expects, Hz
``norm_mean``      per-channel mean subtracted after filtering (channel units)
``norm_std``       per-channel divisor applied after subtracting the mean
``lowpass_hz``     causal Butterworth cutoff in Hz (0 = no filter)
``filter_order``   Butterworth order
``filter_sos``     second-order sections ``[[b0, b1, b2, a0, a1, a2], ...]``
                   (``[]`` = no filter); the filter state starts in steady
                   state for the first sample of a stream
``delay``          output delay in samples: logits of step t classify sample
                   t - delay
``min_run``        debounce in samples: a new label is adopted only after
                   this many consecutive samples, from its first sample
``weights_sha256`` SHA-256 of the torch weights (see ``TrainedModel.weights_hash``)
``inputs``         input names in order (JSON list)
``outputs``        output names in order (JSON list)
``state_inputs``   state input names (JSON list)
``state_outputs``  state output names, same order (JSON list)
``state_shapes``   state shapes for one stream, batch axis 1 (JSON list)
=================  ===========================================================

Whole-window (non-causal) models (``model.causal`` is False: bidirectional
recurrent networks, encoder-decoders) have no step graph: only ``model.onnx``
is written, its ``graph`` is ``sequence`` and its metadata adds ``causal`` =
``false``; the state inputs are the model's initial state for a fresh window
(zeros; see the family's docstring) and the graph accepts any ``time``.  The
streaming runtimes refuse such a file and point to the window API.

Files are written atomically: both graphs are built, checked with
``onnx.checker`` and compared against torch with ONNX Runtime before either is
renamed into place; on failure nothing is left behind.
"""

from __future__ import annotations

import copy
import io
import json
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnx
import torch
from torch import nn

import gaitedge
from gaitedge.checkpoint import TrainedModel
from gaitedge.errors import ModelError
from gaitedge.models.base import GaitModel
from gaitedge.models.rnn import RecurrentClassifier
from gaitedge.rundir import ONNX_SEQUENCE_FILE as SEQUENCE_FILE
from gaitedge.rundir import ONNX_STEP_FILE as STEP_FILE
from gaitedge.rundir import atomic_path

FORMAT = "gaitedge-onnx"
FORMAT_VERSION = 1
#: lowest opset written.
MIN_OPSET = 17
DEFAULT_OPSET = 17
#: operators that would build a state from the input shape (not portable).
FORBIDDEN_OPS = frozenset({"Shape", "Expand", "ConstantOfShape"})
#: ORT-vs-torch tolerance of the self-check run during export (logit units).
VERIFY_TOL = 1e-4


class OnnxPaths(NamedTuple):
    """Where :func:`export_onnx` wrote the two graphs (``step`` None for a whole-window model)."""

    sequence: Path
    step: Path | None


def state_names(n_state: int) -> tuple[list[str], list[str]]:
    """(input names, output names) of the state tensors of a model with ``n_state`` tensors."""
    base = ["h", "c"] if n_state <= 2 else [f"s{i}" for i in range(n_state)]
    base = base[:n_state]
    return [f"{b}_in" for b in base], [f"{b}_out" for b in base]


class _RecurrentStep(nn.Module):
    """One step of a :class:`RecurrentClassifier` as ``Unsqueeze -> RNN op -> head``.

    Uses a time-major copy of the recurrent layer so that the graph has no
    transposes around the recurrent operator.
    """

    def __init__(self, model: RecurrentClassifier) -> None:
        super().__init__()
        self.rnn = copy.deepcopy(model.rnn)
        self.rnn.batch_first = False
        self.rnn.dropout = 0.0
        self.head = copy.deepcopy(model.head)
        self.n_state = model.n_state

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        _, hn = self.rnn(x.unsqueeze(0), state if self.n_state > 1 else state[0])
        logits = self.head((hn[0] if self.n_state > 1 else hn)[-1])
        return (logits, *hn) if self.n_state > 1 else (logits, hn)


class _GenericStep(nn.Module):
    """One step of any :class:`GaitModel` through its own :meth:`GaitModel.step`."""

    def __init__(self, model: GaitModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, st = self.model.step(x, tuple(state))
        return (logits, *st)


class _Sequence(nn.Module):
    """Sequence forward with the state as explicit inputs and outputs."""

    def __init__(self, model: GaitModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, *state: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits, st = self.model(x, tuple(state))
        return (logits, *st)


def onnx_metadata(tm: TrainedModel, graph: str, inputs: list[str], outputs: list[str],
                  state_shapes: list[list[int]]) -> dict[str, str]:
    """The ``metadata_props`` of one exported graph (see the module docstring)."""
    sos = tm.sos
    n_state = len(state_shapes)
    return {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "graph": graph,
        "gaitedge_version": gaitedge.__version__,
        "family": tm.model.family,
        "hparams": json.dumps(tm.model.hparams()),
        "classes": json.dumps(list(tm.classes)),
        "channels": json.dumps(list(tm.channels)),
        "units": json.dumps(list(tm.units)),
        "rate_hz": repr(float(tm.rate_hz)),
        "norm_mean": json.dumps([float(v) for v in np.asarray(tm.normalizer.mean, np.float32)]),
        "norm_std": json.dumps([float(v) for v in np.asarray(tm.normalizer.std, np.float32)]),
        "lowpass_hz": repr(float(tm.lowpass_hz or 0.0)),
        "filter_order": str(int(tm.filter_order)),
        "filter_sos": json.dumps([] if sos is None else np.asarray(sos, np.float64).tolist()),
        "delay": str(int(tm.delay)),
        "frame": tm.frame,
        "min_run": str(int(tm.min_run)),
        "weights_sha256": tm.weights_hash(),
        "inputs": json.dumps(inputs),
        "outputs": json.dumps(outputs),
        "state_inputs": json.dumps(inputs[1 : 1 + n_state]),
        "state_outputs": json.dumps(outputs[1 : 1 + n_state]),
        "state_shapes": json.dumps(state_shapes),
    }


def _export_graph(module: nn.Module, args: tuple[torch.Tensor, ...], inputs: list[str], outputs: list[str],
                  dynamic_axes: dict[str, dict[int, str]], opset: int, what: str) -> onnx.ModelProto:
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                args,
                buf,
                dynamo=False,
                opset_version=opset,
                input_names=inputs,
                output_names=outputs,
                dynamic_axes=dynamic_axes,
                do_constant_folding=True,
            )
    except Exception as exc:  # the exporter raises many types
        raise ModelError(f"ONNX export of the {what} graph failed: {type(exc).__name__}: {exc}") from None
    return onnx.load_from_string(buf.getvalue())


def _declare_shapes(mp: onnx.ModelProto, graph: str, n_classes: int, outputs: list[str],
                    state_shapes: list[list[int]]) -> None:
    """Declare the outputs' true shapes and drop the tracer's guesses inside loop bodies.

    Tracing a scripted time loop records loop-body and output shapes of the wrong
    rank (values are right); ONNX Runtime would warn about them on every run.
    """
    def set_dims(vi, dims) -> None:
        shape = vi.type.tensor_type.shape
        shape.ClearField("dim")
        for d in dims:
            dim = shape.dim.add()
            if isinstance(d, str):
                dim.dim_param = d
            else:
                dim.dim_value = int(d)

    known = {"logits": ["batch", "time", n_classes] if graph == "sequence" else ["batch", n_classes]}
    for name, shp in zip(outputs[1:], state_shapes):
        known[name] = [d if i != 1 else "batch" for i, d in enumerate(shp)]
    for vi in mp.graph.output:
        if vi.name in known:
            set_dims(vi, known[vi.name])

    def clear_subgraphs(g: onnx.GraphProto) -> None:
        for node in g.node:
            for attr in node.attribute:
                subs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
                for sg in subs:
                    for vi in list(sg.output) + list(sg.value_info):
                        if vi.type.HasField("tensor_type"):
                            vi.type.tensor_type.ClearField("shape")
                    clear_subgraphs(sg)

    clear_subgraphs(mp.graph)
    if any(n.op_type in ("Loop", "Scan") for n in mp.graph.node):
        del mp.graph.value_info[:]


def check_graph(mp: onnx.ModelProto, what: str = "model") -> None:
    """Raise ModelError unless ``mp`` passes ``onnx.checker``, has opset >= 17 and
    builds no state from input shapes (no Shape/Expand/ConstantOfShape nodes)."""
    try:
        onnx.checker.check_model(mp, full_check=True)
    except Exception as exc:
        raise ModelError(f"{what}: onnx.checker rejects the exported graph: {exc}") from None
    opset = max((o.version for o in mp.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset < MIN_OPSET:
        raise ModelError(f"{what}: opset {opset} is below {MIN_OPSET}")
    bad = sorted({n.op_type for n in mp.graph.node if n.op_type in FORBIDDEN_OPS})
    if bad:
        raise ModelError(f"{what}: graph contains {', '.join(bad)} nodes; the state must be an explicit input")


def _verify(model: GaitModel, seq: bytes, step: bytes, n_state: int, state_in: list[str]) -> None:
    """Compare ONNX Runtime with torch on a short random input (raises ModelError)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    rng = np.random.default_rng(0)
    b, t = 2, 24
    x = rng.standard_normal((b, t, model.input_size)).astype(np.float32)
    with torch.no_grad():
        ref, _ = model(torch.from_numpy(x))
    ref = ref.numpy()
    zeros = [s.numpy() for s in model.init_state(b)]
    s_seq = ort.InferenceSession(seq, so, providers=["CPUExecutionProvider"])
    got = s_seq.run(None, {"x": x, **dict(zip(state_in, zeros))})[0]
    s_step = ort.InferenceSession(step, so, providers=["CPUExecutionProvider"])
    state = zeros
    steps = []
    for i in range(t):
        out = s_step.run(None, {"x": x[:, i], **dict(zip(state_in, state))})
        steps.append(out[0])
        state = out[1 : 1 + n_state]
    err_seq = float(np.abs(got - ref).max())
    err_step = float(np.abs(np.stack(steps, axis=1) - ref).max())
    if not (err_seq <= VERIFY_TOL and err_step <= VERIFY_TOL):
        raise ModelError(
            f"exported graphs disagree with torch (max |Δlogit| sequence {err_seq:.2e}, step {err_step:.2e})"
        )


def _verify_window(model: GaitModel, seq: bytes, state_in: list[str]) -> None:
    """ORT vs torch for the sequence graph of a whole-window model, at two window lengths."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(seq, so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for b, t in ((2, 24), (1, 61)):
        x = rng.standard_normal((b, t, model.input_size)).astype(np.float32)
        with torch.no_grad():
            ref = model(torch.from_numpy(x))[0].numpy()
        zeros = [s.numpy() for s in model.init_state(b)]
        got = sess.run(None, {"x": x, **dict(zip(state_in, zeros))})[0]
        err = float(np.abs(got - ref).max())
        if not err <= VERIFY_TOL:
            raise ModelError(f"exported window graph disagrees with torch at T={t} (max |Δlogit| {err:.2e})")


def _write_atomic(files: dict[Path, bytes], where: Path) -> None:
    """Write every file to a temporary name first, then rename all into place."""
    try:
        with ExitStack() as stack:
            for path, data in files.items():
                stack.enter_context(atomic_path(path)).write_bytes(data)
    except OSError as exc:
        raise ModelError(f"{where}: cannot write the ONNX files ({exc.strerror or exc})") from None


def export_onnx(tm: TrainedModel, out_dir: str | Path, opset: int = DEFAULT_OPSET, verify: bool = True) -> OnnxPaths:
    """Write ``model.onnx`` and ``model_step.onnx`` for ``tm`` into ``out_dir``.

    ``opset`` must be >= 17.  With ``verify`` both graphs are run with ONNX
    Runtime on a short random input and compared with torch (max |Δlogit| <=
    1e-4) before anything is written.  Existing files of the same names are
    replaced atomically.  Raises :class:`ModelError` on any failure.
    """
    if opset < MIN_OPSET:
        raise ModelError(f"ONNX opset must be >= {MIN_OPSET}, got {opset}")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ModelError(f"{out}: exists and is not a folder")
    model = copy.deepcopy(tm.model).cpu().eval()
    state0 = model.init_state(1)
    n_state = len(state0)
    state_in, state_out = state_names(n_state)
    inputs, outputs = ["x", *state_in], ["logits", *state_out]
    shapes = [list(s.shape) for s in state0]
    if any(len(s) < 2 for s in shapes):
        raise ModelError(f"{model.family}: state tensors need a batch axis at position 1, got shapes {shapes}")

    causal = getattr(model, "causal", True)
    step_mod = _RecurrentStep(model) if isinstance(model, RecurrentClassifier) else _GenericStep(model)
    step_mod.eval()
    seq_mod = _Sequence(model).eval()
    c = model.input_size
    dyn_state = {n: {1: "batch"} for n in state_in + state_out}
    seq_mp = _export_graph(
        seq_mod,
        (torch.zeros(1, 8, c), *state0),
        inputs,
        outputs,
        {"x": {0: "batch", 1: "time"}, "logits": {0: "batch", 1: "time"}, **dyn_state},
        opset,
        "sequence",
    )
    step_mp = None if not causal else _export_graph(
        step_mod,
        (torch.zeros(1, c), *state0),
        inputs,
        outputs,
        {"x": {0: "batch"}, "logits": {0: "batch"}, **dyn_state},
        opset,
        "step",
    )
    blobs: dict[Path, bytes] = {}
    for mp, graph, name in ((seq_mp, "sequence", SEQUENCE_FILE), (step_mp, "step", STEP_FILE)):
        if mp is None:
            continue
        mp.producer_name = "gaitedge"
        mp.producer_version = gaitedge.__version__
        mp.doc_string = (
            f"gaitedge {model.family} gait-phase classifier ({graph} graph); "
            f"classes {', '.join(tm.classes)} at {tm.rate_hz:g} Hz"
        )
        _declare_shapes(mp, graph, len(tm.classes), outputs, shapes)
        meta = onnx_metadata(tm, graph, inputs, outputs, shapes)
        if not causal:
            meta["causal"] = "false"
        onnx.helper.set_model_props(mp, meta)
        check_graph(mp, f"{name} ({model.family})")
        blobs[out / name] = mp.SerializeToString()
    if verify and not causal:
        _verify_window(model, blobs[out / SEQUENCE_FILE], state_in)
    elif verify:
        _verify(model, blobs[out / SEQUENCE_FILE], blobs[out / STEP_FILE], n_state, state_in)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"{out}: cannot create the output folder ({exc.strerror})") from None
    _write_atomic(blobs, out)
    return OnnxPaths(sequence=out / SEQUENCE_FILE, step=out / STEP_FILE if causal else None)
