"""Task-relatedness (issue 4, point 5): keyword mining and the share of task-related neighbours against the
nulls, on a synthetic vocabulary with a planted task cluster; one integration test on the real SmolLM2."""

import json
import os
import re

import numpy as np
import pytest

from analyzer import AnalyzerError, NeighborIndex, SoftPrompt, Vocabulary
from analyzer import metrics as M
from analyzer import relatedness as R
from analyzer.embedder import readable_text
from analyzer.neighbors import normalize_rows
from analyzer.tasks import Example, Task

REAL_CACHE = os.environ.get("SOFTPROMPT_ANALYZER_CACHE")  # conftest's shared cache (the real model lives there)

D = 32
#: the planted task: fruit words, with label words good/bad and class words on each side
FRUIT = ["apple", "banana", "cherry", "grape", "lemon", "mango", "peach", "plum"]
GOOD = ["tasty", "sweet", "fresh"]
BAD = ["rotten", "sour", "mushy"]
LABELS = ["good", "bad"]
#: in the fruit cluster but never in the texts: related by similarity only
CLUSTER_ONLY = ["melon", "kiwi", "papaya", "guava"]
#: the background task's topic
TOOLS = ["hammer", "wrench", "drill", "saw", "chisel", "pliers"]
#: words common to both corpora
COMMON = ["really", "quite", "today", "think", "looks", "seems", "said", "made"]


def _letters(rng, n):
    out, seen = [], set(FRUIT + GOOD + BAD + LABELS + CLUSTER_ONLY + TOOLS + COMMON) | R.STOPWORDS
    while len(out) < n:
        w = "".join(rng.choice(list("bcdfghjklmnpqrstvwxz"), 2)) + "".join(rng.choice(list("aeiou"), 1)) + \
            "".join(rng.choice(list("bcdfghjklmnpqrstvwxz"), 2))
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


def planted_world(n_filler=900, seed=0):
    """A vocabulary with a tight fruit cluster (task words, label words, class words, and cluster-only words),
    a tools cluster, and random filler words.  Returns (vocab, info)."""
    rng = np.random.default_rng(seed)
    fruit_c, tool_c = normalize_rows(rng.normal(size=(2, D)))
    fruit_words = FRUIT + GOOD + BAD + LABELS + CLUSTER_ONLY
    rows, tokens = [rng.normal(size=(3, D))], ["<s>", "</s>", "<pad>"]
    rows.append(fruit_c + 0.35 * normalize_rows(rng.normal(size=(len(fruit_words), D))))
    tokens += [f"␣{w}" for w in fruit_words]
    rows.append(tool_c + 0.35 * normalize_rows(rng.normal(size=(len(TOOLS), D))))
    tokens += [f"␣{w}" for w in TOOLS]
    rows.append(normalize_rows(rng.normal(size=(len(COMMON), D))))
    tokens += [f"␣{w}" for w in COMMON]
    filler = _letters(rng, n_filler)
    rows.append(normalize_rows(rng.normal(size=(n_filler, D))))
    tokens += [f"␣{w}" for w in filler]
    # case/space variants of two words, and unreadable/odd tokens
    rows.append(normalize_rows(rng.normal(size=(5, D))))
    tokens += ["Apple", "␣Apple", "ab1", "␣", "↵"]
    emb = np.vstack(rows).astype(np.float32)
    mask = np.zeros(len(tokens), bool)
    mask[:3] = True
    toks = tuple(tokens)
    v = Vocabulary(name="planted", source="memory", embeddings=emb, tokens=toks, raw_tokens=toks, excluded=mask,
                   tied=False, key=f"planted-{n_filler}-{seed}")
    ids = {t: i for i, t in enumerate(tokens)}
    return v, {"ids": ids, "fruit_ids": [ids[f"␣{w}"] for w in fruit_words], "fruit_c": fruit_c,
               "filler": filler, "fruit_words": fruit_words}


def _texts(rng, n, topic, extra, filler):
    out = []
    for _ in range(n):
        w = list(rng.choice(topic, 3)) + list(rng.choice(extra, 1)) + list(rng.choice(COMMON, 2)) + \
            list(rng.choice(filler, 2)) + ["the", "and"]
        rng.shuffle(w)
        out.append(" ".join(w).capitalize() + ".")
    return out


