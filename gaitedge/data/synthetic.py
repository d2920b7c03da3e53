"""Synthetic gait: the built-in default dataset, so gaitedge runs with no data at all.

Each synthetic subject has its own cadence (0.8-1.2 strides/s), swing fraction,
signal amplitudes, sensor tilt and noise.  Each trial is: standing still, walking
with alternating left/right swings (small stride-to-stride jitter), standing
still.  Foot IMUs are simulated in the canonical foot frame (x toward the toe,
y left, z up; ``gaitedge.data.mounting``) with a small per-subject mounting error
(about 7°): gravity on z at rest, the foot turning toe-up in swing (a negative
pitch rate, gyr_y) and toe-down (positive) in the push-off before toe off and
as it comes down flat after heel strike, forward/vertical acceleration in swing
and a decaying heel-strike impact.  Labels and events follow exactly the IPOL
convention (swing = [toe_off, heel_strike), rest outside the walking bout), so
every downstream stage treats synthetic and real data alike.
"""

from __future__ import annotations

import numpy as np

from gaitedge.data.ipol import CHANNELS, UNITS
from gaitedge.data.mounting import CANONICAL
from gaitedge.data.recording import Recording, labels_from_swings

GRAVITY = 9.81  # m/s²


def _subject_params(rng: np.random.Generator) -> dict:
    tilt = rng.normal(0.0, 0.12, size=3)  # rad, sensor mounting error
    return {
        "cadence": rng.uniform(0.8, 1.2),  # strides/s
        "swing_frac": rng.uniform(0.36, 0.42),
        "gyro_peak": rng.uniform(4.0, 7.0),  # rad/s
        "push_off": rng.uniform(1.0, 2.5),  # rad/s dip before toe off
        "impact": rng.uniform(12.0, 30.0),  # m/s²
        "acc_fwd": rng.uniform(8.0, 16.0),  # m/s²
        "acc_up": rng.uniform(3.0, 6.0),  # m/s²
        "noise_acc": rng.uniform(0.08, 0.25),  # m/s²
        "noise_gyr": rng.uniform(0.02, 0.06),  # rad/s
        "rot": _rotation(*tilt),
    }


