"""Run the notebooks in a replica of Colab's TPU runtime, installing blox through each notebook's own install cell.

Colab snapshot (what "Colab as it ships" means here):
    repository googlecolab/backend-info, commit a72407924822ea377410b69f0a290150bcb5c9c2
    (2026-08-19, "Upgrade to Python 3.13"), file pip-freeze.tpu.txt (git blob 4a66698c14e13b877e8482f0540ee1bbc06c0ce2),
    copied to tools/colab/pip-freeze.tpu.txt and checked against that blob hash on every run.

The replica is a Python 3.13 venv holding, at the snapshot's exact versions, the packages Colab preinstalls that blox,
its notebook extra and the notebook runner touch (their dependencies are pinned to the snapshot wherever it lists them).
`libtpu` is left out (there is no TPU here): jax/jaxlib are the snapshot's versions, CPU only.

Then it builds blox's wheel from this checkout and, for each notebook, in a fresh process of the replica's Python:
copies the notebook to a temporary directory outside the checkout, imports a stub `google.colab`, runs the notebook's
install cell as Colab would (its own pip command, pointed at the wheel by `BLOX_PIP_SOURCE`), checks that the cell
changed none of Colab's preinstalled packages (and prints what it added), runs the other cells as `nbdev_test` does
(same skip flags, `IN_TEST=1`), and checks that `blox` came from the venv's site-packages and from this wheel.
Exits non-zero on any failure, and if no notebook ran.

What differs from Colab, knowingly: notebooks that import torch or transformers are skipped (Colab installs torch from
download.pytorch.org, which these machines cannot reach; the main CI step runs them), no TPU (jax runs on CPU devices;
`--devices 8` emulates a TPU host's 8), only the
packages above (not all ~320 of the snapshot's), jedi removed as in Colab's image, a stub `google.colab` (with the
`output` module jax's debugger imports), and cells run by the nbdev the install cell installed (its `test_nb`, in
`__main__` as in a kernel) rather than by a browser. benchmarks.ipynb reads repository files its Colab-only clone
cell would fetch: the checkout's benchmarks/ is copied next to it instead.

    python tools/colab_replica.py --venv DIR [--devices N] [--jobs 2] [notebooks...]
    python tools/colab_replica.py --venv DIR --prepare      (only build the venv)

The venv is reused while the snapshot and its package list are unchanged (delete DIR to rebuild: ~2 minutes, needs
PyPI); Python 3.13 comes from `--python` (default python3.13; PYENV_VERSION defaults to 3.13.0 for pyenv shims).
"""
from __future__ import annotations
import argparse, concurrent.futures, configparser, hashlib, json, os, re, shutil, subprocess, sys, tempfile, time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOT = {'repository': 'googlecolab/backend-info', 'commit': 'a72407924822ea377410b69f0a290150bcb5c9c2',
            'date': '2026-08-19', 'file': 'pip-freeze.tpu.txt', 'blob': '4a66698c14e13b877e8482f0540ee1bbc06c0ce2'}
FREEZE = ROOT / 'tools' / 'colab' / 'pip-freeze.tpu.txt'
PYTHON = '3.13'  # the snapshot's os-info-tpu.txt: Python 3.13.15
NO_TPU = {'libtpu'}  # not installable without a TPU; jax runs on CPU here
# Preinstalled in Colab and needed beyond blox's requirements and extras: fastcore (fastcore.test), the kernel's IPython,
# and what the packages the install cell adds (nbdev, ghapi, ...) depend on, so pip finds them at Colab's versions.
RUNNER_NEEDS = ['fastcore', 'ipython', 'ipykernel', 'packaging', 'PyYAML', 'setuptools', 'six',
                'anyio', 'h11', 'httpcore2', 'httpx2', 'idna', 'truststore']


def norm(name): return re.sub(r'[-_.]+', '-', name).lower()


def read_freeze(text):
    "`{normalised name: version}` of a `pip freeze` text (`name @ url` lines: the url)."
    pins = {}
    for line in text.splitlines():
        m = re.match(r'^([A-Za-z0-9][A-Za-z0-9._-]*)(==| @ )(\S+)$', line.strip())
        if m: pins[norm(m[1])] = m[3] if m[2] == '==' else '@ ' + m[3]
    return pins


def snapshot_pins():
    data = FREEZE.read_bytes()
    blob = hashlib.sha1(b'blob %d\0' % len(data) + data).hexdigest()
    if blob != SNAPSHOT['blob']: sys.exit(f'{FREEZE} is not the snapshot file (git blob {blob}, expected {SNAPSHOT["blob"]})')
    return read_freeze(data.decode())


