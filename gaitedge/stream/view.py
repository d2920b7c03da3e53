"""What a streaming session shows and writes: terminal view, event log, live plot, summary.

All of it runs outside the inference thread and only reads the session's
counters and recent records, so a slow terminal or disk never delays
classification (see :mod:`gaitedge.stream.session`).
"""

from __future__ import annotations

import csv
import json
import math
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING

from gaitedge.errors import DataError

if TYPE_CHECKING:
    from gaitedge.stream.session import Record, Session, Summary

LOG_FIELDS = ("wall_time", "t_s", "sample", "foot", "kind", "detail")


def _iso(wall: float) -> str:
    return datetime.fromtimestamp(wall, timezone.utc).isoformat(timespec="milliseconds")


class EventLog:
    """Gait events and stream incidents, one per line, as JSON Lines (``.jsonl``) or CSV (``.csv``).

    Fields: ``wall_time`` (ISO 8601 UTC), ``t_s`` (stream time, s), ``sample``
    (index in the stream), ``foot``, ``kind`` (``heel_strike``, ``toe_off``,
    or an incident: ``gap``, ``restart``, ``disconnect``, ``reconnect``,
    ``notice``) and ``detail``.  The file is flushed after every batch.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix in (".jsonl", ".ndjson", ".json"):
            self.format = "jsonl"
        elif suffix == ".csv":
            self.format = "csv"
        else:
            raise DataError(f"--log {self.path}: use a .jsonl or .csv file name")
        try:
            self._fh: IO[str] = self.path.open("w", encoding="utf-8", newline="")
        except OSError as exc:
            raise DataError(f"--log {self.path}: cannot write ({exc.strerror or exc})") from None
        self._csv = None
        if self.format == "csv":
            self._csv = csv.writer(self._fh)
            self._csv.writerow(LOG_FIELDS)
        self.count = 0

    def write(self, rec: "Record") -> None:
        t = round(rec.t_s, 6)
        if self._csv is not None:
            self._csv.writerow([_iso(rec.wall), f"{t:.6f}", rec.sample, rec.foot, rec.kind, rec.detail])
        else:
            d = {"wall_time": _iso(rec.wall), "t_s": t, "sample": rec.sample, "foot": rec.foot, "kind": rec.kind}
            if rec.detail:
                d["detail"] = rec.detail
            self._fh.write(json.dumps(d) + "\n")
        self.count += 1

    def flush(self) -> None:
        self._fh.flush()

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            self._fh.close()


def read_log(path: str | Path) -> list[dict]:
    """Read an :class:`EventLog` back (``sample`` as int, ``t_s`` as float)."""
    path = Path(path)
    rows: list[dict] = []
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8", newline="") as fh:
            for r in csv.DictReader(fh):
                rows.append(dict(r))
    else:
        rows = [json.loads(ln) for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    for r in rows:
        r["sample"] = int(r["sample"])
        r["t_s"] = float(r["t_s"])
    return rows


# -- text --------------------------------------------------------------------------------


def _num(v: float, fmt: str = ".0f", none: str = "-") -> str:
    return none if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, fmt)


def format_record(rec: "Record") -> str:
    """One human-readable line for an event or incident."""
    who = f"{rec.foot:<6s} " if rec.foot else ""
    tail = f"  {rec.detail}" if rec.detail else ""
    return f"{rec.t_s:9.3f} s  {who}{rec.kind:<11s} sample {rec.sample}{tail}"


def format_summary(s: "Summary") -> str:
    """The end-of-stream report."""
    lines = [
        f"stream ended after {s.duration_s:.1f} s: {s.samples} samples received"
        + (f" ({s.input_rate:.1f}/s)" if not math.isnan(s.input_rate) else "")
    ]
    for ln in s.lanes:
        lines.append(
            f"  {ln.name}: {ln.strides} strides ({ln.heel_strikes} heel strikes, {ln.toe_offs} toe offs), "
            f"cadence {_num(ln.cadence_spm)} steps/min, stance {_num(ln.stance_pct)}% / swing {_num(ln.swing_pct)}%"
        )
    how = "2 per stride of the one foot observed" if len(s.lanes) == 1 else "heel strikes of both feet"
    lines.append(f"  steps {s.steps} ({how}), cadence {_num(s.cadence_spm)} steps/min")
    lines.append(
        f"  latency sample -> label p50 {_num(s.latency_p50_ms, '.2f')} ms, p99 {_num(s.latency_p99_ms, '.2f')} ms, "
        f"max {_num(s.latency_max_ms, '.2f')} ms over {s.latency_n} samples "
        f"(model lag {s.model_lag_ms:.0f} ms on top)"
    )
    lines.append(
        f"  dropped {s.dropped}, lost {s.lost} in {s.gaps} gaps (filled {s.filled}), corrupt {s.corrupt}, "
        f"duplicates {s.duplicates}, restarts {s.restarts}, disconnects {s.disconnects}, reconnects {s.reconnects}"
        + (f", {s.outliers} off-grid counter/timestamp(s) dropped" if s.outliers else "")
    )
    if s.records_dropped:
        lines.append(f"  {s.records_dropped} log records dropped (writer queue full)")
    if s.error:
        lines.append(f"  ended by an error: {s.error}")
    return "\n".join(lines)


class TerminalView:
    """Live status of a session on a terminal.

    On a terminal (``live``, default: when ``out`` is a tty) a status block is
    redrawn in place at most every ``interval`` s and events scroll above it.
    Otherwise plain lines: every event and incident as it is written, and one
    status line every ``status_every`` s.  ``events=False`` prints incidents
    only.
    """

    def __init__(
        self,
        session: "Session",
        out: IO[str] | None = None,
        live: bool | None = None,
        status_every: float = 5.0,
        events: bool = True,
        title: str = "",
    ) -> None:
        self.session = session
        self.out = out if out is not None else sys.stdout
        self.live = self.out.isatty() if live is None else live
        self.status_every = status_every
        self.events = events
        self.title = title
        self._drawn = 0
        self._pos = 0
        self._last_status = time.perf_counter()
        self._rate_mark = (time.perf_counter(), 0)
        self._rate = math.nan

    def _rate_now(self) -> float:
        t, n = time.perf_counter(), self.session.stats.received
        t0, n0 = self._rate_mark
        if t - t0 >= 1.0:
            self._rate = (n - n0) / (t - t0)
            self._rate_mark = (t, n)
        return self._rate

    def status_lines(self) -> list[str]:
        """The status block (also used for the plain status line)."""
        s = self.session
        st = s.stats
        src = s.source.stats
        p50, p99 = s.latency.percentiles_ms((50, 99), last=4000)
        elapsed = time.perf_counter() - st.started if st.started else 0.0
        state = "connected" if st.connected else "reconnecting..."
        head = f"gaitedge stream  {self.title}  {s.rate_hz:g} Hz  {state}  {elapsed:6.1f} s"
        rows = [head, f"  {'foot':<8s}{'phase':<9s}{'strides':>8s}{'cadence':>13s}   stance/swing"]
        now = s._next
        for ln, tr in zip(s.lanes, s.trackers):
            stance, swing = tr.stance_swing()
            cad = tr.cadence(now_sample=now)
            rows.append(
                f"  {ln.name:<8s}{tr.phase_name:<9s}{tr.strides:>8d}{_num(cad):>8s} /min   "
                f"{_num(stance)}% / {_num(swing)}%"
            )
        rows.append(
            f"  samples {st.received} ({_num(self._rate_now())}/s)  latency p50 {_num(p50, '.2f')} ms  "
            f"p99 {_num(p99, '.2f')} ms  (+{1000.0 * s.label_lag / s.rate_hz:.0f} ms model lag)"
        )
        rows.append(
            f"  dropped {st.dropped}  lost {st.lost}  corrupt {src.corrupt}  gaps {st.gaps}  "
            f"reconnects {st.reconnects}"
        )
        return rows

    def update(self, final: bool = False) -> None:
        """Print new records and refresh the status (call periodically from one thread)."""
        recs, self._pos = self.session.records_since(self._pos)
        shown = [r for r in recs if self.events or r.foot == ""]
        w = self.out
        try:
            if self.live:
                if self._drawn:
                    w.write(f"\x1b[{self._drawn}F\x1b[J")
                for r in shown:
                    w.write(format_record(r) + "\n")
                block = self.status_lines()
                w.write("\n".join(block) + "\n")
                self._drawn = len(block)
            else:
                for r in shown:
                    w.write(format_record(r) + "\n")
                now = time.perf_counter()
                if not final and now - self._last_status >= self.status_every:
                    self._last_status = now
                    w.write(" | ".join(x.strip() for x in self.status_lines()[2:]) + "\n")
            w.flush()
        except (OSError, ValueError):
            pass


class LivePlot:
    """A matplotlib window with the last ``window_s`` s of one input channel and the decided phase per foot.

    Needs an interactive matplotlib backend; with a non-interactive one
    (no display) :attr:`interactive` is False and :meth:`update` only redraws
    the figure off-screen.
    """

    def __init__(self, session: "Session", window_s: float = 10.0) -> None:
        import matplotlib
        import matplotlib.pyplot as plt

        if session.history is None:
            raise DataError("the session keeps no history for a plot (history_s=0)")
        self.session = session
        self.window = int(window_s * session.rate_hz)
        self.plt = plt
        self.interactive = matplotlib.get_backend().lower() not in ("agg", "pdf", "ps", "svg", "cairo", "template")
        n = len(session.lanes)
        self.fig, axes = plt.subplots(n, 1, sharex=True, figsize=(9, 2.6 * n), squeeze=False)
        self.lines = []
        for ax, ln, h in zip(axes[:, 0], session.lanes, session.history):
            ch = ln.backend.channels[h.channel]
            (sig,) = ax.plot([], [], lw=1.0, label=ch)
            ax2 = ax.twinx()
            (lab,) = ax2.step([], [], where="post", color="tab:orange", lw=1.2)
            classes = ln.backend.classes
            ax2.set_yticks(range(len(classes)), classes)
            ax2.set_ylim(-0.5, len(classes) - 0.5)
            ax.set_ylabel(f"{ln.name}: {ch}")
            self.lines.append((ax, sig, lab))
        axes[-1, 0].set_xlabel("stream time (s)")
        self.fig.tight_layout()
        if self.interactive:
            plt.show(block=False)

    def update(self) -> None:
        s = self.session
        for (ax, sig, lab), h in zip(self.lines, s.history or []):
            idx, vals, labs = h.window(self.window)
            t = idx / s.rate_hz
            sig.set_data(t, vals)
            lab.set_data(t, labs.astype(float))
            if len(t):
                ax.set_xlim(t[0], max(t[-1], t[0] + 1e-3))
                ok = vals[~(vals != vals)]
                if len(ok):
                    lo, hi = float(ok.min()), float(ok.max())
                    pad = 0.05 * (hi - lo) + 1e-6
                    ax.set_ylim(lo - pad, hi + pad)
        if self.interactive:
            self.fig.canvas.draw_idle()
            self.fig.canvas.flush_events()
        else:
            self.fig.canvas.draw()

    def pause(self, seconds: float) -> None:
        """Let the GUI process events for ``seconds`` (a plain sleep without a GUI)."""
        if self.interactive:
            self.plt.pause(seconds)
        else:
            time.sleep(seconds)

    def close(self) -> None:
        self.plt.close(self.fig)
