"""The documentation's examples run: the first example of every page, so the docs cannot rot.

Convention (the pages follow it):

* An *example* is a fenced code block opened with ```` ```bash ````. Other fences
  (```` ```python ````, ```` ```c ````, indented blocks) are never run.
* Each ``docs/*.md`` page's **first** ```` ```bash ```` block is run, and for the
  README the first ```` ```bash ```` block of its ``## Examples`` section (the two
  set-up commands above it install software and are checked, not run). Later
  blocks may show real-size commands; the first one is kept cheap (synthetic
  data, one short epoch, small models) and starts with its own train line when it
  needs a trained run.
* A comment ``# writes: PATH PATH ...`` on a line of the block names files the
  example writes, relative to the folder it runs in; each must exist afterwards.

Each example runs with ``bash -e -o pipefail`` in its own temporary folder, with
a copy of ``configs/`` (the pages are written for the root of a clone), the
repository's ``gaitedge`` first on PATH (a shim running ``python -m gaitedge``
with this checkout on PYTHONPATH) and ``GAITEDGE_IPOL`` set to the shared IPOL
data. It must exit 0; whatever it left running in the background is ended (its
process group). An example skips, saying why, when it needs the shared IPOL data
(the rule of ``conftest.ipol_root``), a tool that is absent (arm-none-eabi-gcc,
qemu-system-arm, cmake, a C compiler) or pylsl.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, SHARED_IPOL

DOCS = ROOT / "docs"
README = ROOT / "README.md"
FENCE = "```bash"
#: seconds one example may take before it counts as hanging
TIMEOUT_S = 300


def bash_blocks(text: str) -> list[str]:
    """The ```bash blocks of a Markdown text, in order (their inner lines)."""
    blocks, cur = [], None
    for line in text.splitlines():
        s = line.strip()
        if cur is None:
            if s == FENCE:
                cur = []
        elif s.startswith("```"):
            blocks.append("\n".join(cur) + "\n")
            cur = None
        else:
            cur.append(line)
    return blocks


