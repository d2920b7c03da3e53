"""Run every coverage-guided fuzz target for N seconds each and print what each found.

    python benchmarks/fuzz.py --seconds 60 [--only NAME ...] [--json FILE]

A target is a libFuzzer-driven program: the Python targets are the
``tests/fuzz/fuzz_<name>.py`` modules (atheris), C targets are binaries built
with ``clang -fsanitize=fuzzer,address,undefined`` (see :func:`c_targets`).
Each runs in its own subprocess, with its seed corpus from
``tests/fuzz/corpus/<name>/`` (and the fixed crash inputs of
``tests/fuzz/regressions/<name>/``) and a working corpus, log and crash inputs in
``bench_out/fuzz/<name>/``.  When a target crashes, the crash input is kept and
the target is started again on its grown corpus until its time is used up, so
one run can report several crashes.

Per target the table gives: executions, coverage (libFuzzer's ``cov:`` edges
and ``ft:`` features of the last status line), the corpus size, the number of
crash inputs and the folder they were saved in.  The exit code is 1 when any
target crashed or could not run.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FUZZ_DIR = ROOT / "tests" / "fuzz"
CORPUS_DIR = FUZZ_DIR / "corpus"
#: crash inputs found earlier (fixed since); they seed their target too.
REGRESSIONS_DIR = FUZZ_DIR / "regressions"
OUT_DIR = ROOT / "bench_out" / "fuzz"
#: libFuzzer options every target gets (the time, corpora and artifact folder are added per run).
LIBFUZZER_OPTIONS = ["-max_len=8192", "-timeout=20", "-rss_limit_mb=4096", "-print_final_stats=1"]
#: restarts after crashes within one target's time (each restart re-imports the target).
MAX_RESTARTS = 20


@dataclass
class Target:
    """One fuzz target: how to build it (optional) and how to run it.

    ``run`` is the command line of a libFuzzer-compatible program (atheris
    modules and clang ``-fsanitize=fuzzer`` binaries alike); libFuzzer options
    and corpus folders are appended to it.  ``build``, when given, is run once
    before fuzzing (from the repository root) and must produce the program.
    """

    name: str
    run: list[str]
    build: list[str] | None = None
    kind: str = "python"
    seeds: Path | None = None
    #: run (from the repository root) before ``build``: writes generated sources.
    prepare: list[str] | None = None


@dataclass
class Result:
    """What one target's run found."""

    name: str
    kind: str
    seconds: float = 0.0
    executions: int = 0
    cov: int = 0
    ft: int = 0
    corpus: int = 0
    crashes: int = 0
    crash_dir: str = ""
    crash_files: list[str] = field(default_factory=list)
    error: str = ""


def python_targets() -> list[Target]:
    """The atheris targets: one per ``tests/fuzz/fuzz_<name>.py``."""
    out = []
    for path in sorted(FUZZ_DIR.glob("fuzz_*.py")):
        name = path.stem[len("fuzz_"):]
        out.append(Target(name, [sys.executable, str(path)], seeds=CORPUS_DIR / name))
    return out


@dataclass
class CSpec:
    """A C libFuzzer target: a file defining ``LLVMFuzzerTestOneInput`` and the sources it needs."""

    name: str
    sources: list[str]
    include_dirs: list[str] = field(default_factory=list)
    defines: list[str] = field(default_factory=list)
    #: the target is built with the generated tiny model (``MODEL`` in paths, see ``tests/fuzz/c/make_model.py``).
    model: bool = False
    #: seed corpus folder under ``tests/fuzz/corpus/`` when not ``name`` (a variant sharing another's seeds).
    corpus: str = ""


C_DIR = "tests/fuzz/c"
PROTO_DIR = "gaitedge/csrc/protocol"
FW_DIR = "gaitedge/csrc/firmware"
RT_DIR = "gaitedge/csrc/runtime"
#: stands for the folder ``tests/fuzz/c/make_model.py`` writes the model of the firmware
#: targets into (``<out>/model``) in the sources and include folders of a :class:`CSpec`.
MODEL = "{model}"
_RUNTIME = [str(p.relative_to(ROOT)) for p in sorted((ROOT / RT_DIR / "src").glob("*.c"))]
_FIRMWARE = [f"{PROTO_DIR}/ge_proto.c", f"{FW_DIR}/fw_app.c", f"{FW_DIR}/fw_blob.c", f"{FW_DIR}/fw_mount.c",
             f"{FW_DIR}/fw_mount_store.c", f"{C_DIR}/fake_board.c", *_RUNTIME,
             f"{MODEL}/model/model_data.c", f"{MODEL}/gen/fw_model.c"]
