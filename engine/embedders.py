"""Audio (and text) embedders for evaluation, behind one small interface; CLAP through transformers.

Adding another embedder is one class with ``name``, ``sample_rate``, ``embed_audio`` and ``embed_text``.
Embeddings are L2-normalised rows.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
import torch

from .errors import ModelNotFoundError
from .seeding import fixed_seed

DEFAULT_CLAP = "laion/clap-htsat-unfused"
CLAP_SECONDS = 10.0  # the reports' protocol: 48 kHz mono, repeat-padded (or cut) to 10 s


class Embedder(Protocol):
    name: str
    sample_rate: int

    def embed_audio(self, clips: list[np.ndarray]) -> np.ndarray:
        """Mono clips at ``sample_rate`` -> (N, D) unit rows."""

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """Prompts -> (N, D) unit rows in the same space."""


def repeat_pad(clip: np.ndarray, length: int) -> np.ndarray:
    """Repeat a clip until it fills ``length`` samples (cut longer ones), as the CLAP reports did."""
    if len(clip) >= length:
        return clip[:length]
    return np.tile(clip, int(np.ceil(length / max(1, len(clip)))))[:length]


class ClapEmbedder:
    """CLAP (HTSAT audio + RoBERTa text) via transformers' ClapModel, loaded once, run in batches."""

    sample_rate = 48000

    def __init__(self, model, processor, name: str, device: str = "cpu", batch_size: int = 8):
        self.model = model.eval().to(device)
        self.processor = processor
        self.name = name
        self.device = device
        self.batch_size = batch_size

    @classmethod
    def load(cls, source: str = DEFAULT_CLAP, device: str = "cpu") -> "ClapEmbedder":
        from transformers import ClapModel, ClapProcessor

        if source == "tiny":
            return cls.tiny()
        try:
            model = ClapModel.from_pretrained(source)
            processor = ClapProcessor.from_pretrained(source)
        except (OSError, ValueError):
            raise ModelNotFoundError(
                f"CLAP model '{source}' is not on this machine: download it once with `hf download {source}` where "
                "there is internet, or pass --clap FOLDER."
            ) from None
        return cls(model, processor, source, device)

    @classmethod
    def tiny(cls) -> "ClapEmbedder":
        """A randomly initialised CLAP with the real feature pipeline, for tests (its numbers mean nothing)."""
        from transformers import (ClapAudioConfig, ClapConfig, ClapFeatureExtractor, ClapModel, ClapTextConfig,
                                  RobertaTokenizer)

        vocab = {tok: i for i, tok in enumerate(["<s>", "<pad>", "</s>", "<unk>"] + [chr(c) for c in range(33, 127)]
                                                 + ["Ġ"])}
        tokenizer = RobertaTokenizer(vocab=vocab, merges=[])
        config = ClapConfig(
            text_config=ClapTextConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                                       num_attention_heads=4, intermediate_size=37, max_position_embeddings=80,
                                       projection_dim=16).to_dict(),
            audio_config=ClapAudioConfig(window_size=8, num_mel_bins=64, spec_size=256, patch_size=4,
                                         patch_stride=(4, 4), depths=[1, 1], num_heads=[2, 2], hidden_size=32,
                                         patch_embeds_hidden_size=16, projection_dim=16,
                                         enable_fusion=False).to_dict(),
            projection_dim=16,
        )
        features = ClapFeatureExtractor(feature_size=64, sampling_rate=48000, max_length_s=int(CLAP_SECONDS))
        with fixed_seed(0):  # the same random weights every time, without touching the global generator
            model = ClapModel(config)
        return cls(model, _Processor(features, tokenizer), "tiny-clap (random weights)")

    @torch.inference_mode()
    def embed_audio(self, clips: list[np.ndarray]) -> np.ndarray:
        length = int(CLAP_SECONDS * self.sample_rate)
        rows = []
        for start in range(0, len(clips), self.batch_size):
            batch = [repeat_pad(c.astype(np.float32), length) for c in clips[start:start + self.batch_size]]
            inputs = self.processor.feature_extractor(batch, sampling_rate=self.sample_rate, return_tensors="pt",
                                                      padding="repeatpad", truncation="rand_trunc")
            output = self.model.get_audio_features(**{k: v.to(self.device) for k, v in inputs.items()})
            rows.append(_unit(_embeds(output)))
        return np.concatenate(rows)

    @torch.inference_mode()
    def embed_text(self, texts: list[str]) -> np.ndarray:
        inputs = self.processor.tokenizer(texts, padding=True, return_tensors="pt")
        output = self.model.get_text_features(**{k: v.to(self.device) for k, v in inputs.items()})
        return _unit(_embeds(output))


