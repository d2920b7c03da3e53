"""C export of a quantized model: ``model_data.h`` / ``model_data.c`` for the C runtime.

:func:`export_c` writes the const arrays and the ``ge_model`` descriptor that the
C runtime (``gaitedge/csrc/runtime``, located by :mod:`gaitedge.resources`) executes,
copies the runtime sources next to them (one folder, ready to drop into a firmware
project), and returns a report with flash and RAM needs.  The packing of the weight
arrays mirrors ``ge_matvec.c`` exactly (see ``gaitedge/csrc/QUANTIZATION.md``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import gaitedge
from gaitedge import resources
from gaitedge.c_literals import c_string, int_array
from gaitedge.errors import ModelError
from gaitedge.export import c_library
from gaitedge.export.packing import pack_head, pack_layer
from gaitedge.quant import spec
from gaitedge.quant.kernels import KERNELS, kernel_for
from gaitedge.quant.model import QuantModel

__all__ = ["CExport", "arena_bytes", "export_c", "weight_bytes"]

#: sizeof(ge_state) on a 32-bit Cortex-M (arm-none-eabi-gcc; printed by the benchmark firmware).
STATE_STRUCT_BYTES = 44
LUT_BYTES = 256 * 4 * 4


# ---------------------------------------------------------------------------------------
# sizes
# ---------------------------------------------------------------------------------------


def _align8(n: int) -> int:
    return (n + 7) & ~7


def arena_bytes(qm: QuantModel) -> int:
    """Mirror of ``ge_arena_bytes()``."""
    n_sec = 0 if qm.pre.sos is None else len(qm.pre.sos)
    aux = sum(lay.aux for lay in qm.layers)
    hnew = max([lay.hidden for lay in qm.layers if lay.hidden > spec.BLOCK], default=0)
    acc = max([kernel_for(lay.family).scratch(lay) for lay in qm.layers] + [4 * -(-qm.n_classes // 4)])
    return (
        _align8(qm.pre.n_inputs * n_sec * 2 * 8)
        + _align8(qm.vec_len() * 2)
        + _align8(aux * 2)
        + _align8(hnew * 2)
        + _align8(acc * 4)
        + _align8(qm.n_classes * 2)
    )


def weight_bytes(qm: QuantModel) -> dict[str, int]:
    """Flash bytes of the model's const arrays (weights, biases, multipliers, preprocessing)."""
    rnn = 0
    for lay in qm.layers:
        w, m = pack_layer(lay)
        rnn += 4 * (len(w) + len(m) + (0 if lay.extra is None else np.asarray(lay.extra).size))
    w, m = pack_head(qm)
    head = 4 * (len(w) + len(m))
    n_sec = 0 if qm.pre.sos is None else len(qm.pre.sos)
    pre = 4 * (2 * qm.pre.n_inputs + 7 * n_sec)
    return {"rnn": rnn, "head": head, "preproc": pre, "total": rnn + head + pre}


# ---------------------------------------------------------------------------------------
# C text
# ---------------------------------------------------------------------------------------


@dataclass
class CExport:
    """Result of :func:`export_c`."""

    out_dir: Path
    files: list[Path]
    report: dict = field(default_factory=dict)

    def summary(self) -> str:
        r = self.report
        wb = r["weight_bytes"]
        lines = [
            f"model {r['family']} hidden {r['hidden']} x {r['layers']} layer(s), {r['n_inputs']} inputs, "
            f"{r['n_classes']} classes; weights sha256 {r['weights_sha256'][:16]}...",
            f"flash: weights {wb['total']} B (recurrent {wb['rnn']}, head {wb['head']}, preprocessing "
            f"{wb['preproc']}), sigmoid/tanh tables {LUT_BYTES} B"
            + (f", runtime code {r['code_bytes']} B ({r['code_note']})" if r.get("code_bytes") else ""),
            f"RAM: state + scratch {r['arena_bytes']} B arena + {STATE_STRUCT_BYTES} B ge_state"
            f" = {r['arena_bytes'] + STATE_STRUCT_BYTES} B (plus stack)",
        ]
        lines += r.get("saturation", [])
        return "\n".join(lines)


