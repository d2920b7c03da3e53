"""RNN encoder-decoder family (whole-window, non-causal).

An encoder (GRU or LSTM, ``layers`` stacked layers of ``hidden`` units, torch's
cells) reads the whole window ``x_0 .. x_{T-1}``; its last layer's final hidden
state is the context vector ``c = h^enc_{T-1}`` (the LSTM cell state is not
part of the context).  A one-layer GRU decoder (``hidden`` units) is then
unrolled over the output sequence with the context as its initial state and/or
as an input at every step (option ``context``):

    init:   d_{-1} = c,   d_t = GRU([x_t],    d_{t-1})
    input:  d_{-1} = 0,   d_t = GRU([x_t; c], d_{t-1})
    both:   d_{-1} = c,   d_t = GRU([x_t; c], d_{t-1})

Targets (option ``target``):

* ``phase``: the decoder runs over the window's ``T`` samples and emits
  per-sample class logits ``logits_t = W_out d_t + b_out`` (the gait-phase
  sequence of the window);
* ``phase+forecast``: the same, plus a forecasting decoder (a second one-layer
  GRU with its own linear read-out, same context rule) that predicts the next
  ``horizon`` samples of the normalized signal autoregressively:
  ``f_{-1} = c`` (init/both), ``f_k = GRU([x̂_{k-1}(; c)], f_{k-1})``,
  ``x̂_k = W_f f_k + b_f``, starting from ``x̂_{-1} = x_{T-1}``.  In training,
  the encoder reads the window without its last ``horizon`` samples and the
  forecast is scored against them (summed squared error averaged over channels,
  weighted by ``forecast_weight``, added to the summed cross-entropy);
  :meth:`EncoderDecoder.forecast` runs it on any window.

The decoder's first output already depends on the whole window through ``c``, so
the model is not causal: streaming runtimes refuse it; it runs over whole
windows (ONNX sequence graph, the C window API for the phase output).

State: the encoder's initial state, ``h`` (and ``c`` for an LSTM encoder) of
shape ``[layers, B, hidden]``, zeros for a fresh window; the returned state is
the encoder's final state (the context is its last layer's ``h``).
"""

from __future__ import annotations

import torch
from torch import nn

from gaitedge.errors import ModelError
from gaitedge.models.base import GaitModel, State, register

ENCODERS = ("gru", "lstm")
CONTEXTS = ("init", "input", "both")
TARGETS = ("phase", "phase+forecast")


