"""Loaders: one private module per source.  ``load_vocabulary`` reads a model's input embeddings;
``load_prompt`` / ``load_prompts`` read soft prompts (PEFT adapter directories or raw tensors)."""

from ._prompt import check_compatible, load_prompt, load_prompts
from ._vocab import load_vocabulary

__all__ = ["load_vocabulary", "load_prompt", "load_prompts", "check_compatible"]