def stack_arrays(qm: QuantModel, p: str) -> tuple[list[str], str, str]:
    """C text shared by every descriptor: the preprocessing and layer arrays named ``<p>_*``.

    Returns (the array definitions, the ``ge_preproc_params`` initializer, the
    ``<p>_layers`` table of ``ge_rnn_params``).
    """
    out = [int_array(f"static const int32_t {p}_norm_mult", qm.pre.norm_mult),
           int_array(f"static const int32_t {p}_norm_bias", qm.pre.norm_bias)]
    n_sec = 0 if qm.pre.sos is None else len(qm.pre.sos)
    if n_sec:
        out.append(int_array(f"static const int32_t {p}_sos", qm.pre.sos, per_line=5))
        out.append(int_array(f"static const int32_t {p}_zi", qm.pre.zi, per_line=2))
    layer_inits = []
    for k, lay in enumerate(qm.layers):
        w, m = pack_layer(lay)
        out.append(int_array(f"static const uint32_t {p}_l{k}_weights", w, per_line=6, hexa=True))
        out.append(int_array(f"static const int32_t {p}_l{k}_mult", m))
        n_extra = 0 if lay.extra is None else int(np.asarray(lay.extra).size)
        if n_extra:
            out.append(int_array(f"static const int32_t {p}_l{k}_extra", lay.extra))
        layer_inits.append(
            f"    {{{kernel_for(lay.family).c_name}, {lay.cell_frac}, {lay.in_size}, {lay.hidden}, {lay.aux}, "
            f"{n_extra}, {p}_l{k}_weights, {p}_l{k}_mult, {f'{p}_l{k}_extra' if n_extra else 'NULL'}}},"
        )
    sos, zi = (f"{p}_sos", f"{p}_zi") if n_sec else ("NULL", "NULL")
    pre_init = f"{{{qm.pre.n_inputs}, {qm.pre.in_pad}, {n_sec}, {p}_norm_mult, {p}_norm_bias, {sos}, {zi}}}"
    table = f"static const ge_rnn_params {p}_layers[{len(qm.layers)}] = {{\n" + "\n".join(layer_inits) + "\n};\n"
    return out, pre_init, table


def class_names_array(qm: QuantModel, p: str) -> str:
    """``<p>_class_names``: the class names in logit order."""
    names = ", ".join(c_string(c) for c in qm.classes)
    return f"static const char *const {p}_class_names[{len(qm.classes)}] = {{{names}}};\n\n"


def model_c_source(qm: QuantModel, symbol: str = "ge_model_data", header: str = "model_data.h") -> str:
    """The text of ``model_data.c``."""
    out = [
        f"/* Generated by gaitedge {generator_version()} (gaitedge export c); do not edit.\n"
        f" * {qm.family} hidden {qm.hidden}, {len(qm.layers)} layer(s), inputs: {', '.join(qm.channels)}\n"
        f" * classes: {', '.join(qm.classes)}; fixed-point spec {spec.SPEC_VERSION} (QUANTIZATION.md)\n"
        f" * weights sha256 {qm.weights_hash()} */\n",
        f'#include "{header}"\n\n',
    ]
    p = symbol
    notes = ["/* Scales (see QUANTIZATION.md):",
             f" * inputs: Q0.15 of x_norm / K, K = [{', '.join(f'{k:.4g}' for k in qm.pre.input_range)}];"
             f" norm_mult / norm_bias in Q.{spec.SIG_FRAC}"]
    for k, lay in enumerate(qm.layers):
        sc = lay.scale if lay.scale is not None else lay.mult / 2.0**29
        extra = f"; cell state Q{15 - lay.cell_frac}.{lay.cell_frac}" if lay.family == "lstm" else ""
        notes.append(f" * layer {k} ({lay.family}, {lay.hidden} units over {lay.hidden} + {lay.in_size} inputs): "
                     f"int8 row scales {float(np.min(sc)):.4g} .. {float(np.max(sc)):.4g}, "
                     f"mult = round(scale * 2^29){extra}")
    hs = qm.head_scale if qm.head_scale is not None else qm.head_mult / 2.0 ** (17 + qm.logit_frac)
    notes.append(f" * head: int8 row scales {float(np.min(hs)):.4g} .. {float(np.max(hs)):.4g}, logits "
                 f"Q{15 - qm.logit_frac}.{qm.logit_frac}, mult = round(scale * 2^{17 + qm.logit_frac}) */\n")
    out.append("\n".join(notes))
    arrays, pre_init, layer_table = stack_arrays(qm, p)
    out += arrays
    hw, hm = pack_head(qm)
    out.append(int_array(f"static const uint32_t {p}_head_weights", hw, per_line=6, hexa=True))
    out.append(int_array(f"static const int32_t {p}_head_mult", hm))
    out.append(layer_table)
    out.append(class_names_array(qm, p))
    out.append(
        f"const ge_model {symbol} = {{\n"
        f"    GE_MODEL_MAGIC, {spec.SPEC_VERSION}, {len(qm.layers)}, {qm.n_classes}, {qm.delay}, "
        f"{int(round(qm.rate_hz * 1000))}u,\n"
        f"    {pre_init},\n"
        f"    {p}_layers,\n"
        f"    {{{qm.n_classes}, {qm.head_cols}, {qm.logit_frac}, {p}_head_weights, {p}_head_mult}},\n"
        f"    {{{qm.min_run}, {qm.swing}}},\n"
        f"    {p}_class_names,\n"
        f"    {c_string(qm.weights_hash())},\n"
        f"}};\n"
    )
    return "".join(out)


