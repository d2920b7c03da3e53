"""C literals for generated sources: strings, identifiers, integer arrays.

Every generated C file (``model_data.c``, ``fw_model.c``, the associative-memory
data files, ``ge_lut.c``) spells its literals through these functions, so that
they escape and wrap the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from gaitedge.errors import ModelError

INT32_MIN = -(1 << 31)


def c_string(s: str) -> str:
    """A C string literal of ``s`` (UTF-8 bytes).

    Printable ASCII stays as is, with ``"`` and ``\\`` escaped by a backslash and a
    ``?`` that follows another ``?`` written ``\\?`` (no trigraphs); every other
    byte is a three-digit octal escape.
    """
    out = []
    prev = ""
    for byte in str(s).encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\' or (ch == "?" and prev == "?"):
            out.append("\\" + ch)
        elif 32 <= byte < 127:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
        prev = ch
    return '"' + "".join(out) + '"'


def c_identifier(name: str) -> str:
    """``name`` when it is an ASCII C identifier (ModelError otherwise)."""
    if not name.isidentifier() or not name.isascii():
        raise ModelError(f"C symbol {name!r} is not a valid identifier")
    return name


def int_literal(v: int, hex_digits: int = 0, suffix: str = "") -> str:
    """An integer literal: decimal (INT32_MIN as ``(-2147483647 - 1)``) or ``0x`` with ``hex_digits`` digits."""
    v = int(v)
    if hex_digits:
        return f"0x{v:0{hex_digits}X}{suffix}"
    return "(-2147483647 - 1)" if v == INT32_MIN else f"{v}{suffix}"


def initializer_list(items: Iterable[str]) -> str:
    """``a, b, c`` on one line (for short initializers)."""
    return ", ".join(items)


def int_array(declarator: str, values, per_line: int = 8, hexa: bool = False) -> str:
    """``<declarator>[n] = {...};`` with ``per_line`` values per indented line.

    ``declarator`` is everything before the size (``"static const int32_t w"``);
    ``hexa`` writes 32-bit unsigned hex words (``0x0000ABCDu``).  An empty array
    gets one zero (C has no zero-length arrays).
    """
    vals = np.asarray(values).ravel()
    items = [int_literal(v, 8, "u") if hexa else int_literal(v) for v in vals] or ["0"]
    body = "\n".join("    " + ", ".join(items[i : i + per_line]) + "," for i in range(0, len(items), per_line))
    return f"{declarator}[{len(items)}] = {{\n{body}\n}};\n"
