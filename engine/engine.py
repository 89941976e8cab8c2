"""The engine's public surface: load a base model once, then train, stylize and manage styles many times.

    engine = Engine.load("riffusion/riffusion-model-v1")
    engine.train("accordion", ["clips/"], TrainSettings(steps=3000))
    engine.train("bird", ["bird/"], TrainSettings(steps=3000, adapter=LoraSettings(rank=4)))  # TVE + LoRA
    result = engine.stylize("loop.wav", "accordion", SamplerSettings(strength=0.6, scale=4.5))

Long calls take a progress callback and a cancel check, consulted between diffusion or optimiser steps.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from .adapters import ADAPTER_FILE
from .audio import AudioLimits, Clip, check_samples, fit_length, read_audio, resample, write_audio
from .backends import Backend, create_backend
from .devices import default_window_batch
from .base_model import BaseModel, load_base_model
from .conditioning import TextConditioner
from .errors import (
    AdapterNotSupportedError,
    AudioError,
    BaseModelMismatchError,
    DamagedStyleError,
    SettingsError,
    StyleExistsError,
)
from .library import StyleLibrary, check_name
from .loudness import match_loudness
from .numbers import finite_number
from .outputs import check_output, fresh_path
from .presets import preset_for
from .progress import CancelCheck, Progress, ProgressCallback
from .sampler import Sampler, SamplerSettings
from .spectrogram import SpectrogramConverter, check_phase_source, image_to_model_input, model_output_to_image
from .style import INFO_FILE, WEIGHTS_FILE, Style, StyleInfo, StyleMix, parse_style_mix
from .training import StyleTrainer, TrainSettings, collect_clips
from .windows import join, split


@dataclass(frozen=True)
class StylizeResult:
    """What a stylize call wrote."""

    path: Path
    sample_rate: int
    channels: int
    num_samples: int
    style: str
    settings: SamplerSettings

    @property
    def seconds(self) -> float:
        return self.num_samples / self.sample_rate


@dataclass(frozen=True)
class EngineSettings:
    """How audio is cut for the model (0.2 s overlaps with equal-power crossfades, Riffusion's long-audio path) and
    where the stylized audio's phase comes from."""

    overlap_seconds: float = 0.2
    window_batch: int | None = None  # windows denoised together in one UNet batch; None: the device's default
    limits: AudioLimits = AudioLimits()
    # "input": the stylized magnitudes take the input's own STFT phase, so the result stays sample-aligned with
    # the input (measured on mini v2: codec round trip 2.15 -> 1.66 dB, note F1 0.72 -> 0.84; docs/mini-model.md);
    # "griffin-lim": Riffusion's way, a phase estimated from a random start.
    phase: str = "input"

    def __post_init__(self):
        check_phase_source(self.phase)


class Engine:
    """A loaded base model plus a style library. Create once; every method may be called many times."""

    def __init__(self, base: BaseModel, library: StyleLibrary, settings: EngineSettings = EngineSettings(),
                 backend: Backend | None = None):
        self.base = base
        self.library = library
        self.settings = settings
        self.backend = backend or create_backend(base, "torch")
        self.converter = SpectrogramConverter(base.spectrogram, base.device)
        self.conditioner = TextConditioner(base)
        self.sampler = Sampler(base, self.conditioner, self.backend.noise_predictor)
        self._styles: dict[str, tuple[float, Style]] = {}

    @classmethod
    def load(
        cls, model: str, device: str = "auto", dtype: str = "auto", styles_dir: str | os.PathLike | None = None,
        settings: EngineSettings = EngineSettings(), backend: str = "torch", onnx_dir: str | os.PathLike | None = None,
    ) -> "Engine":
        """Load the base model (and the ONNX sessions for ``backend="onnx"``) once."""
        base = load_base_model(model, device, dtype)
        return cls(base, StyleLibrary(styles_dir), settings, create_backend(base, backend, onnx_dir))

    def compile_unet(self) -> None:
        """From the next call on, run the UNet through torch.compile (torch backend only; compiles on first use)."""
        if self.backend.name != "torch":
            raise SettingsError("--compile applies to the torch backend only; drop it or use --backend torch.")
        self.backend = create_backend(self.base, "torch", compile=True)
        self.sampler.noise_predictor = self.backend.noise_predictor

    # -- styles -------------------------------------------------------------------------------------------------
    def style(self, name: str) -> Style:
        """A style from the library, loaded once and kept warm (reloaded if its files change)."""
        stamp = _stamp(self.library.locate(name))
        cached = self._styles.get(name)
        if cached is None or cached[0] != stamp:
            style = self.library.load(name, self.base.device)
            self.check_compatible(style.info)
            self._styles[name] = (stamp, style)
        return self._styles[name][1]

    def style_names(self) -> list[str]:
        """The library's styles that this engine's base model can use (trained on these very weights; not damaged)."""
        return [name for name in self.library.names() if self._usable(name)]

    def _usable(self, name: str) -> bool:
        try:
            return self.library.info(name).base_fingerprint == self.base.fingerprint
        except DamagedStyleError:
            return False

    def check_compatible(self, info: StyleInfo) -> None:
        if info.base_fingerprint != self.base.fingerprint:
            raise BaseModelMismatchError(
                f"Style '{info.name}' was trained on base model '{info.base_model}', not on the loaded "
                f"'{self.base.model_id}'; load that model (--model) or retrain the style."
            )

    def style_mix(self, spec: str) -> StyleMix:
        """'bird' or 'bird:0.7,chime:0.3' -> the styles, blended (refused when the backend cannot apply them)."""
        mix = StyleMix(tuple((self.style(name), weight) for name, weight in parse_style_mix(spec)))
        self.check_backend(mix)
        return mix

    def check_backend(self, mix: StyleMix) -> None:
        """Only the torch backend applies LoRA adapters (the ONNX export holds the plain UNet)."""
        with_adapter = [style.name for style, _ in mix.parts if style.adapter is not None]
        if with_adapter and self.backend.name != "torch":
            raise AdapterNotSupportedError(
                f"Style '{with_adapter[0]}' carries a LoRA adapter, which the {self.backend.name.upper()} backend "
                "cannot apply; stylize it with --backend torch."
            )

    def recommended_settings(self, mix: StyleMix) -> SamplerSettings:
        """The first style's recommended scale and strength, otherwise the published defaults."""
        info = mix.parts[0][0].info
        return SamplerSettings(strength=info.recommended_strength, scale=info.recommended_scale)

    # -- training -----------------------------------------------------------------------------------------------
    def train(
        self,
        name: str,
        clips: list[str | os.PathLike],
        settings: TrainSettings = TrainSettings(),
        resume: bool = False,
        overwrite: bool = False,
        progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
        preset: str | None = None,
    ) -> Style:
        """Learn a style from audio clips (files or folders) and save it in the library.

        Its recommended scale and strength come from ``preset`` (or the preset of the same name, or the default).
        """
        check_name(name)
        recommended = preset_for(name, preset)
        paths = collect_clips(list(clips))
        with self.library.training_lock(name):
            if name in self.library and not self.library.is_shipped(name) and not overwrite:
                raise StyleExistsError(f"A style named '{name}' already exists; pick another name or use --overwrite.")
            trainer = StyleTrainer(self.base, self.conditioner, self.settings.limits)
            checkpoint = self.library.checkpoint_path(name)
            style = trainer.train(name, paths, settings, checkpoint, resume, progress, should_cancel)
            style.info.recommended_scale, style.info.recommended_strength = recommended.scale, recommended.strength
            self.library.save(style, overwrite=overwrite)
            checkpoint.unlink(missing_ok=True)
        self.library.remove_checkpoint(name)
        self._styles.pop(name, None)
        return style

    # -- stylizing ----------------------------------------------------------------------------------------------
    def stylize(
        self,
        input_path: str | os.PathLike,
        style: str,
        settings: SamplerSettings | None = None,
        output_path: str | os.PathLike | None = None,
        stereo: bool = False,
        start: float | None = None,
        end: float | None = None,
        progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
        overwrite: bool = False,
    ) -> StylizeResult:
        """Stylize an audio file (optionally the region ``start``..``end`` seconds) and write the result.

        The output has the input region's sample rate, channel count and exact number of samples. Without
        ``output_path`` it is a fresh ``INPUT_STYLE.wav`` (``-2``, ``-3``... if taken); an existing file is only
        replaced with ``overwrite``.
        """
        input_path = Path(input_path)
        mix = self.style_mix(style)
        settings = settings or self.recommended_settings(mix)
        default = input_path.with_name(f"{input_path.stem}_{mix.label}.wav")
        output = Path(output_path) if output_path else fresh_path(default)
        if output.resolve() == input_path.resolve():
            raise SettingsError("The output file would overwrite the input; choose another output name.")
        check_output(output, overwrite)
        clip = region(read_audio(input_path, self.settings.limits), start, end, input_path.name)
        samples = self.stylize_samples(clip, mix, settings, stereo, progress, should_cancel)
        write_audio(output, Clip(samples, clip.sample_rate), overwrite=overwrite)
        return StylizeResult(output, clip.sample_rate, clip.channels, clip.num_samples, mix.label, settings)

    def stylize_samples(
        self,
        clip: Clip,
        mix: StyleMix,
        settings: SamplerSettings,
        stereo: bool = False,
        progress: ProgressCallback | None = None,
        should_cancel: CancelCheck | None = None,
    ) -> np.ndarray:
        """(channels, samples) in -> (channels, samples) out, at the clip's own sample rate."""
        self.check_backend(mix)
        fmt = self.base.spectrogram
        signals = clip.samples if stereo else clip.mono()[None]
        model_rate = resample(signals, clip.sample_rate, fmt.sample_rate)
        overlap = int(round(self.settings.overlap_seconds * fmt.sample_rate))
        windows = np.concatenate([split(s, fmt.window_samples, overlap) for s in model_rate])
        per_signal = len(windows) // len(signals)

        batch = self.settings.window_batch or default_window_batch(self.base.device)
        batches = list(torch.from_numpy(windows).split(batch))
        total, done = len(batches) * settings.unet_batches, 0

        def step() -> None:
            nonlocal done
            done += 1
            if progress is not None:
                progress(Progress("stylize", done, total))

        with self.sampler.adapters_kept(mix):  # adapters load once per call, not once per window batch
            outputs = [self.stylize_windows(b, mix, settings, step, should_cancel) for b in batches]
        stylized = torch.cat(outputs).numpy().reshape(len(signals), per_signal, -1)
        joined = np.stack([join(s, model_rate.shape[1], overlap) for s in stylized])
        result = fit_length(resample(joined, fmt.sample_rate, clip.sample_rate), clip.num_samples)
        if not stereo:
            result = np.repeat(result, clip.channels, axis=0)
        result = match_loudness(result, clip.samples, clip.sample_rate)
        return np.ascontiguousarray(result, dtype=np.float32)

    def stylize_windows(
        self, windows: torch.Tensor, mix: StyleMix, settings: SamplerSettings, on_step=None, should_cancel=None
    ) -> torch.Tensor:
        """(B, window_samples) audio -> stylized audio of the same shape, on the CPU."""
        images, maxima, phase = self.analyse(windows)
        latents = self.encode(images)
        latents = self.sampler.sample(latents, mix, settings, on_step, should_cancel)
        decoded = self.decode(latents)
        generator = torch.Generator().manual_seed(settings.seed)
        # Every window's level follows its input (the image is scaled back by the input's maximum); the whole
        # clip's loudness and peak are set afterwards (loudness.py).
        audio = self.converter.image_to_audio(decoded, maxima, generator, phase)
        return audio.cpu()

    def analyse(self, windows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(B, window_samples) audio -> images, their maxima, and the phase the rebuilt windows take: the input's
        own, or None for Griffin-Lim's estimate (EngineSettings.phase)."""
        if self.settings.phase == "input":
            return self.converter.audio_to_image_and_phase(windows)
        return *self.converter.audio_to_image(windows), None

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """8-bit spectrogram images -> scaled latents (posterior mean)."""
        return self.backend.vae.encode(image_to_model_input(images).to(self.base.device)) * self.base.vae_scale

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Scaled latents -> spectrogram images as float pixel values."""
        return model_output_to_image(self.backend.vae.decode(latents / self.base.vae_scale))


def _stamp(folder: Path) -> tuple:
    """Changes when a style's files change (a missing file counts as a change too)."""
    files = [folder / INFO_FILE, folder / WEIGHTS_FILE, folder / ADAPTER_FILE]
    return tuple((f.stat().st_mtime_ns, f.stat().st_size) if f.is_file() else None for f in files)


def region(clip: Clip, start: float | None, end: float | None, label: str) -> Clip:
    """The part of ``clip`` between ``start`` and ``end`` seconds (either may be None)."""
    if start is None and end is None:
        return clip
    for value, what in ((start, "start"), (end, "end")):
        if value is not None:
            finite_number(value, f"{what} (seconds)")
    first = 0 if start is None else int(round(start * clip.sample_rate))
    last = clip.num_samples if end is None else int(round(end * clip.sample_rate))
    if first < 0 or last > clip.num_samples or first >= last:
        raise AudioError(
            f"Region {start}..{end} s is outside {label} (0..{clip.seconds:.2f} s) or empty; check start and end."
        )
    samples = clip.samples[:, first:last]
    check_samples(samples, f"{label} between {start} and {end} s")
    return replace(clip, samples=samples)
