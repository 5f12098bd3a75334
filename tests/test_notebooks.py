"""Every notebook under nbs/ is a test: run each as `nbdev_test` would, in a fresh process, once on a single device and
once on 8 emulated CPU devices.

One device is a laptop, one GPU or a one-chip Colab TPU; 8 is a TPU host or a multi-GPU machine. A fresh process per
notebook keeps global JAX state (config flags, device count) from leaking between notebooks; pytest-xdist runs them in
parallel. BLOX_TEST_FLAGS forces flagged cells (e.g. "slow"); BLOX_NB_TIMEOUT caps a notebook; BLOX_DEVICES picks
the device counts (e.g. "8"); BLOX_NOTEBOOKS picks notebooks by stem (e.g. "05_scale 15_scaling")."""
import os, re, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
ALL = sorted(p for p in (ROOT / 'nbs').rglob('*.ipynb')
             if not any(part.startswith(('_', '.')) for part in p.relative_to(ROOT / 'nbs').parts))
NBS = ALL
if os.environ.get('BLOX_NOTEBOOKS'):  # a subset by stem, e.g. "05_scale 15_scaling" (.ci/run's newest-jax step)
    _want = os.environ['BLOX_NOTEBOOKS'].split()
    _missing = set(_want) - {p.stem for p in ALL}
    if _missing: raise ValueError(f'BLOX_NOTEBOOKS names notebooks that do not exist: {sorted(_missing)}')
    NBS = [p for p in NBS if p.stem in _want]
TIMEOUT = int(os.environ.get('BLOX_NB_TIMEOUT', '900'))
DEVICES = [int(n) for n in os.environ.get('BLOX_DEVICES', '1 8').split()]

RUN_ONE = '''
import sys
from pathlib import Path
from nbdev.config import get_config
from nbdev import test
cfg = get_config()
ok, _ = test.test_nb(Path(sys.argv[1]), skip_flags=cfg.tst_flags.split(), force_flags=sys.argv[2].split(),
                     basepath=cfg.config_path)
sys.exit(0 if ok else 1)
'''

def notebook_env(devices: int) -> dict:
    flags = re.sub(r'--xla_force_host_platform_device_count=\d+', '', os.environ.get('XLA_FLAGS', ''))
    flags += f' --xla_force_host_platform_device_count={devices}'
    # Emulated devices are threads on the host's cores. XLA aborts the process when a collective waits 40 s for one
    # of them, which a loaded 2-core CI machine once exceeded in 15_scaling (an all-gather that 3 of 4 threads
    # reached): give slow threads time, since a real hang still ends at the notebook's timeout.
    if '--xla_cpu_collective_call_terminate_timeout_seconds' not in flags:
        flags += ' --xla_cpu_collective_call_terminate_timeout_seconds=600'
    return {**os.environ, 'XLA_FLAGS': flags.strip(), 'IN_TEST': '1', 'PYTHONUNBUFFERED': '1'}

def test_notebooks_found():
    names = {p.name for p in ALL}
    assert {'index.ipynb', '00_rng.ipynb', '01_params.ipynb', '02_graph.ipynb'} <= names, names

@pytest.mark.parametrize('devices', DEVICES, ids=[f'{n}dev' for n in DEVICES])
@pytest.mark.parametrize('nb', NBS, ids=[str(p.relative_to(ROOT / 'nbs')) for p in NBS])
def test_notebook(nb, devices):
    try:
        r = subprocess.run([sys.executable, '-c', RUN_ONE, str(nb), os.environ.get('BLOX_TEST_FLAGS', '')],
                           cwd=ROOT, env=notebook_env(devices), capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{nb.name} on {devices} device(s) ran past {TIMEOUT}s\n{(e.stderr or b'')[-8000:]}")
    assert r.returncode == 0, f"{nb.name} failed on {devices} device(s):\n{r.stdout[-4000:]}\n{r.stderr[-16000:]}"