_FW_INCLUDES = [f"{RT_DIR}/include", f"{MODEL}/model", f"{MODEL}/gen", PROTO_DIR, FW_DIR, C_DIR]

#: The C targets (paths relative to the repository root).  Add an entry per
#: harness; its seed corpus goes in ``tests/fuzz/corpus/<name>/``.
C_SPECS: list[CSpec] = [
    CSpec("c_deframer", [f"{C_DIR}/fuzz_deframer.c", f"{PROTO_DIR}/ge_proto.c"], [PROTO_DIR]),
    CSpec("c_fw_requests", [f"{C_DIR}/fuzz_fw_requests.c", *_FIRMWARE], _FW_INCLUDES, model=True),
    CSpec("c_fw_flash", [f"{C_DIR}/fuzz_fw_flash.c", *_FIRMWARE], _FW_INCLUDES, model=True),
    CSpec("c_model", [f"{C_DIR}/fuzz_model.c", *_RUNTIME], [f"{RT_DIR}/include"]),
    # the same with the runtime's DSP path (SXTB16/SMLAD/USAT emulated in C), as Cortex-M4 builds run it
    CSpec("c_model_dsp", [f"{C_DIR}/fuzz_model.c", *_RUNTIME], [f"{RT_DIR}/include"], ["GE_USE_DSP_EMULATE"],
          corpus="c_model"),
]


def c_targets(clang: str | None = None, out_dir: Path = OUT_DIR) -> list[Target]:
    """The C targets of :data:`C_SPECS`, built with clang's libFuzzer, ASan and UBSan.

    Binaries go to ``out_dir/bin/``, the generated model to ``out_dir/model/``.  Empty
    when ``clang`` is not installed (the C targets are then left out).
    """
    clang = clang or shutil.which("clang")
    if clang is None:
        return []
    out = []
    model = out_dir / "model"

    def path(p: str) -> str:
        return str(ROOT / p.replace(MODEL, str(model)))

    for spec in C_SPECS:
        binary = out_dir / "bin" / spec.name
        binary.parent.mkdir(parents=True, exist_ok=True)
        build = [clang, "-g", "-O1", "-fsanitize=fuzzer,address,undefined", "-fno-sanitize-recover=undefined",
                 *(f"-I{path(d)}" for d in spec.include_dirs), *(f"-D{d}" for d in spec.defines),
                 *(path(s) for s in spec.sources), "-o", str(binary)]
        prepare = [sys.executable, str(ROOT / C_DIR / "make_model.py"), str(model)] if spec.model else None
        out.append(Target(spec.name, [str(binary)], build=build, kind="c",
                          seeds=CORPUS_DIR / (spec.corpus or spec.name), prepare=prepare))
    return out


def all_targets(out_dir: Path = OUT_DIR) -> list[Target]:
    """Every registered target: the Python ones, then the C ones this machine can build (into ``out_dir``)."""
    return python_targets() + c_targets(out_dir=out_dir)


_STATUS = re.compile(r"^#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/")
_EXECUTED = re.compile(r"stat::number_of_executed_units: (\d+)")
_ARTIFACT = re.compile(r"Test unit written to (\S+)")


