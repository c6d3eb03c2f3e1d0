"""The sidebar: model, prompts (folder, trained in the app, a path, an upload), task, k and the score.

Widgets whose value defines a view are bound to the URL (``bind="query-params"``), so a view is a bookmark:
``?prompt=sentiment-labels&prompt=trec-text&k=8&metric=csls&section=Compare``.

On a server bound off loopback (without ``--allow-paths``) the typed inputs -- model name, prompt folder, a
prompt's path, a task file -- are off (:mod:`analyzer.ui._access`): the model is one of the embedded ones, the
folder the server's, the task a built-in one, and whatever the session holds for those inputs is ignored."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from ..exceptions import ShapeMismatchError
from . import _access, _sources, resources
from ._common import Selection, guard
from ._uploads import MAX_UPLOAD_MB, save_upload

METRICS = {"cosine": "cosine", "csls": "CSLS"}   # the display words are what the URL carries (metric=CSLS)


def _options(folder: str) -> dict[str, str]:
    opts = dict(_sources.discover(folder))
    opts.update(_sources.discover(_sources.runs_dir(), prefix="trained/"))
    opts.update(st.session_state.setdefault("extra_sources", {}))
    return opts


def _model_dim(model: str) -> int | None:
    """The width of ``model``'s embeddings (the registry's for an embedded model; else its vocabulary's), or None
    when it cannot be read here (the section that loads it shows why)."""
    from ..exceptions import AnalyzerError
    from ..models import EMBEDDED_MODELS

    if model in EMBEDDED_MODELS:
        return int(EMBEDDED_MODELS[model].dim)
    try:
        return int(resources.vocabulary(model).dim)
    except AnalyzerError:
        return None


def _prompt_width(path: str) -> int | None:
    """The width of the prompt(s) at ``path``, or None when they cannot be read (listed anyway: choosing one
    shows its error)."""
    from ..exceptions import AnalyzerError

    try:
        found = resources.prompts(path)
    except (AnalyzerError, OSError, ValueError):
        return None
    return int(found[0].dim) if found else None


def split_by_width(options: dict[str, str], dim: int | None) -> tuple[dict[str, str], dict[str, int]]:
    """``(listed, other)``: the prompts whose vectors fit a model ``dim`` wide (and those whose width is unknown),
    and ``{label: width}`` of the prompts trained for a model of another width (the samples hold SmolLM2, Gemma 3
    and Qwen prompts side by side)."""
    if dim is None:
        return dict(options), {}
    widths = {label: _prompt_width(path) for label, path in options.items()}
    other = {label: w for label, w in widths.items() if w is not None and w != dim}
    return {label: path for label, path in options.items() if label not in other}, other


def _add_source(label: str, path: str, *, only: bool = False) -> None:
    st.session_state.setdefault("extra_sources", {})[label] = path
    chosen = [] if only else list(st.session_state.get("prompt", []))
    if label not in chosen:
        st.session_state["prompt"] = chosen + [label]


def select_prompt(label: str, path: str, *, only: bool = False) -> None:
    """Add a prompt (e.g. one just trained) to the selection (``only``: make it the whole selection); call
    before the sidebar is drawn (a callback)."""
    _add_source(label, path, only=only)


def check_prompt_width(name: str, prompts, model: str, dim: int) -> None:
    """A ``ShapeMismatchError`` naming both widths when a prompt's vectors do not fit the model's embeddings."""
    for p in prompts:
        if p.dim != dim:
            raise ShapeMismatchError(
                f"{name!r} holds {p.num_virtual_tokens} vectors of width {p.dim}, but {model} embeds tokens in "
                f"{dim} dimensions. Upload a prompt trained for {model}, or choose its model first.")


def path_access() -> _access.PathAccess:
    """What this server lets its users type: its address from Streamlit's config, ``--allow-paths`` from the
    script's arguments or the environment."""
    import sys

    from streamlit import config

    return _access.path_access(config.get_option("server.address"),
                               allow_paths=_access.allow_paths_requested(sys.argv[1:]))


