"""Checks on the repository itself: README.md matches index.ipynb, and the docs preprocessing runs offline."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))
import docs_report, make_readme

def test_readme_matches_index():
    assert (ROOT / 'README.md').read_text(encoding='utf-8') == make_readme.readme(), \
        "README.md is out of date: run `python tools/make_readme.py` and commit it"

def test_docs_preprocessing():
    "`nbdev_proc_nbs` (what `nbdev_docs` runs before Quarto) processes every notebook, and every public method and "
    "`__call__` of `bx.*` reaches the docs through a show_doc."
    proc = docs_report.proc_nbs()  # raises with nbdev's output if a notebook fails or is not processed
    missing = docs_report.undocumented(proc)
    assert not missing, f"public methods that reach no page of the docs (add a show_doc cell): {missing}"