def settings():
    cfg = configparser.ConfigParser(delimiters=['=']); cfg.read(ROOT / 'settings.ini', encoding='utf-8')
    return cfg['DEFAULT']


def requirement_names(cfg):
    "Names of blox's runtime requirements and of the extras a Colab reader installs (demo, notebooks)."
    reqs = ' '.join(cfg.get(k, '') for k in ('requirements', 'demo_requirements', 'notebook_requirements')).split()
    return [norm(re.match(r'[A-Za-z0-9._-]+', r)[0]) for r in reqs]


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode: sys.exit(f'$ {" ".join(map(str, cmd))}\n{r.stdout[-4000:]}{r.stderr[-4000:]}\nfailed ({r.returncode})')
    return r.stdout


def venv_python(venv): return Path(venv) / 'bin' / 'python'


def freeze(venv):
    return read_freeze(run([venv_python(venv), '-m', 'pip', 'freeze', '--all', '--disable-pip-version-check']))


def build_venv(venv, pins, roots, python):
    "Create the replica: Colab's pip, then `roots` at the snapshot's versions, every dependency constrained to it."
    stamp = Path(venv) / 'colab_replica.json'
    want = {'snapshot': SNAPSHOT, 'roots': roots}
    if stamp.exists() and json.loads(stamp.read_text()).get('want') == want:
        print(f'replica: reusing {venv}'); return json.loads(stamp.read_text())['baseline']
    if Path(venv).exists(): shutil.rmtree(venv)
    t = time.time()
    env = {**os.environ, 'PYENV_VERSION': os.environ.get('PYENV_VERSION', '3.13.0')}  # pyenv shims (these machines)
    run([python, '-m', 'venv', venv], env=env)
    py = venv_python(venv)
    version = run([py, '-c', 'import sys; print("%d.%d" % sys.version_info[:2])']).strip()
    if version != PYTHON: sys.exit(f'{python} is Python {version}; Colab runs {PYTHON}: pass --python')
    constraints = Path(venv) / 'colab-constraints.txt'
    constraints.write_text(''.join(f'{n}=={v}\n' for n, v in sorted(pins.items()) if n not in NO_TPU and '@' not in v))
    pip = [py, '-m', 'pip', '--disable-pip-version-check']
    run(pip + ['install', '-q', f'pip=={pins["pip"]}'])
    run(pip + ['install', '-q', '-c', constraints] + [f'{n}=={pins[n]}' for n in roots])
    extra = sorted(n for n in freeze(venv) if n not in pins)
    if extra:  # e.g. jedi: IPython requires it, Colab's image does not have it
        run(pip + ['uninstall', '-y', '-q'] + extra)
        print(f'replica: removed {extra}: dependencies Colab does not have')
    baseline = freeze(venv)
    wrong = {n: v for n, v in baseline.items() if n in pins and pins[n] != v}
    if wrong: sys.exit(f'replica differs from the snapshot: {wrong}')
    stamp.write_text(json.dumps({'want': want, 'baseline': baseline}, indent=1))
    print(f'replica: built {venv} in {time.time() - t:.0f} s: {len(baseline)} packages')
    return baseline


def restore(venv, baseline):
    "Uninstall what earlier runs' install cells added, so the first notebook installs into Colab's state."
    now = freeze(venv)
    added = sorted(n for n in now if n not in baseline)
    if added: run([venv_python(venv), '-m', 'pip', 'uninstall', '-y', '-q'] + added)
    changed = {n: (baseline[n], now.get(n)) for n in baseline if now.get(n) != baseline[n]}
    if changed:  # an earlier run's install cell changed Colab's packages (and failed for it): put them back
        print(f'replica: restoring {changed}')
        run([venv_python(venv), '-m', 'pip', 'install', '-q', '--no-deps'] + [f'{n}=={baseline[n]}' for n in changed])
        if freeze(venv) != baseline: sys.exit(f'could not restore the replica venv: delete {venv} to rebuild it')


def build_wheel(venv, out):
    "blox's wheel from the checkout's tracked and untracked-but-not-ignored files (no stale build/ directory)."
    src = Path(out) / 'src'
    files = run(['git', 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], cwd=ROOT).split('\0')
    for f in filter(None, files):
        if Path(venv).resolve() in (ROOT / f).resolve().parents: continue  # a --venv inside the checkout
        if (ROOT / f).is_file(): (src / f).parent.mkdir(parents=True, exist_ok=True); shutil.copy2(ROOT / f, src / f)
    run([venv_python(venv), '-m', 'pip', 'wheel', '-q', '--no-deps', '--no-build-isolation', '-w', out, src])
    (wheel,) = Path(out).glob('*.whl')
    return wheel


