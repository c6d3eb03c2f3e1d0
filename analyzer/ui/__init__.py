"""The Streamlit dashboard's building blocks -- the ONLY package of ``analyzer`` that imports streamlit.

* ``resources``  every ``st.cache_resource`` object (vocabulary, neighbour index, UMAP layout, frozen model,
  training runner), shared by all sessions;
* ``sidebar``    the inputs (model, prompts from a folder / a path / an upload / a training run, task, k, score);
* ``explore``, ``compare``, ``trajectory``, ``train``, ``export``: one function per section, each taking the
  sidebar's ``Selection``;
* ``_uploads``, ``_runner``, ``_sources``, ``_access`` (typed paths off loopback): the logic behind them, free of
  streamlit (unit-tested directly).

``page.render()`` lays these out (the whole page); Streamlit runs it from ``_app/dashboard.py`` inside the package
(``softprompt-analyzer app``, settings in ``_app/.streamlit/config.toml``) or from the repository's two-line
``app.py``.  Every computation is a public-API call."""

SECTIONS = ("Explore", "Compare", "Trajectory", "Train", "Export")
