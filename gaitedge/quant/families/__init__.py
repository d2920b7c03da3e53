"""Family quantizers (one module per family) and the table that names them.

Each module converts a trained torch model of its family into integer layers
(:class:`gaitedge.quant.model.QLayer`, executed by the kernels listed in
:mod:`gaitedge.quant.kernels`) and defines ``QUANTIZER``, a
:class:`~gaitedge.quant.families.base.FamilyQuantizer`.  A new family is one
module plus one entry in :data:`FAMILY_QUANTIZERS`.
"""

from __future__ import annotations

from gaitedge.quant.families import (bidirectional, ctrnn, deep_gru, encdec, esn, jordan, pcrnn, peephole, rnn,
                                     tcn)
from gaitedge.quant.families.base import FamilyQuantizer

#: model family (``model.family``) -> its quantizer
FAMILY_QUANTIZERS: dict[str, FamilyQuantizer] = {
    "lstm": rnn.QUANTIZER,
    "gru": rnn.QUANTIZER,
    "elman": rnn.QUANTIZER,
    "jordan": jordan.QUANTIZER,
    "peephole": peephole.QUANTIZER,
    "deep_gru": deep_gru.QUANTIZER,
    "esn": esn.QUANTIZER,
    "leaky_esn": esn.QUANTIZER,
    "deep_esn": esn.QUANTIZER,
    "tcn": tcn.QUANTIZER,
    "tcn_lstm": tcn.QUANTIZER,
    "tcn_gru": tcn.QUANTIZER,
    "bilstm": bidirectional.QUANTIZER,
    "bigru": bidirectional.QUANTIZER,
    "encdec": encdec.QUANTIZER,
    "ctrnn": ctrnn.QUANTIZER,
    "sctrnn": ctrnn.QUANTIZER,
    "gactrnn": ctrnn.QUANTIZER,
    "pcrnn": pcrnn.QUANTIZER,
}


def supported_families() -> list[str]:
    """The model families that quantize (and so export to C), sorted."""
    return sorted(FAMILY_QUANTIZERS)
