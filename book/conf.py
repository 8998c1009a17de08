"""Sphinx + MyST-NB configuration of the course website (`make book`, scripts/build_book.py).

Built offline from the committed notebooks and their saved outputs: nothing is executed, the theme
is Sphinx's own (alabaster, installed with Sphinx), and MathJax comes from the PyPI package
jupyter-server-mathjax, copied into the site by scripts/build_book.py (no CDN).
"""
project = "Knowledge distillation, hands-on"
author = "kd-notebooks"
extensions = ["myst_nb"]
root_doc = "index"
exclude_patterns = ["_build", "_mathjax", "README.md", "**/.ipynb_checkpoints"]

# the committed outputs, as saved by `make notebooks`
nb_execution_mode = "off"
nb_render_markdown_format = "myst"  # text/markdown outputs hold tables (commonmark has none)
nb_ipywidgets_js = {}  # no widget manager from a CDN; the notebooks save static fallbacks
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
myst_update_mathjax = False  # its settings are MathJax 3's; the bundled MathJax is 2.7 (below)
suppress_warnings = ["myst.header", "mystnb.unknown_mime_type"]

# MathJax 2 from jupyter-server-mathjax, staged into _mathjax/mathjax/ (-> _static/mathjax/)
html_static_path = ["_mathjax"]
mathjax_path = "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full"
mathjax2_config = {"tex2jax": {"inlineMath": [["\\(", "\\)"]], "displayMath": [["\\[", "\\]"]],
                               "processRefs": False, "processEnvironments": False,
                               "processClass": "math|output_area"},
                   "HTML-CSS": {"availableFonts": ["STIX-Web"], "preferredFont": "STIX-Web",
                                "webFont": "STIX-Web", "imageFont": None}}

html_theme = "alabaster"
html_title = project
html_theme_options = {"description": "A Jupyter course on knowledge distillation, with kdlib", "show_powered_by": False,
                      "fixed_sidebar": True, "page_width": "1100px"}
html_sidebars = {"**": ["about.html", "navigation.html", "searchbox.html"]}
html_show_sourcelink = False
html_show_copyright = False
