"""Execute notebooks and store their outputs, which are what the docs site shows (Quarto does not execute).

`python tools/run_nb.py nbs/03a_conv.ipynb [more ...]` runs each notebook in a fresh process on 8 emulated CPU devices
(`--devices N` to change), as a reader would (IN_TEST unset), skipping `#| eval: false` cells and the export cell,
writes the outputs back into the notebook and runs `nbdev_clean` on it. A failing cell aborts that notebook and leaves
the file untouched. Stored warnings (stderr) are reported, since the docs should not show them."""
import json, os, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RUN_ONE = r'''
import sys
from pathlib import Path
from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from fastcore.xtras import working_directory

def skip(cell):
    if cell.cell_type != 'code': return True
    if 'nbdev_export' + '(' in cell.source: return True
    directives = getattr(cell, 'directives_', {}) or {}
    return directives.get('eval:', [''])[0].lower() == 'false'

sys.path.insert(0, sys.argv[2])  # this checkout's blox, not whichever one is installed
src = Path(sys.argv[1]).resolve()
nb = read_nb(src)
for cell in nb.cells:  # what nbdev's processors do first: parse `#|` directives
    if cell.cell_type == 'code':
        cell.directives_ = {line[3:].split()[0]: line[3:].split()[1:] for line in cell.source.splitlines()
                            if line.startswith('#| ') and line[3:].split()}
shell = CaptureShell(src)
with working_directory(src.parent):
    try: shell.run_all(nb, exc_stop=True, preproc=skip)
    except Exception:
        sys.stderr.write(shell.prettytb(fname=src) + '\n')
        sys.exit(1)
for cell in nb.cells:
    if hasattr(cell, 'directives_'): del cell['directives_']
write_nb(nb, src)
'''

def run(nb: Path, devices: int) -> bool:
    env = {k: v for k, v in os.environ.items() if k != 'IN_TEST'}
    env['XLA_FLAGS'] = f"{env.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count={devices}".strip()
    r = subprocess.run([sys.executable, '-c', RUN_ONE, str(nb), str(ROOT)], cwd=ROOT, env=env, text=True, capture_output=True)
    if r.returncode:
        print(f"FAILED {nb}:\n{r.stderr[-6000:]}", file=sys.stderr)
        return False
    subprocess.run([str(Path(sys.executable).parent / 'nbdev_clean'), '--fname', str(nb)], cwd=ROOT, check=True)
    cells = json.loads(nb.read_text(encoding='utf-8'))['cells']
    warned = [i for i, c in enumerate(cells) for o in c.get('outputs', []) if o.get('name') == 'stderr']
    size = nb.stat().st_size
    print(f"ran {nb.name}: {size / 1024:.0f} KiB" + (f"; stderr stored in cells {warned}" if warned else ''))
    return True

if __name__ == '__main__':
    args = sys.argv[1:]
    devices = 8
    if '--devices' in args:
        i = args.index('--devices'); devices = int(args[i + 1]); del args[i:i + 2]
    ok = all([run(Path(a).resolve(), devices) for a in args])
    sys.exit(0 if ok else 1)
