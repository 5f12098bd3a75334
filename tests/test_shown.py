"""What the docs site shows runs as shown: each page's shown code cells (tools/shown.py: not `export`, `exporti`,
`hide`, `default_exp`, `echo: false`, `include: false` or show_doc), in order, in a fresh process against the installed
package, on 1 device, as a reader who copies them would run them. A page whose shown code uses a name only a hidden
cell defines or imports fails here with the `NameError`, naming the notebook and the cell.

pytest-xdist runs the notebooks in parallel with the other notebook tests. BLOX_SHOWN=0 skips them (.ci/run runs them
once, in the newest-jax step, not in the main one); BLOX_NB_TIMEOUT caps a notebook as in tests/test_notebooks.py."""
import os, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools import shown  # noqa: E402
from test_notebooks import TIMEOUT, notebook_env  # noqa: E402

NBS = shown.notebooks()
OFF = os.environ.get('BLOX_SHOWN', '1') == '0'

@pytest.mark.skipif(OFF, reason='BLOX_SHOWN=0: the shown-code run is done elsewhere (.ci/run: the newest-jax step)')
@pytest.mark.parametrize('nb', NBS, ids=[p.name for p in NBS])
def test_shown_code_runs(nb):
    try: r = shown.run(nb, shown.skip_flags(), env=notebook_env(1), timeout=TIMEOUT)
    except Exception as e:  # subprocess.TimeoutExpired
        pytest.fail(f"{nb.name}: its shown cells ran past {TIMEOUT}s: {e}")
    assert r.returncode == 0, (f"{nb.name}: the code the site shows fails when run as shown (in order, fresh process, "
                               f"the package imported, hidden cells skipped):\n{r.stdout[-2000:]}\n{r.stderr[-6000:]}")
