"""Synthetic vocabularies that look like real input-embedding matrices, for benchmarks at sizes no installed
model has (``benchmarks/bench_scale.py``: 128k x 2,048 and 128k x 4,096), written as a Hugging Face folder that
:func:`analyzer.load_vocabulary` reads like any other.

The generator (:func:`synthetic_embeddings`), row ``i`` of ``V x d``:

    x_i = norm_i * unit( mean_weight * m  +  topic * t_k(i)  +  c_f(i)  +  within_i * e_i )

* **a shared mean direction** ``m`` (a random unit vector): real vocabularies are not centred.  Its weight is set
  so that the mean cosine of random token pairs is ``mean_cos``;
* **anisotropic families**: tokens come in families of ``family`` variants (``the``/`` the``/``The``...), each
  family a centre ``c_f`` and each token its centre plus ``within_i`` times its own noise (``within_i`` log-normal
  around ``within``, sd ``within_sd``: some tokens sit on their family, some far from it); families belong to
  topics of about ``cluster`` tokens (centre ``t_k``, weight ``topic``), so a token's 10th neighbour is still
  related to it, as in real vocabularies.  Centres and noise are Gaussian with covariance eigenvalues ``lambda_j ~ j^-alpha`` (a power law), and the first direction carries
  ``top_var`` of the total variance -- a few directions of large variance, a long flat tail;
* **heavy-tailed row norms**: ``log norm_i = log_norm_mu + log_norm_sd * t_i``, ``t_i`` a standardised
  *negated* Gamma(``norm_shape``) draw: skewness ``-2/sqrt(shape)``, kurtosis ``3 + 6/shape`` -- a long tail of
  small-norm (rare, under-trained) tokens, as in Qwen2.5.

The defaults (:data:`QWEN_LIKE`) were fitted by looking at the real vocabularies (20,000 random non-special rows
each, fixed seed; ``benchmarks/bench_scale.py --fit`` prints these statistics for the installed models):

================================  ================  ===================  ===================
statistic                         SmolLM2 49k x 576  Qwen2.5 0.5B x 896   Qwen2.5 1.5B x 1,536
================================  ================  ===================  ===================
top eigenvalue / total variance   0.110             0.038                0.027
power-law slope of eigenvalues    -0.26             -0.22                -0.25
mean cosine of random pairs       0.36              0.16                 0.11
log-norm sd, skew, kurtosis       0.18, +0.23, 3.1  0.15, -0.81, 4.5    0.14, -1.31, 6.5
cosine to nearest other token     median 0.79 (SmolLM2, exact neighbourhood)
================================  ================  ===================  ===================

so ``alpha = 0.25``, ``top_var = 0.03``, ``mean_cos = 0.12``, ``log_norm_sd = 0.145``, ``norm_shape = 4``
(skew -1, kurtosis 4.5).  ``within``, ``family``, ``cluster`` and ``topic`` set how close a token's neighbours
are; they were tuned on 30,000 x 896 draws against Qwen2.5 0.5B's exact neighbourhood (cosine to the nearest /
10th nearest other token, 10th-50th-90th percentiles: real 0.50/0.68/0.85 and 0.41/0.54/0.73; generated with
the defaults 0.57/0.71/0.81 and 0.32/0.42/0.49, top_var 0.029, eigenvalue slope -0.33, mean cosine 0.13, log-norm
skew -1.0, kurtosis 4.4).  The generated neighbourhoods are a little less graded than real ones (the 10th
neighbour is farther): the all-pairs search finds them no easier than the real ones.  Tokens are named ``tok<i>`` (a word-level tokenizer).  Pure
numpy; generated in row chunks, so memory is the float32 matrix itself."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class SyntheticSpec:
    """The generator's parameters (see the module docstring for what each does and how they were fitted)."""

    alpha: float = 0.25
    top_var: float = 0.03
    mean_cos: float = 0.12
    family: int = 6
    within: float = 1.2
    within_sd: float = 0.35
    cluster: int = 24
    topic: float = 1.0
    log_norm_mu: float = -0.55
    log_norm_sd: float = 0.145
    norm_shape: float = 4.0


QWEN_LIKE = SyntheticSpec()


def _spectrum(d: int, spec: SyntheticSpec) -> np.ndarray:
    """Standard deviations per direction: a power law, the first direction carrying ``top_var`` of the variance."""
    lam = np.arange(1, d + 1, dtype=np.float64) ** -spec.alpha
    rest = lam[1:].sum()
    lam[0] = spec.top_var / (1 - spec.top_var) * rest if d > 1 else 1.0
    return np.sqrt(lam / lam.sum()).astype(np.float32)


