"""gaitedge: gait-phase recognition from wearable IMUs, from training to the edge.

Data flows one way: recordings -> windows/labels -> model (torch) -> export ->
runtime -> live stream.  See the README for the command-line tour.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