def _forget_unless(key: str, allowed) -> None:
    """Drop the session's value of the input ``key`` unless it is in ``allowed`` (a crafted client can send a
    value for a disabled widget, or one that is not among a select box's options)."""
    if key in st.session_state and st.session_state[key] not in allowed:
        del st.session_state[key]


def _model_input(sb, access: _access.PathAccess) -> str:
    default = _sources.default_model()
    if access.allowed:
        return sb.text_input("Model", value=default, key="model",
                             help="An embedded model (smollm2-135m, gemma3-270m), a Hugging Face model directory, "
                                  "or a .gguf file.").strip() or default
    from ..models import EMBEDDED_MODELS

    options = list(dict.fromkeys([default, *EMBEDDED_MODELS]))  # the server's default may be its own model
    _forget_unless("model", options)
    model = sb.selectbox("Model", options, key="model", help="An embedded model (typed model names are off).")
    return model if model in options else default


def _folder_input(sb, access: _access.PathAccess) -> str:
    if access.allowed:
        return sb.text_input("Prompt folder", value=_sources.default_prompts_dir(), key="prompt_folder",
                             help="PEFT adapter directories (and .safetensors/.npy tensors) in this folder are "
                                  "listed below.")
    folder = _sources.default_prompts_dir()
    _forget_unless("prompt_folder", ())
    sb.text_input("Prompt folder", value=folder, key="prompt_folder", disabled=True,
                  help="The server's prompt folder (set where it starts: --prompts-dir or "
                       "SOFTPROMPT_ANALYZER_PROMPTS).")
    return folder


# Streamlit caps a multiselect at ~4 rows of tags and scrolls the rest out of sight, and cuts a long tag with an
# ellipsis ("transfer-study/question-type-ran…"); the sidebar's prompt list grows instead and a long name wraps
# inside its tag (at "/" or "-" first), so every selected prompt's full name stays visible.
_SIDEBAR_CSS = ("<style>[data-testid='stSidebar'] [data-testid='stMultiSelect'] "
                "div:has(> [data-testid='stMultiSelectTagsContainer']) {max-height: none !important;} "
                "[data-testid='stSidebar'] [data-testid='stMultiSelectTagsContainer'] {overflow: visible !important;}"
                "[data-testid='stSidebar'] [data-testid='stMultiSelect'] [data-tag] "
                "{max-width: 100% !important; height: auto !important; min-height: 1.75rem;} "
                "[data-testid='stSidebar'] [data-testid='stMultiSelect'] [data-tag] > span[title] "
                "{white-space: normal !important; overflow: visible !important; text-overflow: clip !important; "
                "overflow-wrap: anywhere; line-height: 1.3; padding: 0.15rem 0;}"
                "</style>")


