"""The mini base model's architecture: its spectrogram format, tokenizer and network configs.

Sized to train from scratch in under two hours on two CPU cores and to stylize a 5 s clip in a few seconds:
128 mel bins x 256 frames of 16 kHz audio (5.1 s), a VAE that downsamples by 4 (latents 4 x 32 x 64), a
UNet of 11 M parameters with attention only at the two coarser levels, and a two-layer CLIP text
encoder whose tokenizer knows the instruments' names as whole words.
"""

from __future__ import annotations

from collections.abc import Iterable

from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import AddedToken, CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from ..spectrogram import SpectrogramFormat

# 20 ms hop, 80 ms window (4x overlap keeps Griffin-Lim clean), 128 mel bins up to 8 kHz (half a semitone at 500 Hz).
MINI_SPECTROGRAM = SpectrogramFormat(
    sample_rate=16000, n_fft=2048, hop_length=320, win_length=1280, n_mels=128, f_min=0.0, f_max=8000.0,
    power=0.25, width=256, griffin_lim_iters=32,
)
VAE_FACTOR = 4
TEXT_WIDTH = 128
MAX_TOKENS = 16  # captions are an instrument's name: a few words


def build_tokenizer(words: Iterable[str]) -> CLIPTokenizer:
    """A character-level CLIP tokenizer over printable ASCII that also knows each of ``words`` as one token.

    The words are added tokens matched only as whole words, so a caption's words are single tokens, and
    anything else, ``*`` (the style placeholder) included, falls back to characters.
    """
    vocab: dict[str, int] = {}
    for suffix in ("", "</w>"):
        for code in range(33, 127):
            vocab[chr(code) + suffix] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    tokenizer = CLIPTokenizer(vocab=vocab, merges=[], model_max_length=MAX_TOKENS)
    tokenizer.add_tokens([AddedToken(word, single_word=True, normalized=False) for word in sorted(set(words))])
    return tokenizer


def build_text_encoder(tokenizer: CLIPTokenizer) -> CLIPTextModel:
    return CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=TEXT_WIDTH, intermediate_size=4 * TEXT_WIDTH, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=MAX_TOKENS,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    ))


def build_vae() -> AutoencoderKL:
    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=16,
        block_out_channels=(32, 64, 128), sample_size=MINI_SPECTROGRAM.n_mels,
        down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
    )


def build_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=MINI_SPECTROGRAM.n_mels // VAE_FACTOR, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(64, 128, 192), norm_num_groups=16, cross_attention_dim=TEXT_WIDTH, attention_head_dim=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
    )
