"""What the streaming and the window C exports share.

The :class:`CExport` result, the preprocessing / layer arrays of a descriptor, the
class names, the runtime's files, the compiler flags that link only a model's
kernels, the code-size measurement, and the write-then-rename of an export folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import gaitedge
from gaitedge import resources
from gaitedge.c_literals import c_string, initializer_list, int_array
from gaitedge.export.packing import pack_layer
from gaitedge.quant.kernels import kernel_for
from gaitedge.quant.model import QuantModel

#: sizeof(ge_state) on a 32-bit Cortex-M (arm-none-eabi-gcc; printed by the benchmark firmware).
STATE_STRUCT_BYTES = 44
LUT_BYTES = 256 * 4 * 4


def align8(n: int) -> int:
    """``n`` rounded up to a multiple of 8 (the arena's alignment of each block, bytes)."""
    return (n + 7) & ~7


@dataclass
class CExport:
    """Result of a C export (:func:`gaitedge.export.c_export.export_c`): the folder, the files, the report."""

    out_dir: Path
    files: list[Path]
    report: dict = field(default_factory=dict)

    def summary(self) -> str:
        """Human-readable lines: the model, its flash and RAM needs, what saturates."""
        r = self.report
        lines = [
            f"model {r['family']} hidden {r['hidden']} x {r['layers']} layer(s), {r['n_inputs']} inputs, "
            f"{r['n_classes']} classes; weights sha256 {r['weights_sha256'][:16]}...",
            flash_summary(r),
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
            f"    {{{kernel_for(lay.kind).c_name}, {lay.cell_frac}, {lay.in_size}, {lay.hidden}, {lay.aux}, "
            f"{n_extra}, {p}_l{k}_weights, {p}_l{k}_mult, {f'{p}_l{k}_extra' if n_extra else 'NULL'}}},"
        )
    sos, zi = (f"{p}_sos", f"{p}_zi") if n_sec else ("NULL", "NULL")
    pre_init = f"{{{qm.pre.n_inputs}, {qm.pre.in_pad}, {n_sec}, {p}_norm_mult, {p}_norm_bias, {sos}, {zi}}}"
    table = f"static const ge_rnn_params {p}_layers[{len(qm.layers)}] = {{\n" + "\n".join(layer_inits) + "\n};\n"
    return out, pre_init, table


def class_names_array(qm: QuantModel, p: str) -> str:
    """``<p>_class_names``: the class names in logit order."""
    names = initializer_list(c_string(c) for c in qm.classes)
    return f"static const char *const {p}_class_names[{len(qm.classes)}] = {{{names}}};\n\n"


def flash_summary(report: dict) -> str:
    """The flash line of an export report: weights by part, the tables, the runtime code when measured (bytes)."""
    wb = report["weight_bytes"]
    return (f"flash: weights {wb['total']} B (recurrent {wb['rnn']}, head {wb['head']}, preprocessing "
            f"{wb['preproc']}), sigmoid/tanh tables {LUT_BYTES} B"
            + (f", runtime code {report['code_bytes']} B ({report['code_note']})" if report.get("code_bytes") else ""))


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
        kinds = [lay.kind for lay in kinds.layers]
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
    keep = reachable([o for o in objs if Path(o).stem in roots],
                     lambda o: [defined[sym] for sym in undefined[o] if sym in defined])
    return [o for o in objs if o in keep]


def reachable(roots: Iterable[str], neighbours: Callable[[str], Iterable[str]]) -> set[str]:
    """Every node reachable from ``roots`` (the roots included) through ``neighbours``."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo += [n for n in neighbours(node) if n not in seen]
    return seen


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
