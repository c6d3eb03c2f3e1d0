from analyzer.ui.page import render
render()