@register("encdec")
class EncoderDecoder(GaitModel):
    """GRU/LSTM encoder -> context vector -> GRU decoder over the window (-> per-sample logits)."""

    causal = False

    def __init__(self, input_size: int, num_classes: int, hidden: int = 64, layers: int = 1, dropout: float = 0.0,
                 encoder: str = "gru", context: str = "init", target: str = "phase", horizon: int = 10,
                 forecast_weight: float = 1.0) -> None:
        super().__init__(input_size, num_classes)
        fam = "encdec"
        if hidden < 1 or layers < 1 or not 0.0 <= dropout < 1.0:
            raise ModelError(f"{fam}: need hidden >= 1, layers >= 1, 0 <= dropout < 1")
        if encoder not in ENCODERS:
            raise ModelError(f"{fam}: option encoder={encoder!r} is not one of {', '.join(ENCODERS)}")
        if context not in CONTEXTS:
            raise ModelError(f"{fam}: option context={context!r} is not one of {', '.join(CONTEXTS)}")
        if target not in TARGETS:
            hint = (" (a forecast alone gives no phase logits to train and evaluate; use target=phase+forecast)"
                    if target == "forecast" else "")
            raise ModelError(f"{fam}: option target={target!r} is not one of {', '.join(TARGETS)}{hint}")
        horizon = int(horizon)
        if horizon < 1:
            raise ModelError(f"{fam}: option horizon must be >= 1 sample, got {horizon}")
        if not float(forecast_weight) >= 0.0:
            raise ModelError(f"{fam}: option forecast_weight must be >= 0, got {forecast_weight}")
        self.hidden = hidden
        self.layers = layers
        self.dropout_p = dropout
        self.encoder_kind = encoder
        self.context = context
        self.target = target
        self.horizon = horizon
        self.forecast_weight = float(forecast_weight)
        self.n_state = 2 if encoder == "lstm" else 1
        rnn = nn.LSTM if encoder == "lstm" else nn.GRU
        self.encoder = rnn(input_size, hidden, num_layers=layers, batch_first=True,
                           dropout=dropout if layers > 1 else 0.0)
        dec_in = input_size + (hidden if self.ctx_input else 0)
        self.decoder = nn.GRU(dec_in, hidden, batch_first=True)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, num_classes)
        if target == "phase+forecast":
            self.fdecoder = nn.GRU(dec_in, hidden, batch_first=True)
            self.fhead = nn.Linear(hidden, input_size)

    @property
    def ctx_init(self) -> bool:
        """The context is the decoder's initial state."""
        return self.context in ("init", "both")

    @property
    def ctx_input(self) -> bool:
        """The context is part of the decoder's input at every step."""
        return self.context in ("input", "both")

    def hparams(self) -> dict:
        return {"hidden": self.hidden, "layers": self.layers, "dropout": self.dropout_p,
                "encoder": self.encoder_kind, "context": self.context, "target": self.target,
                "horizon": self.horizon, "forecast_weight": self.forecast_weight}

    def init_state(self, batch: int = 1) -> State:
        z = torch.zeros(self.layers, batch, self.hidden)
        return tuple(z.clone() for _ in range(self.n_state))

    def encode(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        """``x [B, T, C]`` -> (context ``[B, hidden]``, the encoder's final state)."""
        if state is None:
            state = tuple(s.to(x.device) for s in self.init_state(x.shape[0]))
        _, sn = self.encoder(x, state if self.n_state > 1 else state[0])
        sn = tuple(sn) if self.n_state > 1 else (sn,)
        return sn[0][-1], sn

    def _dec_input(self, x: torch.Tensor, ctx: torch.Tensor) -> torch.Tensor:
        if not self.ctx_input:
            return x
        # broadcast the context over time without shape-reading operators (portable ONNX)
        return torch.cat([x, x[..., :1] * 0.0 + ctx[:, None, :]], dim=-1)

    def _dec_h0(self, ctx: torch.Tensor) -> torch.Tensor:
        return ctx[None] if self.ctx_init else ctx[None] * 0.0

    def forward(self, x: torch.Tensor, state: State | None = None) -> tuple[torch.Tensor, State]:
        ctx, sn = self.encode(x, state)
        d, _ = self.decoder(self._dec_input(x, ctx), self._dec_h0(ctx))
        return self.head(self.drop(d)), sn

    def forecast(self, x: torch.Tensor, n: int | None = None) -> torch.Tensor:
        """The next ``n`` (default ``horizon``) normalized samples after window ``x [B, T, C]``: ``[B, n, C]``."""
        if self.target != "phase+forecast":
            raise ModelError("encdec: this model was built without a forecast (option target=phase+forecast)")
        n = self.horizon if n is None else int(n)
        if n < 1 or x.shape[1] < 1:
            raise ModelError(f"encdec: forecast needs n >= 1 and a non-empty window, got n={n}, T={x.shape[1]}")
        ctx, _ = self.encode(x)
        f = self._dec_h0(ctx)
        prev = x[:, -1:, :]
        out = []
        for _ in range(n):
            y, f = self.fdecoder(self._dec_input(prev, ctx), f)
            prev = self.fhead(y)
            out.append(prev)
        return torch.cat(out, 1)

    def auxiliary_loss(self, x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor | None:
        if self.target != "phase+forecast" or self.forecast_weight == 0.0 or x.shape[1] <= self.horizon + 1:
            return None
        past, future = x[:, : -self.horizon], x[:, -self.horizon :]
        pred = self.forecast(past, self.horizon)
        return self.forecast_weight * ((pred - future) ** 2).mean(-1).sum()

    def step(self, x_t: torch.Tensor, state: State) -> tuple[torch.Tensor, State]:
        raise ModelError("encdec is a whole-window (non-causal) model: it has no streaming step; run it over "
                         "windows (forward, the ONNX sequence graph, or the C window API)")
