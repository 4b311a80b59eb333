"""Sphinx configuration of sb3-iql's documentation (sb3-contrib's form; pages in MyST Markdown)."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "sb3-iql"
author = "sb3-iql developers"
extensions = ["myst_parser", "sphinx.ext.autodoc", "sphinx.ext.viewcode"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]
html_theme = "sphinx_rtd_theme"
myst_heading_anchors = 3
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": True}
# Pages moved from the README and the results files link to files of the repository (scripts, folders), which
# are not documents of this site; every other warning fails the build (sphinx-build -W).
suppress_warnings = ["myst.xref_missing"]
