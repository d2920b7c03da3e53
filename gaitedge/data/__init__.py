"""Recordings and everything that turns files into labelled, preprocessed signals.

This package knows nothing of models: it yields :class:`Recording` objects.
"""

from gaitedge.data.csvload import load_csv, load_csv_dir, save_csv
from gaitedge.data.fetch import fetch_ipol
from gaitedge.data.gaitmap import load_gaitmap, read_event_table, write_event_table
from gaitedge.data.ipol import load_ipol, load_trial
from gaitedge.data.preprocess import Normalizer, causal_filter, design_lowpass, prepare, resample
from gaitedge.data.recording import GAIT_CLASSES, UNLABELED, Recording, labels_from_swings
from gaitedge.data.skips import Recordings, Skipped, SkippedTrialWarning, skipped_of
from gaitedge.data.spec import load_spec
from gaitedge.data.splits import kfold_subjects, parse_subjects, split_subjects, subjects_of
from gaitedge.data.synthetic import synth_dataset

__all__ = [
    "GAIT_CLASSES",
    "UNLABELED",
    "Normalizer",
    "Recording",
    "Recordings",
    "Skipped",
    "SkippedTrialWarning",
    "causal_filter",
    "design_lowpass",
    "fetch_ipol",
    "kfold_subjects",
    "labels_from_swings",
    "load_csv",
    "load_csv_dir",
    "load_gaitmap",
    "load_ipol",
    "load_spec",
    "load_trial",
    "parse_subjects",
    "prepare",
    "read_event_table",
    "resample",
    "save_csv",
    "skipped_of",
    "split_subjects",
    "subjects_of",
    "synth_dataset",
    "write_event_table",
]
