"""Renders MIDI to audio with FluidSynth and the General MIDI soundfont: the mini model's training data.

Debian: ``apt install fluidsynth fluid-soundfont-gm`` (the soundfont is MIT-licensed). Every clip is rendered
dry (no reverb or chorus) at the model's sample rate, and the whole set is reproducible from one seed.
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

from ..atomic import atomic_path, write_json
from ..errors import RendererMissingError, RestyleError
from .melodies import Note, phrase, to_midi

SOUNDFONT_PATHS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")


@dataclass(frozen=True)
class Instrument:
    """A General MIDI instrument: its caption, program number and a pitch range it sounds good in."""

    name: str
    program: int
    low: int = 48
    high: int = 84
    drums: bool = False


INSTRUMENTS = (
    Instrument("piano", 0), Instrument("electric piano", 4), Instrument("harpsichord", 6),
    Instrument("celesta", 8, 60, 96), Instrument("glockenspiel", 9, 72, 100), Instrument("music box", 10, 60, 96),
    Instrument("vibraphone", 11, 53, 89), Instrument("marimba", 12, 48, 84), Instrument("xylophone", 13, 65, 96),
    Instrument("tubular bells", 14, 60, 77), Instrument("church organ", 19, 36, 84), Instrument("reed organ", 20),
    Instrument("accordion", 21, 53, 89), Instrument("harmonica", 22, 60, 84), Instrument("nylon guitar", 24, 40, 76),
    Instrument("steel guitar", 25, 40, 76), Instrument("distortion guitar", 30, 40, 76),
    Instrument("acoustic bass", 32, 28, 55), Instrument("synth bass", 38, 28, 60), Instrument("violin", 40, 55, 96),
    Instrument("cello", 42, 36, 72), Instrument("pizzicato strings", 45, 40, 84), Instrument("harp", 46, 36, 91),
    Instrument("timpani", 47, 36, 57), Instrument("string ensemble", 48, 40, 84), Instrument("choir", 52, 48, 79),
    Instrument("trumpet", 56, 55, 82), Instrument("trombone", 57, 40, 72), Instrument("french horn", 60, 41, 77),
    Instrument("brass section", 61, 40, 79), Instrument("saxophone", 65, 49, 80), Instrument("oboe", 68, 58, 91),
    Instrument("clarinet", 71, 50, 91), Instrument("flute", 73, 60, 96), Instrument("pan flute", 75, 60, 91),
    Instrument("square lead", 80), Instrument("saw lead", 81), Instrument("warm pad", 89, 40, 79),
    Instrument("sitar", 104, 48, 77), Instrument("banjo", 105, 48, 84), Instrument("kalimba", 108, 60, 91),
    Instrument("steel drums", 114, 52, 84), Instrument("bird tweet", 123, 60, 84),
    Instrument("drums", 0, drums=True),
)
BY_NAME = {i.name: i for i in INSTRUMENTS}


def instrument(name: str) -> Instrument:
    if name not in BY_NAME:
        raise RestyleError(f"Unknown instrument '{name}'. Known: {', '.join(sorted(BY_NAME))}.")
    return BY_NAME[name]


def find_soundfont() -> Path:
    for path in SOUNDFONT_PATHS:
        if Path(path).is_file():
            return Path(path)
    raise RendererMissingError(
        "No General MIDI soundfont found. Install it with `apt install fluid-soundfont-gm` (MIT-licensed)."
    )


def render_midi(
    midi: mido.MidiFile, out: str | Path, sample_rate: int, seconds: float | None = None, soundfont: Path | None = None,
) -> Path:
    """Render a MIDI file to a WAV with FluidSynth (dry, fixed gain), written atomically.

    FluidSynth plays every release tail to its end; ``seconds`` cuts (or pads) the result to an exact length.
    """
    if shutil.which("fluidsynth") is None:
        raise RendererMissingError("FluidSynth is not installed: install it with `apt install fluidsynth`.")
    soundfont = soundfont or find_soundfont()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, atomic_path(out) as partial:
        midi_path = Path(tmp) / "in.mid"
        midi.save(midi_path)
        wav_path = Path(tmp) / "out.wav"
        command = ["fluidsynth", "-ni", "-q", "-R", "0", "-C", "0", "-g", "0.5", "-r", str(sample_rate),
                   "-T", "wav", "-F", str(wav_path), str(soundfont), str(midi_path)]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not wav_path.is_file():
            raise RestyleError(f"FluidSynth failed to render {out.name}: {result.stderr.strip()[:200]}")
        if seconds is None:
            shutil.move(wav_path, partial)
        else:
            audio, rate = sf.read(str(wav_path), dtype="float32", always_2d=True)
            exact = np.zeros((round(seconds * rate), audio.shape[1]), dtype=np.float32)
            exact[: len(audio)] = audio[: len(exact)]
            sf.write(str(partial), exact, rate, subtype="FLOAT", format="WAV")
    return out


def render_notes(notes: list[Note], inst: Instrument, out: str | Path, sample_rate: int, seconds: float) -> Path:
    """One phrase played by one instrument, as a WAV exactly ``seconds`` long."""
    return render_midi(to_midi([notes], inst.program, inst.drums, gap=0.0), out, sample_rate, seconds)


def render_training_set(
    folder: str | Path, sample_rate: int, seed: int = 0, seconds_per_instrument: float = 150.0,
    instruments: tuple[Instrument, ...] = INSTRUMENTS,
) -> Path:
    """Render random phrases for every instrument into ``folder`` (one long WAV each) plus ``manifest.json``.

    Existing files with the same settings are kept, so an interrupted render resumes where it stopped.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    settings = {"seed": seed, "sample_rate": sample_rate, "seconds_per_instrument": seconds_per_instrument}
    manifest = folder / "manifest.json"
    if manifest.is_file() and json.loads(manifest.read_text())["settings"] != settings:
        for old in folder.glob("*.wav"):  # rendered with other settings: start again
            old.unlink()
    entries = []
    for inst in instruments:
        rng = random.Random(f"train-{seed}-{inst.name}")
        phrases, total = [], 0.0
        while total < seconds_per_instrument:
            length = rng.uniform(2.0, 6.0)
            phrases.append(phrase(rng, length, inst.low, inst.high, inst.drums))
            total += length + 0.5
        path = folder / f"{inst.name.replace(' ', '_')}.wav"
        if not path.is_file():
            render_midi(to_midi(phrases, inst.program, inst.drums), path, sample_rate)
        entries.append({"file": path.name, "caption": inst.name})
    write_json(manifest, {"settings": settings, "clips": entries})
    return folder


def read_manifest(folder: str | Path) -> list[tuple[Path, str]]:
    """(wav path, caption) pairs of a rendered set."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    return [(folder / e["file"], e["caption"]) for e in manifest["clips"]]
