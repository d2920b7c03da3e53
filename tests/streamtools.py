"""A finite stream source for session tests."""

import time

from gaitedge.stream import ColumnMap, LineParser, TextLineDecoder
from gaitedge.stream.sources import EndOfStream, Source


class Lines(Source):
    """The samples decoded from ``data`` (text lines laid out as ``cmap`` says), all in one read."""

    description = "lines"

    def __init__(self, data: bytes, cmap: ColumnMap) -> None:
        super().__init__()
        dec = TextLineDecoder(LineParser.for_columns(cmap))
        self.stats = dec.stats
        self._samples = dec.feed(data, time.perf_counter())
        self._done = False

    def open(self):
        pass

    def read(self, timeout):
        if self._done:
            raise EndOfStream()
        self._done = True
        return self._samples