class _Processor:
    """The two halves of a ClapProcessor, for the tiny model built without files."""

    def __init__(self, feature_extractor, tokenizer):
        self.feature_extractor, self.tokenizer = feature_extractor, tokenizer


def _embeds(output) -> torch.Tensor:
    """transformers 5 returns a model output whose pooler_output is the projected embedding; 4 a tensor."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _unit(x: torch.Tensor) -> np.ndarray:
    x = x.float().cpu().numpy()
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class SoundEffectsEmbedder:
    """aiSFX (Ma et al., ISMIR 2022): a CNN trained on sound-effects libraries, its weights shipped in its wheel.

    Nobody on this project trained it, so it is an independent judge of timbre: clips are peak-normalised, turned
    into its 96-band log-mel spectrogram (44.1 kHz, 2048/1024), cut into ~2.3 s blocks with 50 % overlap, and
    the block embeddings (512-d) are averaged. Install it with ``pip install --no-deps aisfx==0.1.2`` (its
    metadata pins numpy 1.23 and librosa 0.9, which it does not need). It has no text side.
    """

    name = "aisfx"
    sample_rate = 44100
    BLOCK = 100  # frames per block, as the published model was trained
    MEL_MAX = 9.457798957824707  # the published normalisation ('original')

    def __init__(self, device: str = "cpu"):
        try:
            from aisfx.inference import get_path_modelWeights, load_bestModel
        except ImportError as error:
            raise ModelNotFoundError(
                "The sound-effects embedder is not installed: `pip install --no-deps aisfx==0.1.2`.") from error
        # The checkpoint pickles numpy scalars next to the weights; it comes from the installed wheel itself.
        weights, datasets = torch.load(get_path_modelWeights(), map_location="cpu", weights_only=False)
        self.model = load_bestModel(weights, datasets, device)
        self.device = device

    def spectrogram(self, clip: np.ndarray) -> np.ndarray:
        """(frames, 96) normalised log-mel spectrogram, as the model was trained on."""
        import librosa

        peak = float(np.abs(clip).max()) or 1.0
        mel = librosa.feature.melspectrogram(
            y=clip.astype(np.float32) / peak, sr=self.sample_rate, n_mels=96, norm=1.0, fmin=0.0, fmax=22050.0,
            htk=True, power=2.0, hop_length=1024, win_length=2048)
        return (np.log10(mel * 10000.0 + 1) / self.MEL_MAX).T

    @torch.no_grad()
    def embed_audio(self, clips: list[np.ndarray]) -> np.ndarray:
        rows = []
        for clip in clips:
            spec = self.spectrogram(clip)
            if len(spec) < self.BLOCK:
                spec = np.concatenate([spec, np.zeros((self.BLOCK - len(spec), spec.shape[1]))])
            starts = range(0, len(spec) - self.BLOCK + 1, self.BLOCK // 2)
            blocks = torch.tensor(np.stack([spec[s : s + self.BLOCK] for s in starts]), dtype=torch.float32)
            rows.append(self.model.get_embedding(blocks.to(self.device)).mean(dim=0))
        return _unit(torch.stack(rows))

    def embed_text(self, texts: list[str]) -> np.ndarray:
        raise ModelNotFoundError("The sound-effects embedder has no text side: compare with audio clips.")
