"""Weights blobs: what ``gaitedge flash`` sends into a board's inactive slot.

The format (header, payload, architecture hash) is defined in
:mod:`gaitedge.export.packing`, beside the packed arrays it carries; these are its
names as the device side uses them.
"""

from gaitedge.export.packing import (BLOB_MAGIC, BLOB_VERSION, HEADER_BYTES, MAX_LAYERS, PARAMS_BYTES, BlobHeader,
                                     Section, arch_descriptor, arch_hash, blob_sections, build_blob, build_header,
                                     build_payload, params_block, parse_blob, payload_layout, write_blob)

__all__ = ["BLOB_MAGIC", "BLOB_VERSION", "HEADER_BYTES", "MAX_LAYERS", "PARAMS_BYTES", "BlobHeader", "Section",
           "arch_descriptor", "arch_hash", "blob_sections", "build_blob", "build_header", "build_payload",
           "params_block", "parse_blob", "payload_layout", "write_blob"]
