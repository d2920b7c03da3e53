"""Draw docs/frames.png: the canonical foot frame on a left and a right shoe.

Run from the repository root: ``python docs/make_frames_figure.py``.  Top row:
side views (toe to the right, seen from the subject's right side, so +y points
into the page); bottom row: top views (toe up, seen from above, +z out of the
page).  Both feet carry the same frame.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Arc, Circle, FancyArrowPatch, Polygon  # noqa: E402
from scipy.interpolate import splev, splprep  # noqa: E402

OUT = Path(__file__).with_name("frames.png")
COLORS = {"x": "#c0392b", "y": "#1e8449", "z": "#1f4e9c"}

# top view of a left shoe (u: image right = medial for the left foot, v: toward the toe)
_TOP_LEFT = [
    (0.0, 0.0), (1.2, 0.3), (1.6, 1.5), (1.4, 3.5), (1.6, 5.2), (2.1, 6.8), (2.2, 8.3),
    (1.7, 9.5), (0.7, 10.0), (-0.4, 9.8), (-1.4, 9.0), (-2.0, 7.6), (-2.1, 6.0),
    (-1.9, 4.0), (-1.7, 2.0), (-1.3, 0.5),
]
# side view of a shoe (u: toward the toe, v: up)
_SIDE = [
    (0.0, 0.0), (5.0, -0.05), (9.6, 0.0), (10.6, 0.5), (10.5, 1.4), (9.2, 2.0), (7.2, 2.6),
    (5.6, 3.4), (4.4, 4.6), (3.9, 5.4), (1.6, 5.1), (0.2, 5.5), (-0.3, 3.5), (-0.45, 1.5), (-0.3, 0.4),
]


def smooth(points: list[tuple[float, float]], n: int = 300) -> np.ndarray:
    """A closed smooth outline through ``points`` (periodic spline)."""
    p = np.array(points + [points[0]], dtype=float)
    tck, _ = splprep([p[:, 0], p[:, 1]], s=0.05, per=True)
    u, v = splev(np.linspace(0, 1, n), tck)
    return np.column_stack([u, v])


def arrow(ax, start, end, color, label, offset=(0.0, 0.0)) -> None:
    """A thick axis arrow with its label just past the tip."""
    ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=22, lw=3, color=color, zorder=5))
    ax.text(end[0] + offset[0], end[1] + offset[1], label, color=color, fontsize=13, fontweight="bold",
            ha="center", va="center", zorder=6)


def into_page(ax, at, color, label, offset) -> None:
    """Circle with a cross: an axis pointing into the page."""
    ax.add_patch(Circle(at, 0.45, fill=False, lw=2.5, color=color, zorder=6))
    d = 0.45 / np.sqrt(2)
    ax.plot([at[0] - d, at[0] + d], [at[1] - d, at[1] + d], color=color, lw=2.5, zorder=6)
    ax.plot([at[0] - d, at[0] + d], [at[1] + d, at[1] - d], color=color, lw=2.5, zorder=6)
    ax.text(at[0] + offset[0], at[1] + offset[1], label, color=color, fontsize=11, fontweight="bold",
            ha="left", va="center", zorder=6)


def out_of_page(ax, at, color, label, offset) -> None:
    """Circle with a dot: an axis pointing out of the page."""
    ax.add_patch(Circle(at, 0.45, fill=False, lw=2.5, color=color, zorder=6))
    ax.add_patch(Circle(at, 0.12, color=color, zorder=6))
    ax.text(at[0] + offset[0], at[1] + offset[1], label, color=color, fontsize=11, fontweight="bold",
            ha="left", va="center", zorder=6)


def rotation_mark(ax, center, radius, clockwise, color, label, label_at) -> None:
    """An arc with an arrowhead showing the sense of positive rotation."""
    t1, t2 = (200.0, 340.0)
    ax.add_patch(Arc(center, 2 * radius, 2 * radius, theta1=t1, theta2=t2, lw=2, color=color, zorder=4))
    end = t1 if clockwise else t2
    a = np.deg2rad(end)
    tip = (center[0] + radius * np.cos(a), center[1] + radius * np.sin(a))
    tangent = np.array([-np.sin(a), np.cos(a)]) * (-1 if clockwise else 1)
    ax.add_patch(FancyArrowPatch(tuple(np.array(tip) - 0.5 * tangent), tip, arrowstyle="-|>",
                                 mutation_scale=18, lw=2, color=color, zorder=4))
    ax.text(*label_at, label, color=color, fontsize=10, ha="center", va="top")


def side_view(ax, foot: str) -> None:
    shoe = smooth(_SIDE)
    ax.add_patch(Polygon(shoe, closed=True, fc="#eeeeee", ec="#555555", lw=2))
    ax.plot([-1.5, 11.5], [-0.1, -0.1], color="#999999", lw=1, ls="--")
    o = (5.6, 3.9)  # sensor on the instep
    ax.add_patch(Polygon([(o[0] - 0.7, o[1] - 0.4), (o[0] + 0.7, o[1] - 0.4), (o[0] + 0.7, o[1] + 0.4),
                          (o[0] - 0.7, o[1] + 0.4)], closed=True, fc="#f5d76e", ec="#7d6608", lw=1.5, zorder=3))
    arrow(ax, o, (o[0] + 4.3, o[1]), COLORS["x"], "x", (0.5, 0.0))
    arrow(ax, o, (o[0], o[1] + 3.3), COLORS["z"], "z", (0.0, 0.45))
    into_page(ax, o, COLORS["y"], "", (0.0, 0.0))
    ax.text(-1.6, 8.3, "y: into the page\n(subject's left)", color=COLORS["y"], fontsize=11,
            fontweight="bold", ha="left", va="center")
    rotation_mark(ax, o, 1.6, clockwise=True, color="#6c3483",
                  label="+gyr_y: toe down\n(swing: toe up, gyr_y < 0)", label_at=(o[0] + 0.2, o[1] - 1.9))
    ax.text(0.2, -0.8, "heel", fontsize=10, color="#555555", ha="center")
    ax.text(10.0, -0.8, "toe", fontsize=10, color="#555555", ha="center")
    side = "medial" if foot == "left" else "lateral"
    ax.set_title(f"{foot} foot, side view (from the right: its {side} side)", fontsize=12)
    ax.set_xlim(-2, 13)
    ax.set_ylim(-1.4, 9.5)


def top_view(ax, foot: str) -> None:
    pts = _TOP_LEFT if foot == "left" else [(-u, v) for u, v in _TOP_LEFT]
    ax.add_patch(Polygon(smooth(pts), closed=True, fc="#eeeeee", ec="#555555", lw=2))
    o = (0.0, 5.0)
    ax.add_patch(Polygon([(o[0] - 0.5, o[1] - 0.7), (o[0] + 0.5, o[1] - 0.7), (o[0] + 0.5, o[1] + 0.7),
                          (o[0] - 0.5, o[1] + 0.7)], closed=True, fc="#f5d76e", ec="#7d6608", lw=1.5, zorder=3))
    arrow(ax, o, (o[0], o[1] + 4.0), COLORS["x"], "x (toe)", (0.0, 0.5))
    arrow(ax, o, (o[0] - 3.6, o[1]), COLORS["y"], "y (left)", (-0.3, 0.55))
    out_of_page(ax, (o[0] + 2.8, o[1] - 2.2), COLORS["z"], "z: out of\nthe page (up)", (0.6, 0.0))
    ax.text(0.0, -0.7, "heel", fontsize=10, color="#555555", ha="center")
    side = "lateral" if foot == "left" else "medial"
    ax.text(o[0] - 2.4, o[1] - 0.9, f"(+y is {side})", color=COLORS["y"], fontsize=10, ha="center", va="center")
    ax.annotate("", xy=(-1.6, 11.3), xytext=(1.6, 11.3),
                arrowprops={"arrowstyle": "-|>", "color": "#6c3483", "lw": 2,
                            "connectionstyle": "arc3,rad=0.35"})
    ax.text(0.0, 12.4, "+gyr_z: toe turns left", color="#6c3483", fontsize=10, ha="center", va="center")
    ax.set_title(f"{foot} foot, top view (from above)", fontsize=12)
    ax.set_xlim(-6, 6)
    ax.set_ylim(-1.3, 13.2)


def main() -> None:
    fig, axes = plt.subplots(2, 2, figsize=(10, 9.2), gridspec_kw={"height_ratios": [1, 1.25]})
    for col, foot in enumerate(("left", "right")):
        side_view(axes[0, col], foot)
        top_view(axes[1, col], foot)
    for ax in axes.flat:
        ax.set_aspect("equal")
        ax.axis("off")
    fig.suptitle("Canonical foot frame (gaitmap's foot sensor frame): x toe, y left, z up, right-handed,\n"
                 "the same on both feet; acc in m/s², gyro in rad/s; standing still: acc ≈ (0, 0, +9.81)",
                 fontsize=12)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(OUT, dpi=90)
    print(f"wrote {OUT} ({OUT.stat().st_size // 1024} kB)")


if __name__ == "__main__":
    main()
