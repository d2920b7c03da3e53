"""``gaitedge stream`` and ``gaitedge imu-sim``: live classification and a virtual IMU board."""

from __future__ import annotations

import argparse
from dataclasses import fields

from gaitedge.cli.common import parse_lsb


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the ``gaitedge`` sub-command parser."""
    st = sub.add_parser("stream", help="live gait phase, steps and events from a connected IMU or a replay")
    src = st.add_mutually_exclusive_group(required=True)
    src.add_argument("--port", help="pyserial URL of the IMU: /dev/ttyUSB0, socket://HOST:PORT, rfc2217://..., loop://")
    src.add_argument("--replay", help="replay a recording: a CSV file or a data spec")
    src.add_argument("--lsl", action="append", metavar="QUERY",
                     help="read a Lab Streaming Layer stream: name=NAME, type=IMU, key=value,... or an XPath "
                          "predicate; twice for one stream per foot (with two models); needs pylsl")
    st.add_argument("--model", action="append", metavar="[NAME=]RUN",
                    help="run folder, model_step.onnx or model.pt; twice for two feet (default names left, right); "
                         "optional with --backend device (checked against the board)")
    st.add_argument("--backend", choices=["onnx", "torch", "device"], default="onnx",
                    help="inference backend (default onnx; device: the board at --device)")
    st.add_argument("--device", metavar="URL",
                    help="with --backend device: the board's pyserial URL "
                         "(/dev/ttyACM0, or the socket:// URL of 'gaitedge device emulate')")
    st.add_argument("--format", choices=["text", "frames"], default="text",
                    help="--port input: text lines (default) or binary SAMPLES frames of int16 counts")
    st.add_argument("--columns", action="append", metavar="FIELDS",
                    help="name each field of an input line: model channels (or ax..gz), t / t_ms / t_us, seq[%%N], _ "
                         "(default t,<model channels>); once per model with two models")
    st.add_argument("--scale", help="factors into model units: a number, or acc=..,gyr=..,CHANNEL=.. "
                                    "(numbers or g, mg, deg, mdeg, e.g. acc=g,gyr=deg)")
    st.add_argument("--mounting", help="sensor mounting: auto (estimated from the first seconds of standing and "
                                       "walking; no labels until it locks), a mounting file, an axis map "
                                       "x=..,y=..,z=.. or left=MAP,right=MAP (docs/frames.md)")
    st.add_argument("--foot", choices=["left", "right"],
                    help="which foot a single model's own channels come from (for per-foot mountings; default: "
                         "the model's name, else left)")
    st.add_argument("--speed", type=float, help="replay speed-up (default 1 = real time; 0 = as fast as possible)")
    st.add_argument("--index", type=int, default=0, help="which recording of a multi-recording data spec (default 0)")
    st.add_argument("--baud", type=int, default=115200, help="baud rate for real serial ports (default 115200)")
    st.add_argument("--lsl-timeout", type=float, default=5.0,
                    help="seconds to wait for the --lsl stream(s) to answer (default 5)")
    st.add_argument("--lsl-out", metavar="NAME",
                    help="publish on LSL: the gait phase per sample (NAME-phase) and the events as markers "
                         "(NAME-events), stamped with the LSL time of their sample; needs pylsl")
    st.add_argument("--log", help="event log: events.jsonl or events.csv")
    st.add_argument("--events-table", metavar="EVENTS.csv",
                    help="at the end, write the detected events as a gaitmap-style stride table "
                         "(s_id, foot, start, end, ic, tc, min_vel; sample indices of the stream)")
    st.add_argument("--plot", action="store_true", help="live matplotlib plot")
    st.add_argument("--duration", type=float, help="stop after this many seconds")
    st.add_argument("--samples", type=int, help="stop after this many input samples")
    st.add_argument("--quiet", action="store_true", help="no live view; summary only")
    st.set_defaults(func=cmd_stream)

    sim = sub.add_parser("imu-sim", help="a virtual IMU board serving a recording on a pty, a TCP port or LSL")
    sim.add_argument("--replay", required=True, help="the recording: a CSV file or a data spec")
    sim.add_argument("--listen", default="pty",
                     help="pty (prints the device path), tcp:PORT, or lsl:NAME (an LSL IMU stream; prints the "
                          "query for --lsl; needs pylsl) (default pty)")
    sim.add_argument("--speed", type=float, help="speed-up (default 1 = real time; 0 = as fast as read)")
    sim.add_argument("--loop", action="store_true", help="repeat the recording forever")
    sim.add_argument("--index", type=int, default=0, help="which recording of a multi-recording data spec (default 0)")
    sim.add_argument("--other-foot", action="store_true", help="include the other foot's channels (data specs)")
    sim.add_argument("--link", help="with pty: keep this symlink pointing at the device (survives --unplug)")
    sim.add_argument("--counter", action="store_true", help="prefix each line with a sample counter (seq)")
    sim.add_argument("--garbage", type=float, default=0.0, help="probability per line of an extra garbage line")
    sim.add_argument("--corrupt", type=float, default=0.0, help="probability per line of mangling it")
    sim.add_argument("--burst-every", type=float, help="every S seconds stall, then send --burst-size samples at once")
    sim.add_argument("--burst-size", type=int, help="samples per burst")
    sim.add_argument("--unplug", action="append", metavar="AT[:FOR]",
                     help="simulate unplugging at AT s for FOR s (default 1) of stream time; repeatable")
    sim.add_argument("--seed", type=int, default=0, help="seed of the fault injection")
    sim.add_argument("--format", choices=["text", "frames"], default="text",
                     help="text lines (default) or binary SAMPLES frames of int16 counts")
    sim.add_argument("--lsb", action="append", metavar="CHANNEL=VALUE",
                     help="frames: sensor resolution in channel units per count "
                          "(default: +-16 g, +-2000 dps at 16 bit)")
    sim.add_argument("--frame-samples", type=int, help="frames: at most this many samples per frame (default 1)")
    sim.set_defaults(func=cmd_imusim)


def cmd_stream(args: argparse.Namespace) -> int:
    from gaitedge.stream.app import StreamOptions, run_stream

    return run_stream(StreamOptions(**_options(args, StreamOptions)))


def cmd_imusim(args: argparse.Namespace) -> int:
    from gaitedge.stream.app import ImuSimOptions, run_imusim

    opts = _options(args, ImuSimOptions)
    opts["lsb"] = parse_lsb(args.lsb)
    return run_imusim(ImuSimOptions(**opts))


def _options(args: argparse.Namespace, cls: type) -> dict:
    """The fields of the options dataclass ``cls`` taken from ``args``; an option not given keeps a list default."""
    out = {}
    for f in fields(cls):
        v = getattr(args, f.name)
        out[f.name] = f.default_factory() if v is None and f.default_factory is list else v
    return out