def planted_tasks(info, seed=0):
    rng = np.random.default_rng(seed)
    filler = info["filler"][:300]
    good = _texts(rng, 150, FRUIT, GOOD, filler)
    bad = _texts(rng, 150, FRUIT, BAD, filler)
    ex = [Example(t, 0) for t in good] + [Example(t, 1) for t in bad]
    fruit = Task(name="fruit", labels=("fresh", "spoiled"), label_words=("good", "bad"), train=tuple(ex),
                 validation=(), test=(), instruction="Say whether the fruit is good or bad.")
    tools = _texts(rng, 300, TOOLS, COMMON, filler)
    tool = Task(name="tools", labels=("a", "b"), label_words=("yes", "no"),
                train=tuple(Example(t, i % 2) for i, t in enumerate(tools)), validation=(), test=())
    return fruit, tool


class FakeText:
    """A stand-in for MiniLM: fruit-cluster words share a text direction, everything else is random; unknown
    texts (sentences) get the mean of their known words."""

    name = "fake-text"

    def __init__(self, vocab, info, d=12, seed=1):
        rng = np.random.default_rng(seed)
        fdir = normalize_rows(rng.normal(size=(1, d)))[0]
        self.table = normalize_rows(rng.normal(size=(vocab.size, d))).astype(np.float32)
        for i in info["fruit_ids"]:
            self.table[i] = normalize_rows((fdir + 0.3 * rng.normal(size=d))[None])[0]
        self.by_text = {}
        for i, t in enumerate(vocab.tokens):
            txt = readable_text(t)
            if not txt:
                self.table[i] = np.nan
            else:
                self.by_text.setdefault(txt.lower(), self.table[i])
        self.calls = 0

    def token_vectors(self, vocab, ids):
        self.calls += 1
        return self.table[np.asarray(ids, np.int64)]

    def embed(self, texts):
        out = []
        for t in texts:
            v = self.by_text.get(t.lower())
            if v is None:
                parts = [self.by_text[w] for w in R.words(t, stopwords=False) if w in self.by_text]
                v = normalize_rows(np.mean(parts, axis=0)[None])[0] if parts else np.zeros(self.table.shape[1])
            out.append(v)
        return np.asarray(out, np.float32)


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def world():
    v, info = planted_world()
    fruit, tool = planted_tasks(info)
    return v, info, fruit, tool, FakeText(v, info)


def run(world, vectors, **kw):
    v, info, fruit, tool, text = world
    kw.setdefault("n_null", 300)
    kw.setdefault("n_boot", 400)
    kw.setdefault("background_tasks", [tool])
    kw.setdefault("n_keywords", 8)
    kw.setdefault("n_class_keywords", 3)
    kw.setdefault("text_embedder", text)
    idx = kw.pop("index", None) or NeighborIndex(k=5).fit(v)
    return R.task_relatedness(vectors, v, idx, fruit, k=5, **kw)


def in_cluster(info, n=6, seed=5, scale=1.0):
    rng = np.random.default_rng(seed)
    return (scale * (info["fruit_c"] + 0.2 * normalize_rows(rng.normal(size=(n, D))))).astype(np.float32)


# -- words, keywords ----------------------------------------------------------------------------------

def test_words_and_word_index(world):
    v, info, *_ = world
    assert R.words("The Apple's really TASTY, isn't it? 42 x") == ["apple", "really", "tasty"]
    assert R.words("the and of", stopwords=False) == ["the", "and", "of"]
    wi = R.word_index(v)
    ids = info["ids"]
    assert wi["apple"][0] == ids["␣apple"]  # the spaced lowercase form first, then the other cases
    assert set(wi["apple"]) == {ids["␣apple"], ids["Apple"], ids["␣Apple"]}
    assert R.word_token_ids(v, " Apple ") == wi["apple"] and R.word_token_ids(v, "pear") == ()
    assert "ab1" not in wi and "" not in wi and "s" not in wi  # non-alphabetic and special rows are skipped


def test_log_odds_matches_monroe_formula():
    a, b = {"x": 10, "y": 2}, {"x": 1, "y": 12}
    got = R.log_odds_dirichlet(a, b, prior_scale=0.5)
    ya, yb, na, nb = 10, 1, 12, 13
    al, a0 = 0.5 * (10 + 1), 0.5 * 25
    d = np.log((ya + al) / (na + a0 - ya - al)) - np.log((yb + al) / (nb + a0 - yb - al))
    assert got["x"][0] == pytest.approx(d)
    assert got["x"][1] == pytest.approx(d / np.sqrt(1 / (ya + al) + 1 / (yb + al)))
    assert got["x"][1] > 0 > got["y"][1]
    with pytest.raises(AnalyzerError, match="prior_scale.*-1"):
        R.log_odds_dirichlet(a, b, prior_scale=-1)