STUB_OUTPUT = '''"A stub of `google.colab.output`: what jax's Colab debugger imports; nothing is displayed."
import contextlib
@contextlib.contextmanager
def use_tags(tags): yield
@contextlib.contextmanager
def redirect_to_element(selector): yield
def clear(wait=False, output_tags=()): pass
def eval_js(script, ignore_result=False, timeout_sec=None): return None
def register_callback(name, callback): pass
'''

RUNNER = r'''
import fcntl, json, os, re, subprocess, sys, time, traceback
from pathlib import Path
nb, lock, baseline, snapshot, skip_flags = sys.argv[1], sys.argv[2], json.loads(Path(sys.argv[3]).read_text()), json.loads(Path(sys.argv[4]).read_text()), sys.argv[5].split()
import google.colab  # the stub: the install cell sees Colab

def norm(name): return re.sub(r'[-_.]+', '-', name).lower()
def freeze():
    out = subprocess.run([sys.executable, '-m', 'pip', 'freeze', '--all', '--disable-pip-version-check'], capture_output=True, text=True, check=True).stdout
    return {norm(m[1]): m[3] if m[2] == '==' else '@ ' + m[3] for m in (re.match(r'^([A-Za-z0-9][A-Za-z0-9._-]*)(==| @ )(\S+)$', l.strip()) for l in out.splitlines()) if m}

cells = json.loads(Path(nb).read_text())['cells']
install = [''.join(c['source']) for c in cells if c['cell_type'] == 'code' and 'google.colab' in ''.join(c['source'])
           and re.search(r'^#\|\s*eval:\s*false', ''.join(c['source']), re.M) and 'pip' in ''.join(c['source'])]
if len(install) != 1: sys.exit(f'FAIL: expected one Colab install cell, found {len(install)}')
with open(lock, 'w') as f:  # one install at a time: notebooks run in parallel and share the venv
    fcntl.flock(f, fcntl.LOCK_EX)
    t = time.time()
    exec(compile(install[0], f'{nb}: install cell', 'exec'), {'__name__': '__main__'})
    after = freeze()
print(f'install cell: {time.time() - t:.1f} s')
changed = {n: f'{v} -> {after.get(n)}' for n, v in baseline.items() if after.get(n) != v}
changed.update({n: f'{snapshot[n]} -> {v}' for n, v in after.items() if n not in baseline and n in snapshot and snapshot[n] != v})
added = {n: v for n, v in after.items() if n not in baseline}
print('install cell added: ' + (', '.join((f'{n} {v}' if v.startswith('@') else f'{n}=={v}') + (' (as in Colab)' if snapshot.get(n) == v else '') for n, v in sorted(added.items())) or 'nothing'))
if changed: sys.exit(f'FAIL: the install cell changed Colab packages: {changed}')

import importlib; importlib.invalidate_caches()
from nbdev.test import test_nb
import execnb.shell
_init = execnb.shell.CaptureShell.__init__
def _init_main(self, *args, **kwargs):  # cells run in `__main__`, as in Colab's kernel (pickle finds their functions)
    _init(self, *args, **kwargs); sys.modules['__main__'] = self.user_module
execnb.shell.CaptureShell.__init__ = _init_main
ok, secs = test_nb(Path(nb).resolve(), skip_flags=skip_flags, force_flags=[])
if not ok: sys.exit('FAIL: a cell raised (traceback above)')
import blox, sysconfig
site = Path(sysconfig.get_paths()['purelib']).resolve()
where = Path(blox.__file__).resolve()
if site not in where.parents: sys.exit(f'FAIL: blox was imported from {where}, not from {site}')
from importlib.metadata import distribution
url = json.loads(distribution('jax-blox').read_text('direct_url.json') or '{}').get('url', '')
if url != os.environ['BLOX_PIP_SOURCE']: sys.exit(f'FAIL: installed jax-blox came from {url!r}, not {os.environ["BLOX_PIP_SOURCE"]}')
import jax
print(f'ok: blox {blox.__version__} from {where.parent}, jax {jax.__version__} on {jax.device_count()} {jax.default_backend()} device(s)')
'''


