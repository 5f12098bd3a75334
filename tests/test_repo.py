"""Checks on the repository itself: README.md matches index.ipynb, and the docs preprocessing runs offline."""
import os, stat, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))
import make_readme

def test_readme_matches_index():
    assert (ROOT / 'README.md').read_text(encoding='utf-8') == make_readme.readme(), \
        "README.md is out of date: run `python tools/make_readme.py` and commit it"

def test_docs_preprocessing(tmp_path):
    "`nbdev_proc_nbs` (what `nbdev_docs` runs before Quarto) must succeed: it executes show_doc and import cells."
    stub = tmp_path / 'quarto'  # Quarto cannot be installed here; nbdev only asks it for its version first
    stub.write_text('#!/bin/sh\necho 1.6.0\nexit 0\n')
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, 'PATH': f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    bindir = Path(sys.executable).parent
    r = subprocess.run([str(bindir / 'nbdev_proc_nbs')], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-8000:]
    processed = {p.name for p in (ROOT / '_proc').rglob('*.ipynb')}
    assert {'index.ipynb', '00_rng.ipynb', '02_graph.ipynb'} <= processed, processed
