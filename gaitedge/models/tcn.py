"""Temporal convolutional networks: TCN, and TCN feature extractors under an LSTM or GRU.

**TCN** (``tcn``): ``levels`` residual blocks of causal dilated 1-D convolutions,
block ``l`` (``l = 0 .. levels-1``) with dilation ``d_l = 2^l`` and kernel size ``K``:

    a_t   = ReLU(b1 + sum_{k=0}^{K-1} W1[:, :, k] x_{t - (K-1-k) d})        (conv1)
    y_t   = ReLU(b2 + sum_{k=0}^{K-1} W2[:, :, k] a_{t - (K-1-k) d})        (conv2)
    out_t = ReLU(y_t + r_t),   r_t = x_t (equal widths) or Wr x_t + br (1x1 conv)

with samples before the start of a stream taken as zeros (causal left padding),
dropout after each conv's ReLU in training, and a dense head on the last block:
``logits_t = Wo out_t + bo``.  The receptive field is ``1 + 2 (K-1) (2^levels - 1)``
samples (:attr:`TCNClassifier.receptive_field`).

**TCN-LSTM / TCN-GRU** (``tcn_lstm``, ``tcn_gru``): the same blocks (width
``channels``) feed a ``layers``-layer torch LSTM / GRU of ``hidden`` units (torch's
cells and gate order), then the dense head: ``logits_t = Wo h_t + bo``.

Streaming: the state of a block is its two ring buffers, the last ``L = (K-1) d``
inputs of conv1 and of conv2, each ``[L, batch, width]`` (oldest sample first;
batch on axis 1); hybrids add the recurrent state (``h`` and for LSTM ``c``, each
``[layers, batch, hidden]``).  The sequence forward prepends the buffers to the
input, so it is correct for any length and ``T`` calls of :meth:`step` give the
same logits as one :meth:`forward` (tested).

Width options: ``tcn`` uses ``hidden`` as the width of every block (the head reads
the last block) and has no recurrent layer (``layers`` must be 1); the hybrids use
``channels`` for the blocks and ``hidden`` / ``layers`` for the recurrent part.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from gaitedge.errors import ModelError
from gaitedge.models.base import GaitModel, State, register

#: largest kernel size accepted (the C runtime's rows hold at most 512 columns).
MAX_KERNEL = 16
#: most residual blocks (dilation 2^(levels-1)).
MAX_LEVELS = 10


class TemporalBlock(nn.Module):
    """One residual block: two causal dilated convs with ReLU, a 1x1 conv on the residual
    path when the widths differ, ReLU after the sum."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.c_in, self.c_out = c_in, c_out
        self.kernel_size, self.dilation = kernel_size, dilation
        #: ring-buffer length in samples, (K - 1) d
        self.span = (kernel_size - 1) * dilation
        self.conv1 = nn.Conv1d(c_in, c_out, kernel_size, dilation=dilation)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel_size, dilation=dilation)
        self.down = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else None
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, buf1: torch.Tensor, buf2: torch.Tensor,
                keep: list | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``x [B, c_in, T]``, buffers ``[L, B, width]`` -> (``out [B, c_out, T]``, new buffers).

        With ``keep`` (a list), the conv1 activations and the block output are appended
        to it (calibration).
        """
        xin = torch.cat([buf1.permute(1, 2, 0), x], 2)
        a = self.drop(F.relu(self.conv1(xin)))
        ain = torch.cat([buf2.permute(1, 2, 0), a], 2)
        y = self.drop(F.relu(self.conv2(ain)))
        res = x if self.down is None else self.down(x)
        out = F.relu(y + res)
        if keep is not None:
            keep.append((a, out))
        span = self.span
        return out, xin[:, :, -span:].permute(2, 0, 1), ain[:, :, -span:].permute(2, 0, 1)


def _check_int(family: str, name: str, v: object, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise ModelError(f"{family}: {name} must be an integer in {lo}..{hi}, got {v!r}")
    return v


class _TCNBase(GaitModel):
    """The residual blocks and their ring-buffer state (shared by the three families)."""

    def _build_blocks(self, input_size: int, width: int, levels: int, kernel_size: int, dropout: float) -> None:
        fam = self.family
        self.kernel_size = _check_int(fam, "kernel_size", kernel_size, 2, MAX_KERNEL)
        self.levels = _check_int(fam, "levels", levels, 1, MAX_LEVELS)
        self.width = _check_int(fam, "width (channels)", width, 1, 512)
        if not 0.0 <= dropout < 1.0:
            raise ModelError(f"{fam}: dropout must be in [0, 1), got {dropout}")
        self.dropout_p = float(dropout)
        blocks = []
        c = input_size
        for lev in range(levels):
            blocks.append(TemporalBlock(c, width, kernel_size, 2**lev, dropout))
            c = width
        self.blocks = nn.ModuleList(blocks)

    @property
    def receptive_field(self) -> int:
        """Samples the output at ``t`` depends on (``t`` itself included)."""
        return 1 + sum(2 * b.span for b in self.blocks)

    def receptive_field_ms(self, rate_hz: float) -> float:
        """:attr:`receptive_field` in milliseconds at ``rate_hz``."""
        if not rate_hz > 0:
            raise ModelError(f"{self.family}: sampling rate must be > 0 Hz, got {rate_hz}")
        return 1000.0 * self.receptive_field / rate_hz

    def _block_state(self, batch: int) -> list[torch.Tensor]:
        out = []
        for b in self.blocks:
            out += [torch.zeros(b.span, batch, b.c_in), torch.zeros(b.span, batch, b.c_out)]
        return out

    def _run_blocks(self, x: torch.Tensor, state: State, keep: list | None = None
                    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """``x [B, T, C]`` -> (features ``[B, width, T]``, new block state)."""
        h = x.transpose(1, 2)
        new: list[torch.Tensor] = []
        for i, blk in enumerate(self.blocks):
            h, b1, b2 = blk(h, state[2 * i], state[2 * i + 1], keep)
            new += [b1, b2]
        return h, new

    def _check_state(self, state: State, n: int) -> None:
        if len(state) != n:
            raise ModelError(f"{self.family}: expected {n} state tensors, got {len(state)}")


@register("tcn")
class TCNClassifier(_TCNBase):
    """Residual blocks of causal dilated convolutions with a per-sample dense head."""

    def __init__(self, input_size: int, num_classes: int, hidden: int = 24, layers: int = 1, dropout: float = 0.0,
                 levels: int = 4, kernel_size: int = 3) -> None:
        super().__init__(input_size, num_classes)
        if layers != 1:
            raise ModelError(f"tcn: has no recurrent layers, so layers must be 1 (got {layers}); "
                             f"the number of residual blocks is the option 'levels'")
        self._build_blocks(input_size, hidden, levels, kernel_size, dropout)
        self.hidden = hidden
        self.head = nn.Linear(hidden, num_classes)

    def hparams(self) -> dict:
        return {"hidden": self.hidden, "layers": 1, "dropout": self.dropout_p, "levels": self.levels,
                "kernel_size": self.kernel_size}

    def init_state(self, batch: int = 1) -> State:
        return tuple(self._block_state(batch))

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        if state is None:
            state = tuple(s.to(x.device) for s in self.init_state(x.shape[0]))
        self._check_state(state, 2 * self.levels)
        h, new = self._run_blocks(x, state)
        return self.head(h.transpose(1, 2)), tuple(new)


class _TCNRecurrent(_TCNBase):
    """TCN feature extractor -> torch LSTM / GRU -> dense head."""

    rnn_cls: type[nn.Module] = nn.GRU
    n_rnn_state: int = 1

    def __init__(self, input_size: int, num_classes: int, hidden: int = 48, layers: int = 1, dropout: float = 0.0,
                 channels: int = 16, levels: int = 4, kernel_size: int = 3) -> None:
        super().__init__(input_size, num_classes)
        _check_int(self.family, "hidden", hidden, 1, 4096)
        _check_int(self.family, "layers", layers, 1, 16)
        self._build_blocks(input_size, channels, levels, kernel_size, dropout)
        self.hidden, self.layers, self.channels = hidden, layers, channels
        self.drop = nn.Dropout(dropout)
        self.rnn = self.rnn_cls(channels, hidden, num_layers=layers, batch_first=True,
                                dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, num_classes)

    def hparams(self) -> dict:
        return {"hidden": self.hidden, "layers": self.layers, "dropout": self.dropout_p, "channels": self.channels,
                "levels": self.levels, "kernel_size": self.kernel_size}

    def init_state(self, batch: int = 1) -> State:
        rnn = [torch.zeros(self.layers, batch, self.hidden) for _ in range(self.n_rnn_state)]
        return tuple(self._block_state(batch) + rnn)

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        if state is None:
            state = tuple(s.to(x.device) for s in self.init_state(x.shape[0]))
        nb = 2 * self.levels
        self._check_state(state, nb + self.n_rnn_state)
        feat, new = self._run_blocks(x, state)
        h0 = tuple(state[nb:]) if self.n_rnn_state > 1 else state[nb]
        y, hn = self.rnn(self.drop(feat.transpose(1, 2)), h0)
        logits = self.head(self.drop(y))
        return logits, tuple(new) + (tuple(hn) if self.n_rnn_state > 1 else (hn,))


@register("tcn_gru")
class TCNGRUClassifier(_TCNRecurrent):
    """TCN blocks followed by a GRU (torch gate order r, z, n) and a dense head."""

    rnn_cls = nn.GRU
    n_rnn_state = 1

    def __init__(self, input_size: int, num_classes: int, hidden: int = 48, layers: int = 1, dropout: float = 0.0,
                 channels: int = 16, levels: int = 4, kernel_size: int = 3) -> None:
        super().__init__(input_size, num_classes, hidden, layers, dropout, channels, levels, kernel_size)


@register("tcn_lstm")
class TCNLSTMClassifier(_TCNRecurrent):
    """TCN blocks followed by an LSTM (torch gate order i, f, g, o) and a dense head."""

    rnn_cls = nn.LSTM
    n_rnn_state = 2

    def __init__(self, input_size: int, num_classes: int, hidden: int = 40, layers: int = 1, dropout: float = 0.0,
                 channels: int = 16, levels: int = 4, kernel_size: int = 3) -> None:
        super().__init__(input_size, num_classes, hidden, layers, dropout, channels, levels, kernel_size)
