"""Text-encoder contexts for the UNet: the empty prompt, and the prompt "*" with its embedding replaced.

The style's e(t) replaces the *input* token embedding of ``*`` (before CLIP's transformer; positions are added
after), through a forward hook on the text encoder's embedding table, so the text encoder itself is used as is.
"""

from __future__ import annotations

import torch

from .base_model import BaseModel
from .errors import SettingsError

PLACEHOLDER = "*"
FP16_PEAK = 256.0  # largest |component| of e(t) fed to a text encoder that runs in fp16 (fp16 ends at 65504)


def fit_to_dtype(embeddings: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """e(t) rows scaled down, where fp16 could not hold them, to a peak of FP16_PEAK; other dtypes untouched.

    A learned e(t) can grow far past any word embedding (norms of 1e6 and more: three stacked linear layers, and
    a loss that the text encoder's layer norms make nearly blind to scale), which in fp16 is inf and then NaN.
    Scaling a row keeps its direction, which is what the first layer norm passes on; what changes is only the
    relative weight of the position embedding and the residual sums, already negligible at such sizes.
    """
    if dtype != torch.float16:
        return embeddings
    peak = embeddings.abs().amax(dim=-1, keepdim=True).clamp(min=torch.finfo(torch.float32).tiny)
    return embeddings * torch.clamp(FP16_PEAK / peak, max=1.0)


class TextConditioner:
    """Builds cross-attention contexts for one base model; the unconditional context is computed once."""

    def __init__(self, base: BaseModel):
        self.base = base
        config = base.text_encoder.config
        self.max_length = min(base.tokenizer.model_max_length, config.max_position_embeddings)
        self.style_ids = self._token_ids(PLACEHOLDER)
        self.placeholder_id = self._single_token_id(PLACEHOLDER)
        self._unconditional: torch.Tensor | None = None

    def _token_ids(self, prompt: str) -> torch.Tensor:
        ids = self.base.tokenizer(
            prompt, padding="max_length", max_length=self.max_length, truncation=True, return_tensors="pt"
        ).input_ids
        return ids.to(self.base.device)

    def _single_token_id(self, word: str) -> int:
        pieces = self.base.tokenizer.tokenize(word)
        if len(pieces) != 1:
            raise SettingsError(f"The tokenizer splits '{word}' into {len(pieces)} tokens; it must be one.")
        return int(self.base.tokenizer.convert_tokens_to_ids(pieces[0]))

    def word_embedding(self, word: str) -> torch.Tensor:
        """The (frozen) input embedding of a word: the mean over its tokens, shape (embed_dim,)."""
        pieces = self.base.tokenizer.tokenize(word)
        if not pieces:
            raise SettingsError(f"Init word '{word}' has no tokens; pick an ordinary word such as 'music'.")
        ids = torch.tensor(self.base.tokenizer.convert_tokens_to_ids(pieces), device=self.base.device)
        return self.base.text_encoder.get_input_embeddings().weight[ids].detach().float().mean(dim=0)

    @torch.no_grad()
    def unconditional(self) -> torch.Tensor:
        """Context of the empty prompt, shape (1, length, width): the style-free branch of guidance."""
        if self._unconditional is None:
            with self.base.autocast():
                hidden = self.base.text_encoder(self._token_ids("")).last_hidden_state
            self._unconditional = hidden.float()
        return self._unconditional

    def style_context(self, placeholder_embeddings: torch.Tensor) -> torch.Tensor:
        """Contexts of the prompt "*" with ``*``'s input embedding set per row: (B, width) -> (B, length, width).

        Gradients flow back into ``placeholder_embeddings`` (training); wrap in no_grad for inference.
        """
        batch = placeholder_embeddings.shape[0]
        ids = self.style_ids.expand(batch, -1)
        is_placeholder = (ids == self.placeholder_id).unsqueeze(-1)

        def replace(_module, _inputs, output):
            fitted = fit_to_dtype(placeholder_embeddings, output.dtype)
            return torch.where(is_placeholder, fitted[:, None, :].to(output.dtype), output)

        handle = self.base.text_encoder.get_input_embeddings().register_forward_hook(replace)
        try:
            with self.base.autocast():
                hidden = self.base.text_encoder(ids).last_hidden_state
        finally:
            handle.remove()
        return hidden.float()