def model_h_source(qm: QuantModel, symbol: str = "ge_model_data") -> str:
    """The text of ``model_data.h``."""
    guard = f"{symbol.upper()}_H"
    chans = "\n".join(
        f" *   {i}: {c} [{u}], {lsb:.9g} {u} per count, range +-{k:.4g} std"
        for i, (c, u, lsb, k) in enumerate(zip(qm.channels, qm.units, qm.pre.lsb, qm.pre.input_range))
    )
    pre = symbol.upper()
    return (
        f"/* Generated by gaitedge {generator_version()} (gaitedge export c); do not edit.\n"
        f" * Input channels (raw int16 counts, in this order):\n{chans}\n"
        f" * Sampling rate {qm.rate_hz:g} Hz; output delay {qm.delay} samples; debounce {qm.min_run} samples.\n"
        f" * Classes: {', '.join(f'{i} {c}' for i, c in enumerate(qm.classes))}. */\n"
        f"#ifndef {guard}\n#define {guard}\n\n"
        f'#include "gaitedge_rt.h"\n\n'
        f"#define {pre}_N_INPUTS {qm.n_inputs}\n"
        f"#define {pre}_N_CLASSES {qm.n_classes}\n"
        f"#define {pre}_DELAY {qm.delay}\n"
        f"#define {pre}_RATE_MHZ {int(round(qm.rate_hz * 1000))}u\n"
        f"/** Bytes of the arena ge_init() needs (state + scratch); allocate 8-byte aligned. */\n"
        f"#define {pre}_ARENA_BYTES {arena_bytes(qm)}u\n"
        f'#define {pre}_WEIGHTS_SHA256 "{qm.weights_hash()}"\n'
        f"/** The kernels this model uses, as compiler flags for a build of the whole runtime (an exported\n"
        f" *  library's gaitedge_config.h sets them, so it needs none). */\n"
        f'#define {pre}_KIND_CFLAGS "{" ".join(kind_cflags(qm))}"\n\n'
        f"extern const ge_model {symbol};\n\n"
        f"#endif\n"
    )


def generator_version() -> str:
    """The gaitedge version written into the headers of generated files."""
    return gaitedge.__version__


def runtime_files(runtime_dir: Path | None = None) -> list[Path]:
    """The runtime's headers and sources (default: the runtime shipped with gaitedge).

    Raises :class:`gaitedge.resources.MissingSourcesError` when they are not there.
    """
    if runtime_dir is None:
        return resources.runtime_files()
    rt = Path(runtime_dir)
    files = sorted((rt / "include").glob("*.h")) + sorted((rt / "src").glob("*.c"))
    if not (rt / "include" / "gaitedge_rt.h").is_file() or not any(f.suffix == ".c" for f in files):
        raise resources.MissingSourcesError(f"{rt}: no C runtime sources here")
    return files


