"""A cluster replica learns as the local server does: preset, resume and loss travel with the job (no Ray needed)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from restyle.bridge.cluster import StylizeWorker, _spec
from restyle.bridge.jobs import Job
from restyle.engine.progress import Progress


class RecordingEngine:
    """Stands in for the replica's engine: remembers how train was called and reports two steps of loss."""

    def __init__(self):
        self.calls: list[dict] = []

    def train(self, name, clips, settings, resume=False, progress=None, should_cancel=None, preset=None):
        self.calls.append({"name": name, "clips": [Path(c).read_bytes() for c in clips], "steps": settings.steps,
                           "resume": resume, "preset": preset})
        for step, loss in ((1, 0.5), (2, 0.25)):
            progress(Progress("train", step, 2, loss))


def test_a_learn_job_reaches_the_replica_with_its_preset_and_resume_and_streams_its_loss(tmp_path):
    clip = tmp_path / "bell.wav"
    clip.write_bytes(b"RIFF-audio")
    job = Job(id="j1", kind="learn", params={"name": "bells", "clips": [str(clip)], "steps": 2, "preset": "chime",
                                             "resume": True})
    worker = StylizeWorker.__new__(StylizeWorker)  # the replica without loading a model
    worker.engine, worker.scratch = RecordingEngine(), Path(tempfile.mkdtemp(dir=tmp_path))

    messages = list(worker.run(_spec(job)))

    assert worker.engine.calls == [{"name": "bells", "clips": [b"RIFF-audio"], "steps": 2, "resume": True,
                                    "preset": "chime"}]
    assert [m["loss"] for m in messages if "done" in m] == [0.5, 0.25]
    assert messages[-1] == {"result": {"style": "bells"}}
    assert not any(worker.scratch.iterdir()), "the replica keeps no copy of the clips"


def test_a_learn_job_without_preset_or_resume_starts_fresh_with_the_default_knobs(tmp_path):
    clip = tmp_path / "bell.wav"
    clip.write_bytes(b"RIFF")
    spec = _spec(Job(id="j2", kind="learn", params={"name": "bells", "clips": [str(clip)], "steps": 3}))
    assert (spec["preset"], spec["resume"], spec["steps"]) == (None, False, 3)