def install_cell(nb):
    "The notebook's Colab install cell: hidden, `#| eval: false`, guarded by google.colab, runs pip."
    cells = [''.join(c['source']) for c in json.loads(Path(nb).read_text())['cells'] if c['cell_type'] == 'code']
    found = [c for c in cells if 'google.colab' in c and 'pip' in c and re.search(r'^#\|\s*eval:\s*false', c, re.M)]
    return found[0] if len(found) == 1 else None


def check_install_cells(cfg):
    "Every notebook has one install cell, the same text everywhere, whose jax floor is settings.ini's."
    cells = {nb.name: install_cell(nb) for nb in sorted((ROOT / 'nbs').glob('*.ipynb')) if not nb.name.startswith('_')}
    if None in cells.values(): sys.exit(f'no single install cell in {[n for n, c in cells.items() if c is None]}')
    if len(set(cells.values())) > 1: sys.exit('the install cells differ: ' + ', '.join(
        f'{n}' for n, c in cells.items() if c != max(set(cells.values()), key=list(cells.values()).count)))
    floor = re.search(r"^\s*floor = '([^']+)'", next(iter(cells.values())), re.M)
    want = re.search(r'(?:^|\s)jax>=(\S+)', cfg['requirements'])
    if not (floor and want and floor[1] == want[1]):
        sys.exit(f'the install cell\'s jax floor ({floor and floor[1]}) is not settings.ini\'s ({want and want[1]})')
    return floor[1]


def needs_torch(nb: Path) -> bool:
    "Does a code cell import torch or transformers (Colab preinstalls both, from a wheel index this machine cannot reach)?"
    cells = json.loads(nb.read_text())['cells']
    return any(re.search(r'^\s*(?:import|from)\s+(?:torch|transformers)\b', ''.join(c['source']), re.M)
               for c in cells if c['cell_type'] == 'code')


def notebook_env(venv, devices, wheel, stub):
    env = {k: v for k, v in os.environ.items() if k not in ('PYTHONPATH', 'PYTHONHOME', 'VIRTUAL_ENV', 'XLA_FLAGS')}
    env.update(PYTHONPATH=str(stub), IN_TEST='1', PYTHONUNBUFFERED='1', BLOX_PIP_SOURCE=wheel.as_uri(),
               VIRTUAL_ENV=str(venv), PATH=f'{Path(venv) / "bin"}{os.pathsep}{env.get("PATH", "")}')
    if devices > 1: env['XLA_FLAGS'] = f'--xla_force_host_platform_device_count={devices}'
    return env


def run_notebook(nb, args, work, wheel, stub, files, skip_flags):
    "Run one notebook in its own directory and process; returns (name, ok, seconds, log)."
    d = Path(work) / nb.stem / 'nbs'; shutil.rmtree(d.parent, ignore_errors=True); d.mkdir(parents=True)
    shutil.copy2(nb, d / nb.name)
    if "'../benchmarks/" in nb.read_text():  # the files its Colab-only clone cell fetches (the package does not ship them)
        shutil.copytree(ROOT / 'benchmarks', d.parent / 'benchmarks')
    t = time.time()
    try:
        r = subprocess.run([venv_python(args.venv), files['runner'], d / nb.name, files['lock'], files['baseline'],
                            files['snapshot'], ' '.join(skip_flags)], cwd=d, capture_output=True, text=True,
                           env=notebook_env(args.venv, args.devices, wheel, stub), timeout=args.timeout)
        ok, log = r.returncode == 0, r.stdout + r.stderr
    except subprocess.TimeoutExpired as e:
        ok, log = False, f'{e.stdout or ""}{e.stderr or ""}\nFAIL: timed out after {args.timeout} s'
    return nb.name, ok, time.time() - t, log


# jaxlib 0.7.2's XLA:CPU can starve its own thread pool with collectives on emulated devices: some devices' threads all
# wait in a rendezvous while the others get no thread, and after a hard-coded 10 s it aborts the process ("Termination
# timeout for `all reduce RendezvousKey{...}` ... Exiting to ensure a consistent program state"). It is timing-dependent
# (1 run in 4 of 15_scaling on 8 devices on a busy 2-core machine, none in 3 on a quiet one; tests/test_notebooks.py
# once met the same with jaxlib 0.10's 40 s, and raises it there with a flag that 0.7.2 does not parse). A notebook that dies of exactly that
# runs once more, and the report says so; any other failure, or the same one twice, fails.
XLA_CPU_RENDEZVOUS_ABORT = re.compile(r'Termination timeout for `[^`]*RendezvousKey\{[^`]*` of \d+ seconds exceeded')


