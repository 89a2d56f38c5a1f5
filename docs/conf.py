project = "sarge"
copyright = "2026, the sarge developers"
extensions = ["sphinx.ext.autodoc"]
autodoc_member_order = "bysource"
exclude_patterns = ["_build"]
html_theme = "alabaster"
nitpicky = False