def readme_examples_section(text: str) -> str:
    m = re.search(r"^## Examples\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S)
    assert m, "README.md has no '## Examples' section"
    return m.group(1)


def first_examples() -> list[tuple[str, str]]:
    """(name, script) of every example that is run: README's, then each docs page's."""
    out = []
    blocks = bash_blocks(readme_examples_section(README.read_text()))
    if blocks:
        out.append(("README.md#examples", blocks[0]))
    for page in sorted(DOCS.glob("*.md")):
        blocks = bash_blocks(page.read_text())
        if blocks:
            out.append((f"docs/{page.name}", blocks[0]))
    return out


def declared_writes(script: str) -> list[str]:
    """The paths named by ``# writes:`` comments."""
    paths = []
    for m in re.finditer(r"#\s*writes:\s*(.*)$", script, flags=re.M):
        paths += [p.strip("`,;") for p in m.group(1).split()]
    return [p for p in paths if p]


def commands(script: str) -> str:
    """The script without its comments (so a tool named in a comment is not a need)."""
    return "\n".join(line.split(" #", 1)[0] for line in script.splitlines() if not line.lstrip().startswith("#"))


def missing_needs(script: str) -> str | None:
    """Why this example cannot run here, or None."""
    cmd = commands(script)
    if re.search(r"\bipol\b", cmd) and not (SHARED_IPOL / "GaitData").is_dir():
        return "../shared/data/ipol-gait not present"
    if "firmware build" in cmd and "--board host" not in cmd and not shutil.which("arm-none-eabi-gcc"):
        return "arm-none-eabi-gcc not installed"
    if "device emulate" in cmd and "--board host" not in cmd and not shutil.which("qemu-system-arm"):
        return "qemu-system-arm not installed"
    if re.search(r"(^|[;&|]\s*)cmake\s", cmd, flags=re.M):
        if not shutil.which("cmake"):
            return "cmake not installed"
        if not (shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")):
            return "no C compiler installed"
    if ("--lsl" in cmd or "lsl:" in cmd) and importlib.util.find_spec("pylsl") is None:
        return "pylsl not installed"
    return None


def _env(tmp: Path) -> dict[str, str]:
    shim = tmp / ".bin"
    shim.mkdir()
    exe = shim / "gaitedge"
    exe.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m gaitedge "$@"\n')
    exe.chmod(0o755)
    env = dict(os.environ)
    env["PATH"] = f"{shim}{os.pathsep}{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [env.get("PYTHONPATH")] if p])
    env["GAITEDGE_IPOL"] = str(SHARED_IPOL)
    env["GAITEDGE_CACHE"] = str(tmp / ".cache")
    env["MPLBACKEND"] = "Agg"
    env["OMP_NUM_THREADS"] = "1"
    env.pop("VIRTUAL_ENV", None)
    return env


def run_example(script: str, tmp: Path) -> subprocess.CompletedProcess:
    work = tmp / "work"
    work.mkdir()
    shutil.copytree(ROOT / "configs", work / "configs")
    p = subprocess.Popen(["bash", "-e", "-o", "pipefail", "-c", script], cwd=work, env=_env(tmp),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = p.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        err += f"\n(timed out after {TIMEOUT_S} s)"
        p.returncode = -1
    finally:
        try:  # what the example left in the background (an emulator, a publisher)
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return subprocess.CompletedProcess(p.args, p.returncode, out, err)


EXAMPLES = first_examples()


@pytest.mark.parametrize("name,script", EXAMPLES, ids=[n for n, _ in EXAMPLES])
def test_first_example_runs(name, script, tmp_path):
    why = missing_needs(script)
    if why:
        pytest.skip(f"{name}: {why}")
    r = run_example(script, tmp_path)
    assert r.returncode == 0, (f"{name}: the example failed (exit {r.returncode})\n--- script\n{script}"
                               f"--- stdout (tail)\n{r.stdout[-3000:]}\n--- stderr (tail)\n{r.stderr[-3000:]}")
    missing = [p for p in declared_writes(script) if not (tmp_path / "work" / p).exists()]
    assert not missing, f"{name}: the example says it writes {missing}, which do not exist"


def test_every_page_example_is_found_and_declares_what_it_writes():
    names = {n for n, _ in EXAMPLES}
    assert "README.md#examples" in names
    for page in PAGES:
        if page == "testing":  # commands in prose only: running the suite or a fuzz run is no example
            continue
        assert f"docs/{page}.md" in names, f"docs/{page}.md has no ```bash example"
    for name, script in EXAMPLES:
        if name != "docs/data.md":  # data info only prints
            assert declared_writes(script), f"{name}: its first example declares no '# writes:' files"


def test_readme_set_up_commands_come_first_and_match_ci():
    """The README opens with the two set-up commands; .ci/run runs the same test command."""
    text = README.read_text()
    blocks = bash_blocks(text.split("## Examples", 1)[0])
    assert len(blocks) == 2, "the README's set-up section holds exactly the two set-up commands"
    install, tests = (b.strip() for b in blocks)
    assert install == ("python3.11 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && "
                       "pip install -e . && gaitedge train --config configs/default.toml --out runs/default "
                       "--force && ls runs/default")
    assert tests == ("python3.11 -m venv .venv && . .venv/bin/activate && pip install torch==2.13.0 && "
                     'pip install -e ".[test]" && python -m pytest -q tests')
    ci = (ROOT / ".ci" / "run").read_text()
    for step in ("pip install --quiet torch==2.13.0", 'pip install --quiet -e ".[test]"', "python -m pytest -q tests"):
        assert step in ci, f".ci/run no longer runs {step!r}"
    assert "python -m pytest -q tests" in tests


PAGES = ("data", "frames", "models", "training", "sweeps", "onnx", "fixed-point", "firmware", "streaming", "lsl",
         "testing")


def test_relative_links_point_to_files():
    for page in [README, *(DOCS / f"{p}.md" for p in PAGES)]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if re.match(r"[a-z]+:", target):
                continue
            assert (page.parent / target).exists(), f"{page.relative_to(ROOT)} links to missing {target}"
