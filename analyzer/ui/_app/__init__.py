"""The folder Streamlit runs the dashboard from: ``dashboard.py`` (the entry script) and, beside it,
``.streamlit/config.toml`` (the server settings, read by Streamlit as the script's own config and passed as flags
by :mod:`analyzer.ui.launch`).  Shipped in the wheel as package data; nothing here is imported."""