def sidebar() -> Selection:
    """Draw the sidebar and return the selection (prompt files are not read here)."""
    sb = st.sidebar
    st.html(_SIDEBAR_CSS)
    sb.header("Inputs")
    access = path_access()
    if not access.allowed:
        sb.info(access.reason, icon=":material/lock:")
    model = _model_input(sb, access)
    folder = _folder_input(sb, access)
    select_box = sb.container()
    with sb.expander("Add a prompt (path or upload)"):
        if not access.allowed:
            _forget_unless("add_path", ())
        path = st.text_input("Path to an adapter directory or tensor file", key="add_path",
                             disabled=not access.allowed)
        clicked = st.button("Add path", key="add_path_btn", disabled=not access.allowed)
        if access.allowed and clicked and path.strip():
            p = Path(path.strip()).expanduser()
            if p.exists():
                with guard("the path"):
                    check_prompt_width(p.name, resources.prompts(str(p)), model, resources.vocabulary(model).dim)
                    _add_source(f"path/{p.name}", str(p))
            else:
                st.error(f"No such file or directory: {path.strip()!r}")
        up = st.file_uploader("Upload a zipped PEFT adapter, .safetensors or .npy",
                              type=["zip", "safetensors", "npy"], key="upload", max_upload_size=MAX_UPLOAD_MB,
                              help=f"At most {MAX_UPLOAD_MB} MB. Pickles (.bin, .pt, .pkl) are refused.")
        st.caption(f"At most {MAX_UPLOAD_MB} MB per file: a larger file is refused before it is sent (the "
                   "uploader marks it red). Pickles (.bin, .pt, .pkl) are refused.")
        if up is not None and st.session_state.get("_last_upload") != up.file_id:
            with guard("the upload"):
                saved = save_upload(up.name, up.getvalue(), _sources.uploads_dir())
                # validate now, against the chosen model too: a bad file is reported here, once
                check_prompt_width(up.name, resources.prompts(str(saved)), model, resources.vocabulary(model).dim)
                _add_source(f"upload/{saved.name}", str(saved))
                st.session_state["_last_upload"] = up.file_id
                st.success(f"Added upload/{saved.name}")

    options, other = split_by_width(_options(folder), _model_dim(model))
    if "prompt" not in st.session_state:
        wanted = [s for s in (st.query_params.get_all("prompt") or _sources.default_selection()) if s in options]
        st.session_state["prompt"] = wanted or list(options)[:1]
    else:  # drop labels whose files are gone (a changed folder)
        st.session_state["prompt"] = [s for s in st.session_state["prompt"] if s in options]
    with select_box:
        if not options:
            st.warning(f"No prompts found in {folder!r}. Point the prompt folder at a directory of PEFT adapters, "
                       "add a path, upload one, or train one in the Train section.")
        labels = st.multiselect("Prompts", list(options), key="prompt", bind="query-params",
                                help="Virtual tokens of every selected prompt are drawn on the map, one colour each.")
        if other:
            shown = ", ".join(f"{label} ({w})" for label, w in list(other.items())[:3])
            more = f" and {len(other) - 3} more" if len(other) > 3 else ""
            st.caption(f"Not listed: {len(other)} prompt{'s' if len(other) > 1 else ''} of another width than "
                       f"{model}'s ({shown}{more}). Choose their model above to read them.")
    tasks = list(resources.task_names())
    guess = next((_sources.run_info(options[lab]).task for lab in labels if _sources.run_info(options[lab]).task),
                 None)
    # off loopback only built-in tasks: a prompt's training record (an upload's, too) may name a task file
    task_opts = tasks + ([guess] if access.allowed and guess and guess not in tasks else [])
    default_task = guess if guess in task_opts else (task_opts[0] if task_opts else None)
    if not access.allowed:
        _forget_unless("task", task_opts)
    task = sb.selectbox("Task (for relatedness and the model readings)", task_opts,
                        index=task_opts.index(default_task) if default_task in task_opts else 0,
                        key="task", accept_new_options=access.allowed,
                        help="A built-in task, or type a path to a CSV/JSONL file with text and label columns."
                        if access.allowed else "A built-in task (typed task files are off).")
    if not access.allowed and task not in task_opts:
        task = default_task
    k = sb.slider("Neighbours per virtual token (k)", 1, 20, 5, key="k", bind="query-params")
    metric = sb.radio("Neighbour score", list(METRICS), format_func=METRICS.get, key="metric", horizontal=True,
                      bind="query-params",
                      help="cosine: the raw cosine similarity. CSLS (cross-domain similarity local scaling, "
                           "Conneau et al. 2018): a hubness-corrected score, the cosine minus how close each side "
                           "is to its own neighbourhood, so hub tokens that are near everything rank lower "
                           "(scores can be negative).")
    sources = tuple((options[lab], _sources.stamp(options[lab])) for lab in labels)
    return Selection(model=model, labels=tuple(labels), sources=sources, k=int(k), metric=str(metric),
                     task=str(task) if task else None)
