"""The dashboard's entry script inside the package: ``streamlit run <this file>`` (what ``softprompt-analyzer app``
starts).  The page itself is :func:`analyzer.ui.page.render`."""

from analyzer.ui.page import render

render()
