"""The built-in ``tiny`` base model: random weights from a fixed seed, built from configs in code.

It has the exact structure of a real base model (UNet, VAE, CLIP text encoder and tokenizer, DDIM schedule) at
about a million parameters, so tests and smoke runs exercise every code path in seconds. Its output is noise.
"""

from __future__ import annotations

from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

from .seeding import seeded
from .spectrogram import SpectrogramFormat

TINY_SEED = 0

# Small images (64 mel bins x 64 frames, 0.73 s) so a whole stylize takes well under a second.
TINY_SPECTROGRAM = SpectrogramFormat(
    sample_rate=22050, n_fft=1024, hop_length=256, win_length=1024, n_mels=64, f_max=8000.0, width=64,
)

# Riffusion's (and Stable Diffusion 1.5's) noise schedule.
SD_SCHEDULER_CONFIG = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "steps_offset": 1,
    "set_alpha_to_one": False,
    "clip_sample": False,
}


def build_tiny_tokenizer() -> CLIPTokenizer:
    """A character-level CLIP tokenizer (printable ASCII, no merges), built without any file."""
    vocab: dict[str, int] = {}
    characters = [chr(c) for c in range(33, 127)]
    for suffix in ("", "</w>"):
        for ch in characters:
            vocab[ch + suffix] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)


@seeded(TINY_SEED)
def build_tiny_components() -> tuple[UNet2DConditionModel, AutoencoderKL, CLIPTextModel, CLIPTokenizer]:
    """The tiny model's components, identical on every call (fixed seed)."""
    tokenizer = build_tiny_tokenizer()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    ))
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1, norm_num_groups=8,
        block_out_channels=(16, 32), sample_size=TINY_SPECTROGRAM.width,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
    )
    unet = UNet2DConditionModel(
        sample_size=TINY_SPECTROGRAM.width // 2, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=(32, 64), norm_num_groups=8, cross_attention_dim=32, attention_head_dim=8,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),  # attention at 16 x 16 only: fast
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
    )
    return unet, vae, text_encoder, tokenizer


@seeded(TINY_SEED)
def build_riffusion_sized_components() -> tuple[UNet2DConditionModel, AutoencoderKL, CLIPTextModel, CLIPTokenizer]:
    """Riffusion's exact architecture (SD 1.5: 860 M UNet, 84 M VAE, CLIP ViT-L/14 text) with random weights.

    Same compute as the real model, so benchmarks need no download; the output is noise.
    """
    tokenizer = build_tiny_tokenizer()  # token ids only pick rows of the embedding table: any vocabulary works
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
        max_position_embeddings=77, hidden_act="quick_gelu",
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    ))
    vae = AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, sample_size=512,
    )
    unet = UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
        cross_attention_dim=768, attention_head_dim=8,
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
    )
    return unet, vae, text_encoder, tokenizer
