"""What the rendered docs show: per page, the shown code cells, those with stored outputs, and images; and which public
methods reach the API reference.

`python tools/docs_report.py` prints both (it runs `nbdev_proc_nbs` with a stub Quarto first, as the docs build does).
tests/test_repo.py uses `undocumented()` to keep every public method and every layer's `__call__` in the docs."""
import dataclasses, inspect, json, os, re, shutil, stat, subprocess, sys, tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools.shown import notebooks  # noqa: E402

def output_counts(path: Path) -> tuple[int, int, int]:
    "`(shown code cells, shown code cells with stored outputs, images)` of a notebook: what its page shows (tools/shown.py)."
    sys.path.insert(0, str(ROOT))
    from tools.shown import counts
    return counts(path)

def public_methods() -> dict[str, list[str]]:
    "`{class name: [public method names]}` for every class in `blox`'s namespace, `__call__` included."
    import blox
    out = {}
    for name in sorted(getattr(blox, '__all__', None) or [n for n in dir(blox) if not n.startswith('_')]):
        cls = getattr(blox, name)
        if not inspect.isclass(cls) or not cls.__module__.startswith('blox') or issubclass(cls, BaseException): continue
        fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
        methods = [m for m, v in vars(cls).items() if (not m.startswith('_') or m == '__call__') and m not in fields
                   and (inspect.isfunction(v) or isinstance(v, (property, classmethod, staticmethod)))]
        out[name] = sorted(methods)
    return out

def shown_docs(proc: Path) -> set[str]:
    "Names passed to `show_doc` in the processed notebooks (what the docs site renders)."
    shown = set()
    for nb in proc.rglob('*.ipynb'):
        for cell in json.loads(nb.read_text(encoding='utf-8'))['cells']:
            if cell['cell_type'] == 'code':
                shown |= set(re.findall(r'show_doc\(\s*([\w.]+)', ''.join(cell['source'])))
    return shown

def proc_nbs() -> Path:
    "Run `nbdev_proc_nbs` (the docs preprocessing) with a stub Quarto; returns the `_proc` folder."
    stub_dir = Path(tempfile.mkdtemp())
    stub = stub_dir / 'quarto'
    stub.write_text('#!/bin/sh\necho 1.6.0\nexit 0\n')
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, 'PATH': f"{stub_dir}{os.pathsep}{os.environ['PATH']}"}
    shutil.rmtree(ROOT / '_proc', ignore_errors=True)  # nbdev skips notebooks whose processed copy looks current
    r = subprocess.run([str(Path(sys.executable).parent / 'nbdev_proc_nbs')], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=900)
    missing = [nb.name for nb in notebooks() if not (ROOT / '_proc' / nb.name).exists()]
    if r.returncode or missing:
        raise RuntimeError(f"nbdev_proc_nbs failed (not processed: {missing}):\n{r.stdout[-3000:]}{r.stderr[-6000:]}")
    return ROOT / '_proc'

def undocumented(proc: Path) -> list[str]:
    shown = shown_docs(proc)
    return [f"{cls}.{m}" for cls, methods in public_methods().items() for m in methods if f"{cls}.{m}" not in shown]

if __name__ == '__main__':
    total = [0, 0, 0]
    for nb in notebooks():
        counts = output_counts(nb)
        total = [a + b for a, b in zip(total, counts)]
        low = '' if 3 * counts[1] >= counts[0] else '   < 1 output per 3 shown cells'
        print(f"{nb.name:28} {counts[0]:3} shown code cells, {counts[1]:3} with stored outputs, {counts[2]:2} images{low}")
    print(f"{'total':28} {total[0]:3} shown code cells, {total[1]:3} with stored outputs, {total[2]:2} images")
    proc = proc_nbs()
    methods = public_methods()
    missing = undocumented(proc)
    n = sum(map(len, methods.values()))
    calls = [f"{c}.__call__" for c, ms in methods.items() if '__call__' in ms]
    print(f"public methods documented: {n - len(missing)} of {n}; "
          f"__call__ documented: {sum(c not in missing for c in calls)} of {len(calls)}")
    if missing: print("not in the docs:", ', '.join(missing))
