"""Checks on the repository itself: README.md matches index.ipynb, and the docs preprocessing runs offline."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'tools'))
import docs_report, make_readme, render_pages

def test_readme_matches_index():
    assert (ROOT / 'README.md').read_text(encoding='utf-8') == make_readme.readme(), \
        "README.md is out of date: run `python tools/make_readme.py` and commit it"

def test_docs_preprocessing():
    "`nbdev_proc_nbs` (what `nbdev_docs` runs before Quarto) processes every notebook, and every public method and "
    "`__call__` of `bx.*` reaches the docs through a show_doc."
    proc = docs_report.proc_nbs()  # raises with nbdev's output if a notebook fails or is not processed
    missing = docs_report.undocumented(proc)
    assert not missing, f"public methods that reach no page of the docs (add a show_doc cell): {missing}"
    # What a reader sees (tools/render_pages.py, without its browser): every stored image reaches its page (an image
    # in a `#| hide` cell does not), and no page shows a traceback, an error output or ANSI escape codes.
    seen = [bad for nb in docs_report.notebooks() for bad in render_pages.problems(nb, proc / nb.name)]
    assert not seen, "pages that show a reader something wrong:\n" + '\n'.join(seen)

def test_no_name_defined_twice():
    "No module of the package defines a top-level function, class or variable twice: the later silently replaces the "
    "earlier for every caller (two notebook sections once both defined `_fingerprint` in training.py, and `batches` "
    "called the Checkpointer's). `@patch` methods are attached to their class, not to the module, so they are skipped."
    import ast
    twice = []
    for path in sorted((ROOT / 'blox').glob('*.py')):
        seen = {}
        for node in ast.parse(path.read_text(encoding='utf-8')).body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                if any('patch' in ast.unparse(d) for d in getattr(node, 'decorator_list', [])): continue
                names = [node.name]
            elif isinstance(node, ast.Assign): names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            else: continue
            for name in names:
                if name in seen and name != '__all__': twice.append(f"{path.name}: {name} (lines {seen[name]} and {node.lineno})")
                seen.setdefault(name, node.lineno)
    assert not twice, f"defined twice (rename one): {twice}"

def test_notebooks_open_on_a_tpu_runtime():
    "Colab reads a notebook's `accelerator` metadata: every page opens on a TPU runtime (nbdev_clean keeps the key)."
    import json
    cpu = [p.name for p in sorted((ROOT / 'nbs').glob('*.ipynb'))
           if json.loads(p.read_text(encoding='utf-8'))['metadata'].get('accelerator') != 'TPU']
    assert not cpu, f"notebooks that would open on a CPU runtime in Colab (set metadata accelerator: TPU): {cpu}"

def test_notebooks_show_their_device():
    "Every page that computes shows, right after its imports, which devices JAX found (in Colab: did the TPU runtime "
    "take?). benchmarks.ipynb only reads stored results, so it has no such cell."
    import json
    missing = [p.name for p in sorted((ROOT / 'nbs').glob('*.ipynb')) if p.name != 'benchmarks.ipynb' and not any(
        c['cell_type'] == 'code' and 'jax.device_count()' in ''.join(c['source']) and '#|' not in ''.join(c['source'])
        for c in json.loads(p.read_text(encoding='utf-8'))['cells'])]
    assert not missing, f"pages with no visible cell printing jax.device_count() and the device kind: {missing}"

def test_release_builds_what_ci_checks():
    "The release workflow builds and checks the distributions with .ci/dist, the script .ci/run runs on every push (a "
    "dry run of the release), and uploads only on a version tag."
    release = (ROOT / '.github/workflows/release.yaml').read_text()
    assert 'bash .ci/dist dist' in release and "if: startsWith(github.ref, 'refs/tags/v')" in release
    assert 'bash .ci/dist' in (ROOT / '.ci/run').read_text()
    assert 'include settings.ini' in (ROOT / 'MANIFEST.in').read_text()  # setup.py reads it when pip builds the sdist
