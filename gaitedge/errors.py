"""Error types for problems a user can fix (bad files, bad options, bad configs).

The command-line interface prints these as one clear message and exits non-zero,
without a traceback.  Anything else escaping is a bug in gaitedge.
"""

from __future__ import annotations


class GaitedgeError(Exception):
    """A problem with the user's input, named precisely enough to fix it."""


class DataError(GaitedgeError):
    """A recording or dataset could not be read or is invalid."""


class ConfigError(GaitedgeError):
    """A configuration file or option is invalid."""


class ModelError(GaitedgeError):
    """A model name, checkpoint or model file is invalid."""


class DeviceError(GaitedgeError):
    """A board, emulator or serial link refused a request, answered wrongly or not at all."""


class SkippedTrialWarning(UserWarning):
    """A loader left out one trial or file of a dataset that it could not use.

    The message reads ``skipped SOURCE: REASON``.  Turn it into an error with
    ``strict`` (see :func:`gaitedge.data.load_spec`) or with
    ``warnings.simplefilter("error", SkippedTrialWarning)``.
    """