def kind_cflags(kinds: "list[str] | QuantModel") -> list[str]:
    """Compiler flags that link only these layer kinds' kernels (see ``ge_layers.c``).

    ``kinds`` is a list of layer kinds or a quantized model (its layers' kinds).
    """
    if isinstance(kinds, QuantModel):
        kinds = [lay.family for lay in kinds.layers]
    names = sorted({kernel_for(k).c_name[len("GE_LAYER_"):] for k in kinds})
    return ["-DGE_WITH_ALL_KINDS=0", *[f"-DGE_WITH_{n}=1" for n in names]]


def measure_code_bytes(runtime_dir: Path | None = None, dsp: bool = True, cflags: list[str] | None = None,
                       roots: tuple[str, ...] = ("ge_model",)) -> int | None:
    """.text + .rodata of the runtime compiled with arm-none-eabi-gcc -O2 for Cortex-M4 (None if absent).

    The sigmoid/tanh tables are counted separately (``LUT_BYTES``) and excluded here.
    ``cflags`` (e.g. :func:`kind_cflags`) select the kernels.  Only the objects a
    firmware links are counted: ``roots`` (the entry points' files) and, transitively,
    every object defining a symbol they use (other kinds' kernels and the
    associative memories are left out, as the linker leaves them out).
    """
    gcc = shutil.which("arm-none-eabi-gcc")
    size = shutil.which("arm-none-eabi-size")
    nm = shutil.which("arm-none-eabi-nm")
    if not gcc or not size or not nm:
        return None
    runtime_dir = Path(runtime_dir) if runtime_dir is not None else resources.runtime_dir()
    files = [f for f in runtime_files(runtime_dir) if f.suffix == ".c" and f.name != "ge_lut.c"]
    with tempfile.TemporaryDirectory() as td:
        objs = []
        for f in files:
            o = Path(td) / (f.stem + ".o")
            cmd = [gcc, "-std=c99", "-O2", "-mcpu=cortex-m4", "-mthumb", "-ffunction-sections",
                   f"-I{runtime_dir / 'include'}", *(cflags or []), "-c", str(f), "-o", str(o)]
            if dsp:
                cmd.insert(1, "-DGE_USE_DSP")
            if subprocess.run(cmd, capture_output=True).returncode != 0:
                return None
            objs.append(str(o))
        objs = linked_objects(nm, objs, roots)
        res = subprocess.run([size, "-t", *objs], capture_output=True, text=True)
        if res.returncode != 0:
            return None
        total = res.stdout.strip().splitlines()[-1].split()
        return int(total[0]) + int(total[1])  # text + data (rodata is in text)


def linked_objects(nm: str, objs: list[str], roots: tuple[str, ...]) -> list[str]:
    """The objects reachable from ``roots`` through undefined -> defined symbols."""
    defined: dict[str, str] = {}
    undefined: dict[str, set[str]] = {}
    for o in objs:
        out = subprocess.run([nm, o], capture_output=True, text=True).stdout
        undefined[o] = set()
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 2 and parts[0] == "U":
                undefined[o].add(parts[1])
            elif len(parts) == 3 and parts[1] in "TDRBC":
                defined[parts[2]] = o
    todo = [o for o in objs if Path(o).stem in roots]
    keep: set[str] = set()
    while todo:
        o = todo.pop()
        if o in keep:
            continue
        keep.add(o)
        todo += [defined[sym] for sym in undefined[o] if sym in defined]
    return [o for o in objs if o in keep]


