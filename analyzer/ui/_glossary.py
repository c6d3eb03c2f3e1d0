"""One-line explanations of the dashboard's measures and statistical words, written for a researcher who has not
read the code (streamlit-free; the sections show them as ``help=`` tooltips and "What the measures mean"
lists).  Keys are matched against the start of a measure's name in the table of tests."""

from __future__ import annotations

from typing import Iterable

MEASURES: dict[str, str] = {
    "tightness": "How similar a virtual token's k nearest vocabulary tokens are to each other (mean pairwise "
                 "cosine). High: the neighbours share a meaning; low: an unrelated scatter.",
    "k-occurrence skew": "Hubness: how unevenly the vocabulary tokens occur among the prompt's neighbour lists "
                         "(skewness of the k-occurrence counts). High: a few hub tokens sit near every virtual "
                         "token, so their presence says little.",
    "mutual-neighbour share": "The share of a virtual token's neighbours that also count it among their own k "
                              "nearest (over the vocabulary's neighbour graph). Low: the token is near them only "
                              "because they are hubs.",
    "unique neighbour ratio": "Distinct tokens over all n x k neighbour slots of the prompt. 1: every virtual "
                              "token has its own neighbours; low: they share the same few tokens.",
    "nearest-token cosine": "The cosine of each virtual token to its single nearest vocabulary token, averaged "
                            "over the prompt: how close the prompt lies to anything the model could read as a "
                            "word. A matching feature of the matched null, so only described against random "
                            "vectors, never claimed.",
    "nearest-token distance": "The Euclidean (L2) distance from each virtual token to its nearest vocabulary "
                              "token, averaged over the prompt, in the units of the model's input embeddings: "
                              "how far off the vocabulary the prompt sits. Described against random vectors, "
                              "never claimed.",
    "label-word rate": "The share of virtual tokens with one of the task's label words (e.g. positive, negative) "
                       "among their k nearest neighbours. Claimed against the initialisation only (how many "
                       "label words training kept); against the matched null a label word is too rare an event "
                       "to estimate, so that row is described.",
    "init persistence": "The share of positions whose initialisation token is still among their k nearest "
                        "neighbours after training (high: the prompt has barely moved).",
    "task-related share": "The share of neighbours related to the task (matching its label words and keywords, "
                          "or close to them in the text space).",
    "task specificity": "Relatedness to this task minus relatedness to the other known tasks: related to T "
                        "means more related to T than to the rest.",
    "description class rate": "The share of the task's classes that the model's description of the prompt "
                              "names (grid mean: over the layer grid; best cell: its highest cell), against the "
                              "same grid on matched meaningless prompts.",
    "description keyword share": "The share of the task's keywords that the model's description of the prompt "
                                 "names, averaged over the layer grid, against matched meaningless prompts.",
    "drift": "How far the trained prompt moved from its initialisation (cosine and relative L2 per position).",
    "norm": "The L2 length of a virtual token; ×median: over the vocabulary's median token norm. Far above "
            "1: off the vocabulary's manifold, where nearest tokens say less.",
}