def synthetic_embeddings(n: int, d: int, *, spec: SyntheticSpec = QWEN_LIKE, seed: int = 0,
                         chunk: int = 8192) -> np.ndarray:
    """A float32 ``"n d"`` matrix drawn from the generator (deterministic in ``seed``)."""
    rng = np.random.default_rng(seed)
    sd = _spectrum(d, spec)
    basis = np.linalg.qr(rng.standard_normal((d, d)).astype(np.float32))[0]  # the anisotropy's directions
    m = rng.standard_normal(d).astype(np.float32)
    m /= np.linalg.norm(m)
    # a family member's direction has expected squared norm (1 + within^2) from the anisotropic parts; the mean
    # weight w makes E[cos] of two random tokens about w^2 / (w^2 + 1 + within^2)
    var = spec.topic ** 2 + 1.0 + spec.within ** 2 * np.exp(2 * spec.within_sd ** 2)
    w = np.float32(np.sqrt(spec.mean_cos * var / max(1e-6, 1 - spec.mean_cos)))
    n_fam = -(-n // spec.family)
    n_top = -(-n_fam // max(1, spec.cluster // spec.family))
    fam_of = rng.permutation(np.arange(n) // spec.family)  # families spread over the ids, as in real tokenizers
    top_of_fam = rng.integers(0, n_top, n_fam)
    centres = (rng.standard_normal((n_fam, d)).astype(np.float32) * sd) @ basis.T
    centres += spec.topic * ((rng.standard_normal((n_top, d)).astype(np.float32) * sd) @ basis.T)[top_of_fam]
    within = (spec.within * np.exp(spec.within_sd * rng.standard_normal(n))).astype(np.float32)
    g = rng.gamma(spec.norm_shape, size=n)
    t = -(g - spec.norm_shape) / np.sqrt(spec.norm_shape)
    norms = np.exp(spec.log_norm_mu + spec.log_norm_sd * t).astype(np.float32)
    out = np.empty((n, d), np.float32)
    for a in range(0, n, chunk):
        b = min(a + chunk, n)
        noise = (rng.standard_normal((b - a, d)).astype(np.float32) * sd) @ basis.T
        v = w * m + centres[fam_of[a:b]] + within[a:b, None] * noise
        out[a:b] = v * (norms[a:b] / np.linalg.norm(v, axis=1))[:, None]
    return out


def embedding_stats(x: np.ndarray, *, sample: int = 20000, seed: int = 0) -> dict:
    """The statistics the generator was fitted to (module docstring), on ``sample`` random rows of ``x``."""
    rng = np.random.default_rng(seed)
    s = np.asarray(x[np.sort(rng.choice(x.shape[0], min(sample, x.shape[0]), replace=False))], np.float64)
    norms = np.linalg.norm(s, axis=1)
    c = s - s.mean(0)
    ev = np.linalg.eigvalsh(c.T @ c / len(c))[::-1]
    half = max(12, len(ev) // 2)
    ln = np.log(norms)
    z = (ln - ln.mean()) / ln.std()
    u = s / norms[:, None]
    h = len(u) // 2
    return {"top_var": float(ev[0] / ev.sum()),
            "eig_slope": float(np.polyfit(np.log(np.arange(10, half)), np.log(ev[10:half]), 1)[0]),
            "mean_cos": float(np.mean(np.sum(u[:h] * u[h:2 * h], 1))),
            "log_norm_sd": float(ln.std()), "log_norm_skew": float((z ** 3).mean()),
            "log_norm_kurt": float((z ** 4).mean()), "median_norm": float(np.median(norms))}


def write_hf_folder(path: str | Path, emb: np.ndarray, *, name: str = "synthetic",
                    spec: SyntheticSpec | None = None) -> Path:
    """A Hugging Face folder (tied llama config, word-level ``tokenizer.json``, ``model.safetensors``) holding
    ``emb`` as the input embeddings, readable by :func:`analyzer.load_vocabulary`."""
    from safetensors.numpy import save_file
    from tokenizers import Tokenizer, models, pre_tokenizers

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    n, d = emb.shape
    vocab = {"<unk>": 0, **{f"tok{i}": i for i in range(1, n)}}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(path / "tokenizer.json"))
    (path / "tokenizer_config.json").write_text(json.dumps(
        {"tokenizer_class": "PreTrainedTokenizerFast", "unk_token": "<unk>", "model_max_length": 2048}))
    (path / "config.json").write_text(json.dumps(
        {"architectures": ["LlamaForCausalLM"], "model_type": "llama", "vocab_size": n, "hidden_size": d,
         "intermediate_size": 4 * d, "num_attention_heads": max(1, d // 128), "num_hidden_layers": 1,
         "num_key_value_heads": max(1, d // 128), "tie_word_embeddings": True, "_name_or_path": name,
         **({"synthetic_spec": asdict(spec)} if spec else {})}))
    save_file({"model.embed_tokens.weight": np.ascontiguousarray(emb, np.float32)}, str(path / "model.safetensors"))
    return path
