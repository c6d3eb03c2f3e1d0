"""Soft prompt -> hard prompt: real tokens that do the soft prompt's job (PEZ-style projected gradient descent with a
teacher and a fluency term), scored on held-out examples and written as a PEFT adapter.

Importing this package pulls numpy only; torch is imported inside the functions."""

from .compare import CompareResult, compare_for_model, compare_prompts
from .config import INITS, DecodeConfig
from .frontier import FrontierResult, decode_frontier
from .pez import DecodeTrace
from .result import DecodeResult
from .run import decode, decode_for_model

__all__ = ["CompareResult", "compare_for_model", "compare_prompts", "DecodeConfig", "DecodeResult", "DecodeTrace", "FrontierResult", "INITS", "decode", "decode_for_model",
           "decode_frontier"]
