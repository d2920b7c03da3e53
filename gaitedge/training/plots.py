"""PNG figures for a run: training curves and the confusion matrix (matplotlib, Agg)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_curves(history: list[dict], path: str | Path, best_epoch: int | None = None) -> None:
    """Loss (train / validation), validation macro-F1 / event F1 and, where the history
    has it, the training gradient norm before clipping (mean and max per epoch)."""
    ep = [h["epoch"] for h in history]
    grows = [h for h in history if "grad_norm" in h]
    fig, axes = plt.subplots(1, 3 if grows else 2, figsize=(15 if grows else 10, 3.8))
    a, b = axes[0], axes[1]
    a.plot(ep, [h["train_loss"] for h in history], label="train")
    a.plot(ep, [h["val_loss"] for h in history], label="validation")
    a.set_xlabel("epoch")
    a.set_ylabel("cross-entropy")
    a.set_title("loss")
    a.legend()
    b.plot(ep, [h["val_macro_f1"] for h in history], label="macro-F1")
    b.plot(ep, [h["val_event_f1"] for h in history], label="event F1 (±tol)")
    b.set_xlabel("epoch")
    b.set_title("validation")
    b.set_ylim(max(0.0, min([h["val_macro_f1"] for h in history] + [1.0]) - 0.05), 1.0)
    b.legend(loc="lower right")
    if grows:
        c = axes[2]
        c.semilogy([h["epoch"] for h in grows], [h["grad_norm"] for h in grows], label="mean")
        c.semilogy([h["epoch"] for h in grows], [h["grad_norm_max"] for h in grows], label="max")
        c.set_xlabel("epoch")
        c.set_title("gradient norm before clipping")
        c.legend()
    for ax in axes:
        ax.grid(alpha=0.3)
        if best_epoch:
            ax.axvline(best_epoch, color="grey", ls="--", lw=0.8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_confusion(cm: np.ndarray, classes: tuple[str, ...] | list[str], path: str | Path, title: str = "") -> None:
    """Row-normalised confusion matrix with counts (rows = true class)."""
    cm = np.asarray(cm, dtype=np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, f"{norm[i, j]:.3f}\n({int(cm[i, j])})", ha="center", va="center",
                    color="white" if norm[i, j] > 0.6 else "black", fontsize=8)
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"confusion ({title})" if title else "confusion")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