def test_mine_keywords_returns_planted_words_first(world, tmp_path):
    v, info, fruit, tool, _ = world
    kws = R.mine_keywords(fruit, v, background=[tool], n=len(FRUIT), n_per_class=3)
    task_kw = [k["word"] for k in kws if k["source"] == "task"]
    assert set(task_kw) == set(FRUIT)  # the topic words beat the common words, the filler and "the"/"and"
    good = [k["word"] for k in kws if k["source"] == "class:fresh"]
    bad = [k["word"] for k in kws if k["source"] == "class:spoiled"]
    assert set(good) == set(GOOD) and set(bad) == set(BAD)
    k0 = kws[0]
    assert set(k0) >= {"word", "token", "token_id", "token_ids", "log_odds", "z", "count", "background_count",
                       "source"}
    assert k0["token"] == f"␣{k0['word']}" and v.tokens[k0["token_id"]] == k0["token"]
    assert all(a["z"] >= b["z"] for a, b in zip(kws[:len(FRUIT)], kws[1:len(FRUIT)]))
    # cached on disk: the second call reads the file and returns the same list
    files = list((tmp_path / "cache").rglob("keywords-*.json"))
    assert len(files) == 1
    again, meta = R._mine(fruit, v, background=[tool], n=len(FRUIT), n_per_class=3)
    assert again == kws and meta["cached"] and meta["background"] == ["tools"]
    # no background: no task keywords, class keywords still mined
    none, meta = R._mine(fruit, v, background=[], n=5, n_per_class=2)
    assert not [k for k in none if k["source"] == "task"] and "task_keywords_omitted" in meta
    with pytest.raises(AnalyzerError, match="'n' parameter.*-3"):
        R.mine_keywords(fruit, v, background=[tool], n=-3)


# -- the share of related neighbours ----------------------------------------------------------------------

def test_prompt_inside_the_task_cluster_is_significantly_related(world):
    v, info, *_ = world
    res = run(world, in_cluster(info))
    json.dumps(res)
    assert res["task"] == "fruit" and [w["word"] for w in res["label_words"]] == LABELS
    assert res["task_set"]["kinds"]["label"] == 2 and res["task_set"]["unmapped"] == []
    fruit_ids = set(info["fruit_ids"])
    for space in ("model_space", "text_space"):
        sec = res[space]
        share = sec["share"]
        assert share["value"] >= 0.8, space
        for null in ("random_vectors", "vocab_tokens"):      # references: shown with p, never claimed
            c = share["null"][null]
            assert c["p"] < 0.01 and c["z"] > 2 and not c["claim"] and not c["significant"], (space, null)
            assert set(c) >= {"value", "null_mean", "null_std", "z", "p", "n_null", "significant", "verdict"}
            assert c["null_mean"] < 0.5
        # against the matched null the share is described, not claimed (the claim is specificity); in this toy
        # world the only dense regions are the two clusters, so null queries matched on local density land in
        # the task cluster half of the time
        m = share["null"]["matched"]
        assert not m["claim"] and not m["significant"] and m["null_mean"] > 0.3 and "not a claim" in m["verdict"]
        for r in res["tests"]:         # each comparison shows its row's q and verdict (their one home)
            if (r["measure"], r["space"]) == ("task-related share", space.split("_")[0]):
                c = share["null"][r["null"]]
                assert (c["q"], c["verdict"], c["claim"], c["direction"]) == \
                    (r["q"], r["verdict"], r["claim"], r["direction"])
        assert [ln for ln in res["summary"] if "task-related share (" + space.replace("_", " ") in ln] == \
            [r["verdict"] for r in res["tests"] if (r["measure"], r["space"]) == ("task-related share",
                                                                                    space.split("_")[0])]
        assert share["null"]["init"] == {"omitted": "no initialisation token ids were given"}
        assert len(sec["per_token"]) == 6 and all(p["share"] >= 0.6 for p in sec["per_token"])
        top = sec["top_related"]
        assert top and all(t["token_id"] in fruit_ids for t in top)
        assert top[0]["count"] >= top[-1]["count"] and set(top[0]) >= {"token", "token_id", "score", "count"}
        assert sec["threshold"] is not None and 0.0 < sec["quantile"] < 1.0
    # cluster words that are in no text and no label are related by similarity, not by identity
    related = {t["token"] for t in res["model_space"]["top_related"]}
    assert related & {f"␣{w}" for w in CLUSTER_ONLY}
    claims = [r for r in res["tests"] if r["claim"]]
    assert [r["measure"] for r in claims] == ["task specificity"]            # the one claim about the task
    prof = res["specificity"]["profile"]
    assert prof["fruit"] >= 0.8 and prof["tools"] < 0.5
    assert res["specificity"]["other_tasks"] == sorted(["tools", "sentiment", "question-type", "spam"])


