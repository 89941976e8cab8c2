"""Renders MIDI to audio with FluidSynth and the General MIDI soundfont: the mini model's training data.

Debian: ``apt install fluidsynth fluid-soundfont-gm`` (the soundfont is MIT-licensed). Every clip is rendered
dry (FluidSynth's reverb and chorus off) at the model's sample rate; ``corpus.py`` adds effects of its own.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np
import soundfile as sf

from ..atomic import atomic_path
from ..errors import RendererMissingError, RestyleError
from .melodies import Note, to_midi

SOUNDFONT_PATHS = ("/usr/share/sounds/sf2/FluidR3_GM.sf2", "/usr/share/sounds/sf2/default-GM.sf2")


@dataclass(frozen=True)
class Instrument:
    """A General MIDI instrument: its caption, program number and a pitch range it sounds good in."""

    name: str
    program: int
    low: int = 48
    high: int = 84
    drums: bool = False


# Pitch ranges by General MIDI family (program // 8): where each family's instruments sound good.
FAMILY_RANGES = (
    (36, 96), (60, 96), (36, 84), (40, 76), (28, 55), (40, 84), (40, 84), (40, 79),
    (50, 84), (60, 96), (48, 84), (40, 79), (48, 84), (48, 84), (48, 79), (48, 84),
)
# Every General MIDI program, captioned in a few plain words. The v1 model's 44 captions are kept as they were.
GM_CAPTIONS = (
    "piano", "bright piano", "electric grand", "honky-tonk piano", "electric piano", "fm piano", "harpsichord",
    "clavinet", "celesta", "glockenspiel", "music box", "vibraphone", "marimba", "xylophone", "tubular bells",
    "dulcimer", "drawbar organ", "percussive organ", "rock organ", "church organ", "reed organ", "accordion",
    "harmonica", "tango accordion", "nylon guitar", "steel guitar", "jazz guitar", "clean guitar", "muted guitar",
    "overdriven guitar", "distortion guitar", "guitar harmonics", "acoustic bass", "finger bass", "picked bass",
    "fretless bass", "slap bass", "funk bass", "synth bass", "analog bass", "violin", "viola", "cello",
    "contrabass", "tremolo strings", "pizzicato strings", "harp", "timpani", "string ensemble", "slow strings",
    "synth strings", "analog strings", "choir", "vocal oohs", "synth voice", "orchestra hit", "trumpet",
    "trombone", "tuba", "muted trumpet", "french horn", "brass section", "synth brass", "analog brass",
    "soprano sax", "saxophone", "tenor sax", "baritone sax", "oboe", "english horn", "bassoon", "clarinet",
    "piccolo", "flute", "recorder", "pan flute", "blown bottle", "shakuhachi", "whistle", "ocarina",
    "square lead", "saw lead", "calliope", "chiff lead", "charang", "voice lead", "fifths lead", "bass lead",
    "new age pad", "warm pad", "polysynth", "space voice", "bowed glass", "metallic pad", "halo pad", "sweep pad",
    "rain fx", "soundtrack fx", "crystal fx", "atmosphere fx", "brightness fx", "goblins fx", "echoes fx",
    "sci-fi fx", "sitar", "banjo", "shamisen", "koto", "kalimba", "bagpipe", "fiddle", "shanai", "tinkle bell",
    "agogo", "steel drums", "woodblock", "taiko drum", "melodic tom", "synth drum", "reverse cymbal",
    "fret noise", "breath noise", "seashore", "bird tweet", "telephone", "helicopter", "applause", "gunshot",
)
# Ranges the v1 model used for its instruments (where they differ from the family's).
_RANGES = {
    "piano": (48, 84), "electric piano": (48, 84), "harpsichord": (48, 84), "glockenspiel": (72, 100),
    "vibraphone": (53, 89), "marimba": (48, 84), "xylophone": (65, 96), "tubular bells": (60, 77),
    "reed organ": (48, 84), "accordion": (53, 89), "harmonica": (60, 84), "acoustic bass": (28, 55),
    "synth bass": (28, 60), "violin": (55, 96), "cello": (36, 72), "harp": (36, 91), "timpani": (36, 57),
    "choir": (48, 79), "trumpet": (55, 82), "trombone": (40, 72), "french horn": (41, 77), "saxophone": (49, 80),
    "oboe": (58, 91), "clarinet": (50, 91), "pan flute": (60, 91), "square lead": (48, 84), "saw lead": (48, 84),
    "sitar": (48, 77), "kalimba": (60, 91), "steel drums": (52, 84), "bird tweet": (60, 84),
}
INSTRUMENTS = (
    *(Instrument(name, program, *_RANGES.get(name, FAMILY_RANGES[program // 8]))
      for program, name in enumerate(GM_CAPTIONS)),
    Instrument("drums", 0, drums=True),
)
# Programs that appear in no v2 training caption and no v2 training audio: kept for acceptance group (b).
HELD_OUT = ("clavinet", "dulcimer", "viola", "orchestra hit", "bassoon", "whistle", "ocarina", "shamisen", "koto",
            "bagpipe")
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
