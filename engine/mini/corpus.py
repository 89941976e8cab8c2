"""The mini v2 training corpus: every General MIDI program but the held-out ones, on two soundfonts, with
effects, mixtures and real CC0 recordings, rendered offline and packed as 8-bit spectrogram chunks.

Sources (all from Debian packages, nothing committed, everything reproducible from one seed):
- phrases of every training program on FluidR3 GM and on MuseScore General (``fluid-soundfont-gm``,
  ``musescore-general-soundfont``, both MIT), dry, captioned with the instrument's name;
- stretches of those renders through a random effect chain (pedalboard: reverb, chorus, drive, compression,
  EQ), captioned with the effects a listener hears ("piano with reverb", "distorted violin");
- stretches of two programs' renders played at once, captioned "A and B";
- Sonic Pi's CC0 samples (``sonic-pi-samples``) captioned by what they are, except the held-out families.

The packed corpus (``corpus.npz``: uint8 images of ``chunk_frames`` frames and their captions) is what the
trainer reads, so it can be carried to a GPU machine without any of the renderers.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from ..atomic import atomic_path, write_json
from ..audio import AudioLimits, mono_at, read_audio
from ..errors import RendererMissingError, SettingsError
from ..spectrogram import SpectrogramConverter
from .architecture import MINI_SPECTROGRAM
from .melodies import phrase, to_midi
from .render import HELD_OUT, INSTRUMENTS, Instrument, instrument, render_midi

SOUNDFONTS = {
    "fluidr3": "/usr/share/sounds/sf2/FluidR3_GM.sf2",
    "musescore": "/usr/share/sounds/sf3/MuseScore_General.sf3",
}
SONIC_PI_SAMPLES = Path("/usr/share/sonic-pi/samples")
# Sonic Pi sample families (file-name prefix) and honest captions; None: held out for acceptance group (c).
RECORDING_CAPTIONS = {
    "ambi_choir": "choir recording", "ambi_dark_woosh": "ambient recording", "ambi_drone": "drone recording",
    "ambi_glass": None, "ambi_haunted_hum": "drone recording", "ambi_lunar_land": "ambient recording",
    "ambi_piano": "piano recording", "ambi_sauna": "ambient recording", "ambi_soft_buzz": "drone recording",
    "ambi_swoosh": "ambient recording", "bass": "bass recording", "bd": "kick drum recording",
    "drum": "drums recording", "elec": "electronic percussion", "glitch": "glitch recording", "guit": None,
    "loop_tabla": None, "loop": "drum loop recording", "mehackit": "electronic recording",
    "misc_crow": "bird recording", "misc": "noise recording", "perc": "percussion recording",
    "sn": "snare drum recording", "tabla": None, "vinyl": "vinyl noise",
}
HELD_OUT_RECORDINGS = {"tabla": ("tabla", "loop_tabla"), "guitar": ("guit",), "glass": ("ambi_glass",)}
EFFECT_WORDS = ("reverb", "chorus", "distorted", "compressed")


@dataclass(frozen=True)
class CorpusSettings:
    """What goes into the v2 corpus; the defaults are what mini v2 was trained on."""

    seed: int = 0
    instruments: tuple[str, ...] = ()  # empty: every training instrument (all GM programs but HELD_OUT, drums)
    soundfonts: tuple[str, ...] = tuple(SOUNDFONTS)
    seconds_per_program: float = 30.0  # per soundfont, dry
    effect_seconds: float = 15.0  # per program, on one soundfont, through a random effect chain
    mixtures: int = 200
    mixture_seconds: float = 6.0
    recordings: bool = True
    chunk_frames: int = 512


def training_instruments(names: tuple[str, ...] = ()) -> tuple[Instrument, ...]:
    """The instruments the v2 model learns: ``names``, or all GM programs and drums but the held-out ones."""
    chosen = tuple(instrument(name) for name in names) or INSTRUMENTS
    return tuple(inst for inst in chosen if inst.name not in HELD_OUT)


def recording_caption(path: Path) -> str | None:
    """The caption of a Sonic Pi sample by its family (longest matching prefix); None: held out or unknown."""
    stem = path.stem
    matches = [p for p in RECORDING_CAPTIONS if stem == p or stem.startswith(p + "_") or stem.startswith(p)]
    return RECORDING_CAPTIONS[max(matches, key=len)] if matches else None


def held_out_recordings(family: str) -> list[Path]:
    """The Sonic Pi samples of a held-out family (never trained on): style clips for acceptance group (c)."""
    prefixes = HELD_OUT_RECORDINGS[family]
    return sorted(p for p in SONIC_PI_SAMPLES.glob("*.flac")
                  if any(p.stem == x or p.stem.startswith(x + "_") for x in prefixes))


class CorpusBuilder:
    """Renders every source into ``folder`` (resumable: finished files are kept) and packs ``corpus.npz``."""

    def __init__(self, folder: str | Path, settings: CorpusSettings = CorpusSettings()):
        self.folder = Path(folder)
        self.settings = settings
        self.rate = MINI_SPECTROGRAM.sample_rate

    def build(self) -> Path:
        """Render what is missing, then pack (once) and return the path of ``corpus.npz``."""
        packed = self.folder / "corpus.npz"
        manifest_path = self.folder / "manifest.json"
        if packed.is_file() and manifest_path.is_file():
            if json.loads(manifest_path.read_text())["settings"] == json.loads(json.dumps(asdict(self.settings))):
                return packed  # packed already: nothing to render (e.g. carried to a GPU machine)
        for font in self.settings.soundfonts:
            path = SOUNDFONTS[font]
            if not Path(path).is_file():
                raise RendererMissingError(f"Missing soundfont {path}: `apt install fluid-soundfont-gm "
                                           "musescore-general-soundfont`.")
        self.folder.mkdir(parents=True, exist_ok=True)
        clips = self._dry() + self._effects() + self._mixtures() + self._recordings()
        write_json(manifest_path, {"settings": asdict(self.settings), "clips": clips})
        return self.pack(clips, packed)

    # -- sources ------------------------------------------------------------------------------------------------
    def _phrases(self, inst: Instrument, seconds: float, stream: str) -> list:
        rng = random.Random(f"{stream}-{self.settings.seed}-{inst.name}")
        phrases, total = [], 0.0
        while total < seconds:
            length = rng.uniform(2.0, 6.0)
            phrases.append(phrase(rng, length, inst.low, inst.high, inst.drums))
            total += length + 0.5
        return phrases

    def _render(self, inst: Instrument, seconds: float, stream: str, soundfont: str, name: str) -> Path:
        path = self.folder / "audio" / f"{name}.wav"
        if not path.is_file():
            midi = to_midi(self._phrases(inst, seconds, stream), inst.program, inst.drums)
            render_midi(midi, path, self.rate, soundfont=Path(SOUNDFONTS[soundfont]))
        return path

    def _dry(self) -> list[dict]:
        clips = []
        for inst in training_instruments(self.settings.instruments):
            for font in self.settings.soundfonts:
                path = self._render(inst, self.settings.seconds_per_program, f"train-{font}", font,
                                    f"dry-{font}-{_slug(inst.name)}")
                clips.append({"file": str(path.relative_to(self.folder)), "caption": inst.name, "kind": "dry"})
        return clips

    def _segment(self, inst: Instrument, font: str, seconds: float, rng: random.Random) -> np.ndarray:
        """A random ``seconds`` stretch of the instrument's dry render (effects and mixtures reuse them)."""
        dry = self.folder / "audio" / f"dry-{font}-{_slug(inst.name)}.wav"
        audio, _ = sf.read(str(dry), dtype="float32")
        length = min(len(audio), int(seconds * self.rate))
        start = rng.randrange(len(audio) - length + 1)
        return audio[start : start + length]

    def _effects(self) -> list[dict]:
        clips = []
        for inst in training_instruments(self.settings.instruments):
            rng = random.Random(f"effects-{self.settings.seed}-{inst.name}")
            font = rng.choice(sorted(self.settings.soundfonts))
            words = tuple(sorted(rng.sample(EFFECT_WORDS, rng.choice((1, 1, 2)))))
            path = self.folder / "audio" / f"fx-{_slug(inst.name)}.wav"
            if not path.is_file():
                dry = self._segment(inst, font, self.settings.effect_seconds, rng)
                _write(path, apply_effects(dry, self.rate, words, rng), self.rate)
            clips.append({"file": str(path.relative_to(self.folder)), "caption": effect_caption(inst.name, words),
                          "kind": "effects"})
        return clips

    def _mixtures(self) -> list[dict]:
        clips, pool = [], [i for i in training_instruments(self.settings.instruments) if not i.drums]
        for k in range(self.settings.mixtures):
            rng = random.Random(f"mixture-{self.settings.seed}-{k}")
            a, b = rng.sample(pool, 2)
            path = self.folder / "audio" / f"mix-{k:03d}.wav"
            if not path.is_file():
                parts = [self._segment(inst, rng.choice(sorted(self.settings.soundfonts)), self.settings.mixture_seconds, rng)
                         for inst in (a, b)]
                n = min(len(p) for p in parts)
                mix = rng.uniform(0.6, 1.0) * parts[0][:n] + rng.uniform(0.6, 1.0) * parts[1][:n]
                _write(path, mix / max(1.0, float(np.abs(mix).max()) / 0.99), self.rate)
            clips.append({"file": str(path.relative_to(self.folder)), "caption": f"{a.name} and {b.name}",
                          "kind": "mixture"})
        return clips

    def _recordings(self) -> list[dict]:
        if not self.settings.recordings:
            return []
        if not SONIC_PI_SAMPLES.is_dir():
            raise RendererMissingError("Sonic Pi's CC0 samples are missing: `apt install sonic-pi-samples`.")
        groups: dict[str, list[Path]] = {}
        for path in sorted(SONIC_PI_SAMPLES.glob("*.flac")):
            caption = recording_caption(path)
            if caption is not None:
                groups.setdefault(caption, []).append(path)
        clips = []
        for caption, paths in sorted(groups.items()):
            out = self.folder / "audio" / f"rec-{_slug(caption)}.wav"
            if not out.is_file():
                _write(out, sequence(paths, self.rate, min_seconds=20.0), self.rate)
            clips.append({"file": str(out.relative_to(self.folder)), "caption": caption, "kind": "recording"})
        return clips

    # -- packing ------------------------------------------------------------------------------------------------
    def pack(self, clips: list[dict], packed: Path) -> Path:
        """Cut every clip's spectrogram image into ``chunk_frames`` chunks (silent ones skipped) and save them."""
        converter = SpectrogramConverter(MINI_SPECTROGRAM)
        frames = self.settings.chunk_frames
        images, captions = [], []
        for clip in clips:
            audio = read_audio(self.folder / clip["file"], limits=AudioLimits(max_seconds=float("inf")))
            mel = converter.mel(torch.from_numpy(mono_at(audio, self.rate)))
            if mel.shape[-1] < frames:
                mel = torch.cat([mel] * (frames // mel.shape[-1] + 1), dim=-1)
            for start in range(0, mel.shape[-1] - frames + 1, frames):
                piece = mel[:, start : start + frames]
                if piece.amax() > 1e-3 * mel.amax():
                    images.append(converter.mel_to_image(piece)[0].numpy())
                    captions.append(clip["caption"])
        if not images:
            raise SettingsError("The corpus is empty: nothing long enough was rendered.")
        with atomic_path(packed) as tmp:
            with open(tmp, "wb") as handle:
                np.savez_compressed(handle, images=np.stack(images), captions=np.array(captions))
        return packed


def load_corpus(path: str | Path) -> tuple[torch.Tensor, list[str]]:
    """(N, n_mels, chunk_frames) uint8 images and their captions from a packed corpus."""
    with np.load(path) as data:
        return torch.from_numpy(data["images"]), [str(c) for c in data["captions"]]


def corpus_words(captions: list[str]) -> list[str]:
    """Every word of the captions: the v2 tokenizer's whole-word tokens."""
    return sorted({word for caption in captions for word in caption.split()} | {"music"})


def effect_caption(name: str, words: tuple[str, ...]) -> str:
    """'piano' + ('distorted', 'reverb') -> 'distorted piano with reverb'."""
    adjectives = [w for w in words if w in ("distorted", "compressed")]
    nouns = [w for w in words if w in ("reverb", "chorus")]
    caption = " ".join([*adjectives, name])
    return f"{caption} with {' and '.join(nouns)}" if nouns else caption


def apply_effects(audio: np.ndarray, rate: int, words: tuple[str, ...], rng: random.Random) -> np.ndarray:
    """The effects named by ``words`` with random settings, plus a random EQ tilt, peak-limited to 0.99."""
    import pedalboard as pb

    board = [pb.LowShelfFilter(cutoff_frequency_hz=200, gain_db=rng.uniform(-6, 6)),
             pb.HighShelfFilter(cutoff_frequency_hz=3000, gain_db=rng.uniform(-6, 6))]
    if "distorted" in words:
        board.append(pb.Distortion(drive_db=rng.uniform(15, 30)))
    if "compressed" in words:
        board.append(pb.Compressor(threshold_db=rng.uniform(-30, -18), ratio=rng.uniform(4, 10)))
    if "chorus" in words:
        board.append(pb.Chorus(rate_hz=rng.uniform(0.5, 2.0), depth=rng.uniform(0.3, 0.7), mix=0.6))
    if "reverb" in words:
        board.append(pb.Reverb(room_size=rng.uniform(0.5, 0.95), wet_level=rng.uniform(0.3, 0.5), dry_level=0.7))
    out = pb.Pedalboard(board)(audio.astype(np.float32), rate)
    peak = float(np.abs(out).max())
    return out * (0.99 / peak) if peak > 0.99 else out


def sequence(paths: list[Path], rate: int, min_seconds: float, gap: float = 0.25) -> np.ndarray:
    """Recordings one after another with short gaps, repeated until at least ``min_seconds`` long."""
    pieces = []
    for path in paths:
        clip = read_audio(path, limits=AudioLimits(max_seconds=float("inf")))
        samples = mono_at(clip, rate)
        peak = float(np.abs(samples).max()) or 1.0
        pieces += [samples / peak * 0.8, np.zeros(int(gap * rate), dtype=np.float32)]
    one = np.concatenate(pieces)
    return np.tile(one, int(np.ceil(min_seconds * rate / len(one))))


def _write(path: Path, audio: np.ndarray, rate: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        sf.write(str(tmp), audio.astype(np.float32), rate, subtype="FLOAT", format="WAV")


def _slug(name: str) -> str:
    return name.replace(" ", "_").replace("/", "_")