def test_random_vectors_sit_at_their_null(world):
    v, info, *_ = world
    rnd = M.random_vectors_like(in_cluster(info), 6, seed=123)  # another seed than the null pool's
    res = run(world, rnd)
    for space in ("model_space", "text_space"):
        for null in ("random_vectors", "vocab_tokens"):
            c = res[space]["share"]["null"][null]
            assert abs(c["z"]) < 3, (space, null)
    assert not any(r["significant"] for r in res["tests"])
    assert any("not distinguishable from chance" in s for s in res["summary"])


def test_related_is_not_trivially_true(world):
    v, info, *_ = world
    res = run(world, in_cluster(info))
    ms = res["model_space"]
    # only the task set and ~5% of the rest of the vocabulary count as related
    n_task = res["task_set"]["n_token_ids"]
    assert ms["vocab_related_rate"] <= 0.05 + n_task / v.n_included + 0.01
    assert ms["n_calibration"] == v.n_included - n_task
    assert res["text_space"]["n_calibration"] >= 250
    # a filler token's own neighbourhood is mostly unrelated
    far = np.asarray(v.embeddings[[info["ids"]["␣" + info["filler"][-1]]]], np.float32)
    assert run(world, far)["model_space"]["share"]["value"] <= 0.4


def test_init_null_is_paired(world):
    v, info, *_ = world
    # 12 positions: a paired sign-flip test over 6 cannot go below p = 2/64, which FDR then lifts over 0.05
    filler_ids = [info["ids"]["␣" + w] for w in info["filler"][-12:]]
    trained = SoftPrompt(name="p", vectors=in_cluster(info, n=12), source="m", kind="PROMPT_TUNING", init="RANDOM",
                         init_token_ids=tuple(filler_ids))
    res = run(world, trained)
    c = res["model_space"]["share"]["null"]["init"]
    assert c["significant"] and c["difference"] > 0.5 and "higher than at initialisation" in c["verdict"]
    at_init = SoftPrompt(name="q", vectors=np.asarray(v.embeddings[filler_ids], np.float32), source="m",
                         kind="PROMPT_TUNING", init="RANDOM", init_token_ids=tuple(filler_ids))
    c = run(world, at_init)["model_space"]["share"]["null"]["init"]
    assert not c["significant"] and c["difference"] == 0


def test_deterministic_and_baselines_can_be_shared(world):
    v, info, fruit, tool, text = world
    a, b = run(world, in_cluster(info)), run(world, in_cluster(info))
    a.pop("timings"), b.pop("timings")
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    idx = NeighborIndex(k=5).fit(v)
    B = M.build_baselines(in_cluster(info), v, idx, k=5, n_null=300, seed=0, n_boot=400)
    c = run(world, in_cluster(info), index=idx, baselines=B)
    c.pop("timings")
    assert json.dumps(c, sort_keys=True) == json.dumps(a, sort_keys=True)
    with pytest.raises(AnalyzerError, match="baselines were built for another prompt"):
        run(world, in_cluster(info, n=4), index=idx, baselines=B)


def test_options_text_off_cosine_and_description(world):
    v, info, *_ = world
    res = run(world, in_cluster(info), text_embedder=False, model_score="cosine", description="")
    assert res["text_space"] == {"omitted": "the text space was switched off (text_embedder=False)"}
    assert res["model_space"]["score"] == "cos(y, t)" and res["model_space"]["share"]["null"]["random_vectors"][
        "p"] < 0.01
    assert res["description"]["source"] == "none" and res["task_set"]["kinds"].get("description") is None
    res = run(world, in_cluster(info), text_embedder=False, description="Ripe kiwi and papaya are juicy.")
    assert {w["word"] for w in res["description"]["words"]} == {"kiwi", "papaya"}  # 'ripe', 'juicy' not tokens
    assert res["description"]["source"] == "given"


def test_unreadable_neighbours_are_left_out_of_the_text_share(world):
    v, info, *_ = world
    blank = np.asarray(v.embeddings[[info["ids"]["␣"]]], np.float32)  # its own top-1 has no readable text
    res = run(world, blank)
    pos = res["text_space"]["per_token"][0]
    assert pos["n_readable"] == 4 and res["text_space"]["n_unreadable_neighbors"] == 1
    assert res["model_space"]["per_token"][0]["n_readable"] == 5