def write_export(out: Path, texts: dict[str, str], copies: list[Path], stale: tuple[str, ...] = ()) -> list[Path]:
    """Write generated ``texts`` (relative path -> text) and copies of ``copies`` into ``out``.

    Everything goes into a temporary folder inside ``out`` first and is then renamed
    into place, so that a failure leaves no half-written output.  ``stale``: relative
    paths of files an earlier export may have left that this one does not write
    (they are removed).  Returns the written paths.
    """
    tmp = Path(tempfile.mkdtemp(prefix=".gaitedge-export-", dir=out))
    written: list[Path] = []
    try:
        items = [(name, text) for name, text in texts.items()] + [(f.name, f) for f in copies]
        for name, item in items:
            dst = tmp / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(item, Path):
                shutil.copyfile(item, dst)
            else:
                dst.write_text(item)
        for name in sorted(name for name, _ in items):
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp / name, out / name)
            written.append(out / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    keep = set(written)
    for name in stale:
        if out / name not in keep and (out / name).is_file():
            (out / name).unlink()
    return written


#: output layouts of :func:`export_c`.
LAYOUTS = ("library", "flat")


def export_c(
    qm: QuantModel,
    out_dir: str | Path,
    symbol: str = "ge_model_data",
    copy_runtime: bool = True,
    measure_code: bool = True,
    layout: str = "library",
    name: str | None = None,
) -> CExport:
    """Export a streaming model for the C runtime into ``out_dir``.

    ``layout``: ``"library"`` (default) writes a self-contained library folder
    (``include/``, ``src/`` with only the runtime sources this model links, a
    generated ``gaitedge_config.h``, CMake, Zephyr, Arduino and PlatformIO files,
    ``examples/main.c`` and ``README.md``; see :mod:`gaitedge.export.c_library`);
    ``"flat"`` writes ``model_data.h/.c``, the generated config and every runtime file
    into one folder.  ``copy_runtime=False`` writes only ``model_data.h/.c``.
    ``name``: the library's name (CMake target, Arduino / PlatformIO / Zephyr module name;
    default: the folder's name when it is a C identifier, else ``gaitedge_<family><hidden>``).

    All files are written into a temporary folder first and then renamed into
    place, so that a failure leaves no half-written output.  Raises
    :class:`gaitedge.resources.MissingSourcesError` when the runtime is not installed.
    """
    if qm.report.get("window"):
        raise ModelError(f"{qm.family} is a whole-window (non-causal) model: the streaming runtime (ge_step) cannot "
                         f"run it; use the window API (gaitedge.export.c_window.export_c_window, ge_window_run)")
    for lay in qm.layers:
        if lay.family not in KERNELS:
            raise ModelError(f"layer '{lay.family}' has no C kernel")
    if not symbol.isidentifier():
        raise ModelError(f"--symbol {symbol!r} is not a C identifier")
    if layout not in LAYOUTS:
        raise ModelError(f"unknown layout {layout!r}; layouts: {', '.join(LAYOUTS)}")
    if not name:
        folder = Path(out_dir).resolve().name
        name = folder if folder.isidentifier() else c_library.library_name(qm)
    if not name.isidentifier():
        raise ModelError(f"library name {name!r} is not a C identifier")
    rt = runtime_files() if copy_runtime else []  # before anything is written: no partial export
    from gaitedge.quant.quantizer import saturation_summary

    report = {
        "family": qm.family,
        "hidden": qm.hidden,
        "layers": len(qm.layers),
        "n_inputs": qm.n_inputs,
        "n_classes": qm.n_classes,
        "weights_sha256": qm.weights_hash(),
        "weight_bytes": weight_bytes(qm),
        "lut_bytes": LUT_BYTES,
        "arena_bytes": arena_bytes(qm),
        "state_struct_bytes": STATE_STRUCT_BYTES,
        "runtime_copied": bool(rt),
        "layout": layout if rt else "model",
        "saturation": saturation_summary(qm),
    }
    if measure_code:
        code = measure_code_bytes(cflags=kind_cflags(qm))
        if code is not None:
            report["code_bytes"] = code
            report["code_note"] = "arm-none-eabi-gcc -O2 -mcpu=cortex-m4 -DGE_USE_DSP, tables excluded"
    version = generator_version()
    copies: list[Path] = []
    stale: tuple[str, ...] = ()
    if not rt:
        texts = {"model_data.h": model_h_source(qm, symbol), "model_data.c": model_c_source(qm, symbol)}
    elif layout == "flat":
        texts = {"model_data.h": model_h_source(qm, symbol), "model_data.c": model_c_source(qm, symbol),
                 "gaitedge_config.h": c_library.config_h_source(qm, version)}
        copies = [f for f in rt if f.name not in texts]
    else:
        texts = c_library.library_texts(qm, symbol, name, rt, report, version)
        texts["include/model_data.h"] = model_h_source(qm, symbol)
        texts["src/model_data.c"] = model_c_source(qm, symbol, header="../include/model_data.h")
        stale = tuple(f"{'include' if f.suffix == '.h' else 'src'}/{f.name}" for f in rt)
        report["library_sources"] = sorted(p[len("src/"):] for p in texts if p.startswith("src/") and p.endswith(".c"))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = write_export(out, texts, copies, stale)
    report["name"] = name
    return CExport(out, written, report)