def parse_log(text: str) -> dict:
    """Executions, coverage and crash inputs from a libFuzzer log (one process's output)."""
    out = {"executions": 0, "cov": 0, "ft": 0, "corpus": 0, "artifacts": _ARTIFACT.findall(text)}
    for line in text.splitlines():
        m = _STATUS.match(line)
        if m:
            out["executions"], out["cov"], out["ft"], out["corpus"] = (int(g) for g in m.groups())
    executed = _EXECUTED.findall(text)
    if executed:
        out["executions"] = int(executed[-1])
    return out


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def run_target(target: Target, seconds: float, out_dir: Path = OUT_DIR) -> Result:
    """Fuzz one target for ``seconds`` (restarting after crashes) and collect its figures."""
    res = Result(target.name, target.kind)
    work = out_dir / target.name
    corpus = work / "corpus"
    crashes = work / "crashes"
    corpus.mkdir(parents=True, exist_ok=True)
    crashes.mkdir(parents=True, exist_ok=True)
    res.crash_dir = _shown(crashes)
    log_path = work / "log.txt"
    log_path.write_text("")
    for step in (target.prepare, target.build):
        if not step:
            continue
        b = subprocess.run(step, cwd=ROOT, capture_output=True, text=True)
        if b.returncode != 0:
            res.error = f"build failed: {(b.stderr or b.stdout).strip().splitlines()[-1:]}"
            return res
    seeds = [str(d) for d in (target.seeds, REGRESSIONS_DIR / target.name) if d is not None and d.is_dir()]
    start = time.monotonic()
    for _ in range(MAX_RESTARTS + 1):
        left = seconds - (time.monotonic() - start)
        if left < 1:
            break
        cmd = [*target.run, *LIBFUZZER_OPTIONS, f"-max_total_time={int(round(left))}",
               f"-artifact_prefix={crashes}/", str(corpus), *seeds]
        try:
            p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, errors="replace",
                               timeout=left + 120)
            text, code = p.stdout + p.stderr, p.returncode
        except subprocess.TimeoutExpired as exc:
            text = (exc.stdout or b"").decode(errors="replace") + (exc.stderr or b"").decode(errors="replace")
            code = -1
            res.error = "did not stop in time"
        with log_path.open("a") as fh:
            fh.write(f"$ {' '.join(cmd)}\n{text}\n")
        info = parse_log(text)
        res.executions += info["executions"]
        res.cov, res.ft, res.corpus = max(res.cov, info["cov"]), max(res.ft, info["ft"]), info["corpus"] or res.corpus
        found = [_shown(ROOT / a) for a in info["artifacts"]]
        fresh = [a for a in found if a not in res.crash_files]
        res.crash_files += fresh
        if code == 0 or code == -1:
            break
        if not found:
            res.error = f"exited with code {code} without a crash input (see {_shown(log_path)})"
            break
        if not fresh:
            break  # the same input crashed again: the crash comes first, fuzzing on finds nothing new
    res.seconds = round(time.monotonic() - start, 1)
    res.crashes = len(res.crash_files)
    return res


def table(results: list[Result]) -> str:
    """The results as a Markdown table."""
    head = "| target | kind | s | executions | exec/s | cov | ft | corpus | crashes | crash inputs saved in |"
    lines = [head, "|---|---|--:|--:|--:|--:|--:|--:|--:|---|"]
    for r in results:
        rate = r.executions / r.seconds if r.seconds else 0.0
        where = r.error or (f"{r.crash_dir}/ ({', '.join(Path(f).name for f in r.crash_files)})" if r.crashes else "-")
        lines.append(f"| {r.name} | {r.kind} | {r.seconds:.0f} | {r.executions} | {rate:.0f} | {r.cov} | {r.ft} | "
                     f"{r.corpus} | {r.crashes} | {where} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit code."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="fuzzing time per target (default 20)")
    ap.add_argument("--only", action="append", metavar="NAME", help="run only this target (repeatable)")
    ap.add_argument("--list", action="store_true", help="list the targets and exit")
    ap.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    ap.add_argument("--out", type=Path, default=OUT_DIR,
                    help="folder for the working corpora, logs and crash inputs (default %(default)s)")
    args = ap.parse_args(argv)
    targets = all_targets(args.out.resolve())
    if args.list:
        for t in targets:
            print(f"{t.name}\t{t.kind}\t{' '.join(t.run)}")
        return 0
    if args.only:
        known = {t.name for t in targets}
        unknown = [n for n in args.only if n not in known]
        if unknown:
            print(f"fuzz.py: unknown target(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}",
                  file=sys.stderr)
            return 2
        targets = [t for t in targets if t.name in args.only]
    if any(t.kind == "python" for t in targets):
        try:
            import atheris  # noqa: F401
        except ImportError:
            print("fuzz.py: atheris is not installed (pip install atheris)", file=sys.stderr)
            return 2
    results = []
    for t in targets:
        print(f"fuzzing {t.name} for {args.seconds:g} s ...", file=sys.stderr, flush=True)
        results.append(run_target(t, args.seconds, args.out.resolve()))
    print(table(results))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2) + "\n")
    bad = [r for r in results if r.crashes or r.error]
    print(f"{len(results)} targets, {sum(r.crashes for r in results)} crashes"
          + (f", {sum(bool(r.error) for r in results)} failed to run" if any(r.error for r in results) else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