def _rotation(a: float, b: float, c: float) -> np.ndarray:
    ca, sa, cb, sb, cc, sc = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(c), np.sin(c)
    rx = np.array([[1, 0, 0], [0, ca, -sa], [0, sa, ca]])
    ry = np.array([[cb, 0, sb], [0, 1, 0], [-sb, 0, cb]])
    rz = np.array([[cc, -sc, 0], [sc, cc, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _foot_signals(n: int, rate: float, swings: list[tuple[int, int]], p: dict, rng: np.random.Generator) -> np.ndarray:
    acc = np.zeros((n, 3))
    gyr = np.zeros((n, 3))
    acc[:, 2] = GRAVITY
    t = np.arange(n) / rate
    for to, hs in swings:
        dur = hs - to
        s = (np.arange(to, hs) - to) / dur  # swing progress 0..1
        amp = rng.uniform(0.85, 1.15)
        gyr[to:hs, 1] += amp * p["gyro_peak"] * np.sin(np.pi * s) ** 2
        acc[to:hs, 0] += amp * p["acc_fwd"] * np.sin(2 * np.pi * s)
        acc[to:hs, 2] += amp * p["acc_up"] * np.sin(2 * np.pi * s)
        gyr[to:hs, 2] += 0.3 * amp * np.sin(2 * np.pi * s)
        # push-off: negative pitch rate ramping in over ~150 ms before toe off
        w = int(0.15 * rate)
        a = max(to - w, 0)
        ramp = np.sin(0.5 * np.pi * (np.arange(a, to) - a + 1) / max(w, 1))
        gyr[a:to, 1] -= p["push_off"] * ramp
        # heel strike: the forefoot comes down flat (a pitch-rate bump over 120 ms, twice
        # the push-off) and a decaying impact oscillation
        k = np.arange(hs, min(hs + int(0.12 * rate), n))
        tau = (k - hs) / rate
        decay = np.exp(-tau / 0.025)
        imp = rng.uniform(0.7, 1.3) * p["impact"]
        acc[k, 2] += imp * decay * np.cos(2 * np.pi * 22 * tau)
        acc[k, 0] -= 0.5 * imp * decay * np.sin(2 * np.pi * 22 * tau)
        gyr[k, 1] -= 2.0 * p["push_off"] * np.sin(np.pi * np.minimum(tau / 0.12, 1.0))
    # the pitch above is about the foot's right-pointing axis; the canonical y points left
    gyr[:, 1] = -gyr[:, 1]
    # slow body sway, sensor tilt and noise
    acc[:, 1] += 0.2 * np.sin(2 * np.pi * 0.3 * t + rng.uniform(0, 6.28))
    acc = acc @ p["rot"].T + rng.normal(0, p["noise_acc"], size=acc.shape)
    gyr = gyr @ p["rot"].T + rng.normal(0, p["noise_gyr"], size=gyr.shape)
    return np.concatenate([acc, gyr], axis=1).astype(np.float32)


def synth_trial(
    subject: int,
    trial: int,
    params: dict,
    rng: np.random.Generator,
    rate_hz: float = 100.0,
    other_foot: bool = False,
) -> list[Recording]:
    """One synthetic trial as a left-foot and a right-foot recording."""
    period = 1.0 / params["cadence"]
    rest0 = rng.uniform(1.5, 3.5)
    n_strides = int(rng.integers(6, 12))
    lead = "left" if rng.random() < 0.5 else "right"
    swings: dict[str, list[tuple[int, int]]] = {"left": [], "right": []}
    t = rest0
    for _ in range(n_strides):
        per = period * rng.uniform(0.95, 1.05)
        sw = per * params["swing_frac"] * rng.uniform(0.95, 1.05)
        first, second = (lead, "right" if lead == "left" else "left")
        swings[first].append((round(t * rate_hz), round((t + sw) * rate_hz)))
        t2 = t + per / 2
        swings[second].append((round(t2 * rate_hz), round((t2 + sw) * rate_hz)))
        t += per
    end = max(s[-1][1] for s in swings.values())
    start = min(s[0][0] for s in swings.values())
    n = end + round(rng.uniform(1.5, 3.5) * rate_hz)
    sig = {foot: _foot_signals(n, rate_hz, swings[foot], params, rng) for foot in ("left", "right")}
    out = []
    for foot in ("left", "right"):
        other = "right" if foot == "left" else "left"
        parts = [sig[foot]]
        channels = list(CHANNELS)
        units = list(UNITS)
        if other_foot:
            parts.append(sig[other])
            channels += [f"other_{c}" for c in CHANNELS]
            units += list(UNITS)
        out.append(
            Recording(
                signals=np.concatenate(parts, axis=1),
                channels=channels,
                units=units,
                rate_hz=rate_hz,
                labels=labels_from_swings(n, start, end, swings[foot]),
                events={
                    "toe_off": np.array([a for a, _ in swings[foot]]),
                    "heel_strike": np.array([b for _, b in swings[foot]]),
                },
                subject=f"syn{subject}",
                location=f"{foot}_foot",
                source=f"synthetic:{subject}-{trial}",
                frame=CANONICAL,
            )
        )
    return out


def synth_dataset(
    subjects: int = 10,
    trials: int = 3,
    seed: int = 0,
    rate_hz: float = 100.0,
    other_foot: bool = False,
) -> list[Recording]:
    """A deterministic synthetic dataset: ``subjects`` x ``trials`` x 2 feet recordings."""
    out: list[Recording] = []
    for s in range(1, subjects + 1):
        rng = np.random.default_rng([seed, s])
        params = _subject_params(rng)
        for k in range(1, trials + 1):
            out.extend(synth_trial(s, k, params, rng, rate_hz=rate_hz, other_foot=other_foot))
    return out