def run_notebook_once_more_on_rendezvous_abort(nb, *args):
    name, ok, secs, log = run_notebook(nb, *args)
    if ok or not XLA_CPU_RENDEZVOUS_ABORT.search(log): return name, ok, secs, log
    print(f'RETRY {name}: XLA:CPU aborted on a collective rendezvous timeout (jaxlib 0.7.2, emulated devices); '
          f'running it once more', flush=True)
    name, ok, more, log = run_notebook(nb, *args)
    return name, ok, secs + more, log


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--venv', required=True, help='replica venv (built if missing or stale, else reused)')
    p.add_argument('--devices', type=int, default=1, help='emulated CPU devices (1 = a one-chip TPU runtime)')
    p.add_argument('--jobs', type=int, default=2, help='notebooks run at once')
    p.add_argument('--timeout', type=int, default=900, help='seconds per notebook')
    p.add_argument('--python', default=f'python{PYTHON}', help=f'a Python {PYTHON} to build the venv with')
    p.add_argument('--prepare', action='store_true', help='only build (or restore) the venv, e.g. while other work runs')
    p.add_argument('notebooks', nargs='*', help='default: every nbs/*.ipynb not starting with _')
    args = p.parse_args()
    args.venv = Path(args.venv).resolve()
    print(f'Colab snapshot: github.com/{SNAPSHOT["repository"]} commit {SNAPSHOT["commit"]} ({SNAPSHOT["date"]}), '
          f'{SNAPSHOT["file"]} (blob {SNAPSHOT["blob"]}) = {FREEZE.relative_to(ROOT)}')
    pins, cfg = snapshot_pins(), settings()
    print(f'install cells: identical in every notebook, jax floor {check_install_cells(cfg)} = settings.ini')
    roots = sorted({n for n in requirement_names(cfg) + [norm(n) for n in RUNNER_NEEDS] + ['jaxlib'] if n in pins})
    baseline = build_venv(args.venv, pins, roots, args.python)
    print('replica: ' + ', '.join(f'{n}=={baseline[n]}' for n in roots))
    restore(args.venv, baseline)
    if args.prepare: return
    nbs = [Path(n).resolve() for n in args.notebooks] or sorted(n for n in (ROOT / 'nbs').glob('*.ipynb') if not n.name.startswith('_'))
    for nb in [nb for nb in nbs if needs_torch(nb)]:
        print(f'SKIP {nb.name}: it imports torch, which Colab installs from download.pytorch.org (not reachable here); '
              f'the main CI step runs it with the dev extra\'s torch')
        nbs.remove(nb)
    if not nbs: sys.exit('no notebooks to run')
    with tempfile.TemporaryDirectory(prefix='colab-replica-') as work:
        work = Path(work)
        wheel = build_wheel(args.venv, work / 'wheel')
        print(f'wheel: {wheel.name}; notebooks run in {work}, {args.devices} device(s), {args.jobs} at a time')
        stub = work / 'stub' / 'google' / 'colab'; stub.mkdir(parents=True)
        (stub / '__init__.py').write_text('"A stub: `google.colab` importable, as in a Colab runtime."\n')
        (stub / 'output.py').write_text(STUB_OUTPUT)  # jax's debugger imports it when it sees google.colab
        files = {'runner': work / 'runner.py', 'lock': work / 'install.lock', 'baseline': work / 'baseline.json',
                 'snapshot': work / 'snapshot.json'}
        files['runner'].write_text(RUNNER); files['baseline'].write_text(json.dumps(baseline))
        files['snapshot'].write_text(json.dumps(pins))
        skip_flags = cfg.get('tst_flags', '').split()
        t, results = time.time(), []
        with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
            futures = [pool.submit(run_notebook_once_more_on_rendezvous_abort, nb, args, work, wheel, work / 'stub', files, skip_flags) for nb in nbs]
            for fut in concurrent.futures.as_completed(futures):
                name, ok, secs, log = fut.result(); results.append((name, ok))
                lines = [l for l in log.splitlines() if l.startswith(('install cell', 'ok:', 'FAIL'))]
                print(f'{"PASS" if ok else "FAIL"} {name} {secs:.0f} s' + ''.join(f'\n    {l}' for l in lines), flush=True)
                if not ok: print('    ' + log[-6000:].replace('\n', '\n    '), flush=True)
    failed = [n for n, ok in results if not ok]
    print(f'{len(results) - len(failed)}/{len(results)} notebooks passed in the Colab replica '
          f'({args.devices} device(s), {time.time() - t:.0f} s)' + (f'; failed: {", ".join(sorted(failed))}' if failed else ''))
    sys.exit(1 if failed or not results else 0)


if __name__ == '__main__':
    main()