TERMS: dict[str, str] = {
    "null": "What the value would be by chance. matched: meaningless pseudo-prompts matched to each virtual "
            "token on distance to the vocabulary, local density and nearest-token frequency (the basis of "
            "claims); init: the prompt's initialisation; random (ref.) and tokens (ref.): isotropic random "
            "vectors and vocabulary tokens, labelled references, never claims.",
    "q": "The p-value corrected for testing several measures of one prompt (Benjamini-Hochberg); a claim is "
         "made when q < 0.05. References show their plain p.",
    "verdict": "higher / lower than chance when q < 0.05 against the matched null (or than at init), else not "
               "distinguishable from chance.",
    "CSLS": "Cross-domain similarity local scaling (Conneau et al. 2018): the cosine minus how close each side "
            "is to its own neighbourhood, so hub tokens rank lower. Scores can be negative; only their order "
            "matters.",
    "McNemar": "McNemar's test on the examples where the soft prompt and its nearest-token projection disagree: "
               "is one right significantly more often than the other?",
    "f1_loose": "Token-overlap F1 between the projection's tokens and the reference text, comparing token "
                "strings case- and space-insensitively (f1: the same over exact token ids).",
    "projection gap": "Accuracy of the soft prompt minus accuracy of its hard projection (each virtual token "
                      "replaced by its nearest vocabulary token): how much of what the prompt does the discrete "
                      "reading keeps.",
    "logit lens": "What the model's output head would predict from each virtual token's hidden state at each "
                  "layer.",
    "importance": "How much one virtual token matters: the change in the gold label's NLL (negative log-likelihood "
                  "among the label words, changed − original, on the same examples) when that position is removed "
                  "(the prompt one shorter); also shown replaced by its nearest token or the vocabulary mean. "
                  "Positive: the position helps. It matters when its removal raises the NLL more than removing a "
                  "position of a matched meaningless prompt (BH over positions, q < 0.05).",
    "partial-projection curve": "Accuracy as the positions are projected to their nearest vocabulary tokens one "
                                "at a time, least important first, beside the band of random orders: where the "
                                "projection gap (soft prompt vs its nearest-token reading) comes from. A curve "
                                "that stays up and drops at the end: a few important positions carry it.",
    "class rate": "The share of the task's classes that a description names (label word or class name, in any "
                  "word form), as in InSPEcT: 1 when every class is named, 0 when none is.",
    "keyword share": "The share of the task's keywords (words typical of its training texts, mined against the "
                     "other tasks) that a description names.",
    "Patchscopes description": "What the model says the prompt means (Patchscopes, Ghandeharioun et al. 2024; "
                               "InSPEcT, Ramati et al. 2025): the virtual tokens' hidden states at a source layer "
                               "are patched into a few-shot 'what is the instruction?' prompt at a target layer, "
                               "and the model writes the description, over a grid of layer pairs. A claim only "
                               "when its class rate beats the same grid run on matched meaningless prompts.",
    "planted control": "The task's instruction embedded as a prompt (its token embeddings, tiled to the prompt's "
                       "length) and read the same way against its own null: a signal the reading must find. "
                       "Not detected means the reading is blind at this setting, so a negative result for the "
                       "prompt says little.",
    "evaluation-only task": "Data of a training task's kind from another source (sentiment-amazon: Amazon product "
                            "reviews rated by people, with the sentiment task's template and label words), never "
                            "trained on: does the prompt carry over out of domain?",
    "balanced accuracy": "The mean recall over the classes: chance is 1 / number of classes whatever the class "
                         "balance, so always answering the majority class scores no more than chance.",
    "gold-label NLL": "The mean negative log-likelihood of the correct label word, with the probabilities taken "
                      "over the task's label words only (the rank classification the prompt was trained with). "
                      "Lower is better; it moves before accuracy does.",
    "fluency weight": "λ of a decode: how much the frozen model's negative log-likelihood of the hard prompt as "
                      "text counts against the task. 0: accuracy only (the prompt may read as noise); larger: "
                      "text the model finds likelier, usually at some cost in accuracy.",
    "perplexity": "exp of the frozen model's mean negative log-likelihood of a hard prompt's tokens, each given "
                  "the ones before it: how surprising the prompt is as text (lower: more readable). Natural "
                  "English instructions sit in the tens to hundreds on small models.",
    "agreement": "The share of test examples on which the decoded prompt predicts the same label as the soft "
                 "prompt it was decoded from: does it do the soft prompt's job, not just the task?",
    "gain recovered": "(decoded accuracy − zero-shot) / (soft prompt accuracy − zero-shot): how much of what "
                      "training bought the real tokens keep. Shown only when the soft prompt beats zero-shot. The same "
                      "ratio in balanced accuracy is shown beside it: on an imbalanced task (spam: 87% ham) a "
                      "prompt that answers the majority class keeps most of the gain in accuracy and none in "
                      "balanced accuracy.",
}


def measure_help(measure: str) -> str | None:
    """The explanation of a measure of the table of tests (matched on the start of its name), or None."""
    m = _spelling(measure)
    for key, text in MEASURES.items():
        if m.startswith(_spelling(key)):
            return text
    return None


def _spelling(name: str | None) -> str:
    """A measure name lower-cased, with neighbor/neighbour read alike (the rows are written both ways)."""
    return (name or "").strip().lower().replace("neighbour", "neighbor")


def glossary_lines(measures: Iterable[str], terms: Iterable[str] = ("null", "q", "verdict")) -> list[str]:
    """Markdown lines ``**name**: explanation`` for the distinct measures given (in order of first appearance,
    those without an entry left out) and then the ``terms``."""
    out, seen = [], set()
    for m in measures:
        base = (m or "").split(" (")[0].strip()
        text = measure_help(base)
        if text and _spelling(base) not in seen:
            seen.add(_spelling(base))
            out.append(f"**{base}**: {text}")
    out += [f"**{t}**: {TERMS[t]}" for t in terms if t in TERMS]
    return out


__all__ = ["MEASURES", "TERMS", "measure_help", "glossary_lines"]