def test_errors_name_the_problem(world):
    v, info, *_ = world
    with pytest.raises(AnalyzerError, match=re.escape("The 'quantile' parameter of task_relatedness must be a "
                                                      "finite number in [0.5, 1). Got 1.5 instead.")):
        run(world, in_cluster(info), quantile=1.5)
    with pytest.raises(AnalyzerError, match=re.escape("The 'model_score' parameter of task_relatedness must be one "
                                                      "of 'csls', 'cosine'. Got 'dot' instead.")):
        run(world, in_cluster(info), model_score="dot")
    with pytest.raises(AnalyzerError, match="The 'n_null_sub' parameter of task_relatedness must be an int >= 2. "
                                            "Got True instead."):
        run(world, in_cluster(info), n_null_sub=True)
    with pytest.raises(AnalyzerError, match="needs a task"):
        R.task_relatedness(in_cluster(info), v, NeighborIndex(k=5).fit(v), None)
    with pytest.raises(AnalyzerError, match="dim 7"):
        run(world, np.ones((2, 7), np.float32))
    with pytest.raises(AnalyzerError, match=r"The 'k' parameter of prepare_prompt must be an int in \[1, \d+\]\. "
                                            r"Got 0 instead\."):
        R.task_relatedness(in_cluster(info), v, NeighborIndex(k=5).fit(v), world[2], k=0, text_embedder=False)


# -- the real model ------------------------------------------------------------------------------------

@pytest.mark.integration
def test_smollm2_sentiment_label_words_are_related(smollm2_available, monkeypatch):
    from analyzer.loaders import load_vocabulary

    if REAL_CACHE:
        monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", REAL_CACHE)
    v = load_vocabulary("smollm2-135m")
    idx = NeighborIndex(k=10).fit(v)
    wi = R.word_index(v)
    words = ["positive", "negative", "good", "bad", "great", "terrible", "love", "boring"]
    ids = [wi[w][0] for w in words]
    assert [v.tokens[i] for i in ids[:2]] == ["␣positive", "␣negative"]
    labels = np.asarray(v.embeddings[ids], np.float32)
    res = R.task_relatedness(labels, v, idx, "sentiment", n_boot=500)
    json.dumps(res)
    kw = [k["word"] for k in res["keywords"] if k["source"] == "task"]
    assert {"film", "movie"} <= set(kw[:5])
    for space in ("model_space", "text_space"):
        share = res[space]["share"]
        assert share["value"] >= 0.5, space
        for null in ("random_vectors", "vocab_tokens"):
            assert share["null"][null]["p"] < 0.01, (space, null, share["null"][null]["verdict"])
        assert {"␣positive", "␣negative"} & {t["token"] for t in res[space]["top_related"]}
    # the claim: more related to sentiment than to the other tasks, beyond matched null queries (the share
    # itself is described beside it, higher than under the matched null)
    share = res["model_space"]["share"]["null"]["matched"]
    assert not share["claim"] and share["p"] < 0.01 and share["value"] > share["null_mean"]
    assert res["specificity"]["null"]["matched"]["significant"]
    prof = res["specificity"]["profile"]
    assert prof["sentiment"] > max(prof["spam"], prof["question-type"])
    assert any(s.startswith("Related to task 'sentiment': yes") for s in res["summary"])
    rnd = M.random_vectors_like(labels, 8, seed=99)
    res = R.task_relatedness(rnd, v, idx, "sentiment", n_boot=500)  # timed in bench_analysis.py
    assert not any(r["significant"] for r in res["tests"])
    assert any(s.startswith("Related to task 'sentiment': not claimed") for s in res["summary"])


@pytest.mark.integration
def test_smollm2_question_type_keywords_are_its_interrogatives(smollm2_available, monkeypatch, tmp_path):
    from analyzer.loaders import load_vocabulary

    if REAL_CACHE:
        monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", REAL_CACHE)
    v = load_vocabulary("smollm2-135m")
    kws = R.mine_keywords("question-type", v, cache=False)
    task_words = [k["word"] for k in kws if k["source"] == "task"]
    assert {"what", "who", "where", "how"} <= set(task_words[:8])  # the words that say what is asked
    first = {k["source"]: k["word"] for k in reversed(kws)}  # each class's most distinctive word
    assert first["class:HUM"] == "who" and first["class:LOC"] == "where"
    # the other tasks do not pick them up: the log-odds against the background keeps them out
    for other in ("sentiment", "spam"):
        other_words = {k["word"] for k in R.mine_keywords(other, v, cache=False) if k["source"] == "task"}
        assert not other_words & {"what", "who", "where", "when", "which", "why", "how"}, other
