"""Captions -> text embeddings: the one prompt encoder of training, latent caches, validation, generate and the toy
base's pretraining."""

from __future__ import annotations

import torch


@torch.no_grad()
def encode_prompts(tokenizer, text_encoder, prompts: list[str]) -> torch.Tensor:
    """Captions -> the text encoder's last hidden state (b, seq, dim), padded to the tokenizer's max length, as
    StableDiffusionPipeline.encode_prompt does (the attention mask only for encoders configured to use one).
    The one prompt encoder: training, latent caches, validation, generate and toy pretraining all call it."""
    tokens = tokenizer(list(prompts), padding="max_length", max_length=tokenizer.model_max_length,
                       truncation=True, return_tensors="pt")
    ids = tokens.input_ids.to(text_encoder.device)  # (b, seq)
    use_mask = getattr(text_encoder.config, "use_attention_mask", False)
    mask = tokens.attention_mask.to(text_encoder.device) if use_mask else None
    return text_encoder(ids, attention_mask=mask)[0]  # (b, seq, dim)
