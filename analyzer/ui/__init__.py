"""The Streamlit dashboard's building blocks -- the ONLY package of ``analyzer`` that imports streamlit.

* ``resources``  every ``st.cache_resource`` object (vocabulary, neighbour index, UMAP layout, whole-vocabulary
  map, frozen model, training runner), shared by all sessions;
* ``sidebar``    the inputs (model, prompts from a folder / a path / an upload / a training run, task, k, score);
* ``explore``, ``compare``, ``trajectory``, ``train``, ``export``: one function per section, each taking the
  sidebar's ``Selection``;
* ``_uploads``, ``_runner`` (and the run state of a folder: interrupted, resumable), ``_sources``, ``_access``
  (typed paths off loopback), ``_explore`` (Explore's linked views: isolation, search, names), ``_compare``
  (prompt-to-prompt similarity), ``_glossary`` (one-line help for every measure): the logic behind them, free of
  streamlit (unit-tested directly).

``page.render()`` lays these out (the whole page); Streamlit runs it from ``_app/dashboard.py`` inside the package
(``softprompt-analyzer app``, settings in ``_app/.streamlit/config.toml``) or from the repository's two-line
``app.py``.  Every computation is a public-API call."""

SECTIONS = ("Explore", "Compare", "Trajectory", "Train", "Export")
