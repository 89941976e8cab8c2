"""Notes played in a clip, by a transcriber nobody on this project trained (Spotify's basic-pitch, whose ONNX
model ships in its wheel), and how well two clips' notes agree (note F1, onsets and pitches, as mir_eval scores
transcriptions). Used to check that stylizing keeps the melody.

Install: ``pip install --no-deps basic-pitch==0.4.0`` plus ``pretty_midi mir_eval resampy`` (its metadata
would pull TensorFlow, which the ONNX model does not need).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass

import numpy as np
import soundfile as sf

from .errors import ModelNotFoundError

ONSET_TOLERANCE = 0.05  # seconds: mir_eval's default for note onsets


@dataclass(frozen=True)
class Notes:
    """Transcribed notes: (N, 2) onset/offset seconds and (N,) frequencies in Hz."""

    intervals: np.ndarray
    pitches_hz: np.ndarray


class Transcriber:
    """basic-pitch's ICASSP 2022 model through ONNX Runtime, loaded once."""

    def __init__(self):
        try:
            from basic_pitch import FilenameSuffix, build_icassp_2022_model_path
            from basic_pitch.inference import Model
        except ImportError as error:
            raise ModelNotFoundError("The note transcriber is not installed: `pip install --no-deps "
                                     "basic-pitch==0.4.0 pretty_midi mir_eval resampy`.") from error
        self.model = Model(build_icassp_2022_model_path(FilenameSuffix.onnx))

    def notes(self, audio: np.ndarray, rate: int) -> Notes:
        """The notes of a mono clip."""
        from basic_pitch.inference import predict

        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "clip.wav")
            sf.write(path, audio.astype(np.float32), rate, subtype="FLOAT")
            _, _, events = predict(path, self.model)
        if not events:
            return Notes(np.zeros((0, 2)), np.zeros(0))
        intervals = np.array([[e[0], e[1]] for e in events], dtype=np.float64)
        pitches = 440.0 * 2.0 ** ((np.array([e[2] for e in events], dtype=np.float64) - 69) / 12)
        return Notes(intervals, pitches)


def note_f1(reference: Notes, estimate: Notes) -> float:
    """F1 of onset-and-pitch note matching (offsets ignored); 1.0 when both are silent, 0.0 when one is."""
    from mir_eval.transcription import precision_recall_f1_overlap

    if len(reference.pitches_hz) == 0 or len(estimate.pitches_hz) == 0:
        return float(len(reference.pitches_hz) == len(estimate.pitches_hz))
    _, _, f1, _ = precision_recall_f1_overlap(reference.intervals, reference.pitches_hz, estimate.intervals,
                                              estimate.pitches_hz, onset_tolerance=ONSET_TOLERANCE,
                                              offset_ratio=None)
    return float(f1)
