"""Family quantizers beyond the classic LSTM / GRU / Elman stacks (one module per family).

Each module converts a trained torch model of its family into integer layers
(:class:`gaitedge.quant.model.QLayer`, executed by the kernels registered in
:mod:`gaitedge.quant.kernels`) and registers itself with
:func:`gaitedge.quant.quantizer.register_family`.
"""
from gaitedge.quant.families import jordan  # noqa: F401,E402
from gaitedge.quant.families import peephole  # noqa: F401,E402
from gaitedge.quant.families import deep_gru  # noqa: F401,E402
from gaitedge.quant.families import esn  # noqa: F401,E402
from gaitedge.quant.families import tcn  # noqa: F401,E402
from gaitedge.quant.families import bidirectional, encdec  # noqa: F401,E402
from gaitedge.quant.families import ctrnn  # noqa: F401,E402
from gaitedge.quant.families import pcrnn  # noqa: F401,E402
