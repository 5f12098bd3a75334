"""What the docs site shows of each notebook's code, and a check that it runs as shown.

nbdev's docs pipeline drops cells marked `export`, `exporti`, `hide` or `default_exp` (`#| exports` cells stay), and
Quarto hides the code of cells marked `echo: false` or `include: false` (so do `show_doc` cells). What is left is
the code a reader sees and copies. `python tools/shown.py run nbs/X.ipynb [...]` runs exactly those cells, in order, in
a fresh process against the installed package, as `nbdev_test` would (skipping `eval: false` and the test flags);
`python tools/shown.py count` prints shown code cells, stored outputs of shown cells and images per page;
`python tools/shown.py names` lists, without running anything, the names shown code uses that no earlier shown cell
defines or imports (ruff's F821 over the shown cells: seconds for every page, the quick half of `run`)."""
import json, os, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HIDDEN = {'export', 'exporti', 'hide', 'default_exp'}

def _directives(cell) -> dict:
    "`{directive: [args]}` from a code cell's leading `#|` lines (Quarto options keep their colon, as nbdev's do)."
    out = {}
    for line in ''.join(cell['source']).splitlines():
        m = re.match(r'\s*#\|\s*([\w-]+:?)\s*(.*)', line)
        if not m:
            if line.strip(): break
            continue
        out[m.group(1)] = m.group(2).split()
    return out

def _is_false(d, key): return d.get(key, [''])[0].lower() == 'false' if d.get(key) else False

def is_shown(cell) -> bool:
    "Does the docs site show this cell's code?"
    if cell['cell_type'] != 'code' or not ''.join(cell['source']).strip(): return False
    d = _directives(cell)
    if d.keys() & HIDDEN or _is_false(d, 'echo:') or _is_false(d, 'include:'): return False
    return not re.search(r'^show_doc', ''.join(cell['source']), re.MULTILINE)

def notebooks() -> list[Path]:
    "The pages of the site: every notebook in nbs/ (not `_`-prefixed ones, not checkpoints)."
    return sorted(p for p in (ROOT / 'nbs').glob('*.ipynb') if not p.name.startswith(('_', '.')))

def shown_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(Path(path).read_text(encoding='utf-8'))['cells'] if is_shown(c)]

def counts(path: Path) -> tuple[int, int, int]:
    """`(shown code cells, shown cells with stored outputs, images on the page)`. Images count from every cell whose
    outputs the site keeps: shown cells and `echo: false` ones, not those nbdev drops (`hide`, ...) or `include: false`."""
    cells = json.loads(Path(path).read_text(encoding='utf-8'))['cells']
    shown = [c for c in cells if is_shown(c)]
    def rendered(c):
        d = _directives(c)
        return not (d.keys() & HIDDEN or _is_false(d, 'include:'))
    images = sum(1 for c in cells if c['cell_type'] == 'code' and rendered(c) for o in c.get('outputs', [])
                 if any(k.startswith('image/') for k in o.get('data', {})))
    return len(shown), sum(1 for c in shown if c.get('outputs')), images

def undefined(path: Path) -> list[str]:
    """Names the shown code uses that no shown cell before defines or imports, found without running anything: the
    shown cells, in order, as one module, through ruff's pyflakes rule F821 (a star import hides names from it; `run`
    is the full check). One entry per name, at its first use: `` `name` (cell N, shown cell k)``."""
    cells = [c for c in json.loads(Path(path).read_text(encoding='utf-8'))['cells']]
    shown = [(i, c) for i, c in enumerate(cells) if is_shown(c)]
    lines, where = [], []
    for k, (i, c) in enumerate(shown):
        for line in re.sub(r'^\s*[!%].*$', '', ''.join(c['source']), flags=re.M).splitlines() + ['']:
            lines.append(line); where.append((i, k + 1))
    r = subprocess.run([sys.executable, '-m', 'ruff', 'check', '--isolated', '--select', 'F821', '--output-format', 'json', '--config',
                        "builtins=['display', 'get_ipython']", '--stdin-filename', f'{Path(path).stem}_shown.py', '-'],
                       input='\n'.join(lines), capture_output=True, text=True, cwd=ROOT)
    if r.returncode not in (0, 1): raise RuntimeError(f"ruff failed: {r.stderr[-2000:]}")
    first = {}
    for d in sorted(json.loads(r.stdout or '[]'), key=lambda d: d['location']['row']):
        name = re.search(r'`([^`]+)`', d['message']).group(1)
        first.setdefault(name, where[d['location']['row'] - 1])
    return [f"`{n}` (cell {i}, shown cell {k})" for n, (i, k) in first.items()]

RUN_SHOWN = r'''
import json, os, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from tools.shown import shown_cells
from execnb.nbio import dict2nb
from execnb.shell import CaptureShell
from fastcore.xtras import working_directory
path, flags = Path(sys.argv[1]), set(sys.argv[2].split())
nb = dict2nb({'cells': shown_cells(path), 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5})
def _no_eval(cell):
    from tools.shown import _directives
    d = _directives(cell)
    return cell.cell_type != 'code' or (d.get('eval:') or [''])[0].lower() == 'false' or bool(flags & d.keys())
k = CaptureShell(path)
try:
    with working_directory(path.parent): k.run_all(nb, exc_stop=True, preproc=_no_eval)
except Exception:
    sys.stderr.write(k.prettytb(fname=path) + '\n'); sys.exit(1)
'''

_PRIVATE = re.compile(r'(?<![\w])_[A-Za-z]\w*|\b_src\b')

def private_names(path: Path) -> list[str]:
    """Private names (`_x`, `obj._x`, orbax's `_src`) in shown code a reader runs or copies: shown cells other than
    `#| exports` ones and cells that define a private function or class: those show the implementation itself.
    Dunders, `_` alone, strings and comments do not count."""
    import io, tokenize
    bad = []
    for n, cell in enumerate(json.loads(Path(path).read_text(encoding='utf-8'))['cells']):
        if not is_shown(cell) or 'exports' in _directives(cell): continue
        src = '\n'.join(l for l in ''.join(cell['source']).splitlines() if not l.lstrip().startswith(('!', '%')))
        if re.search(r'^(?:def|class)\s+_[A-Za-z]', src, re.MULTILINE): continue   # a sketch of the implementation
        try: tokens = list(tokenize.generate_tokens(io.StringIO(src).readline))
        except (tokenize.TokenError, SyntaxError): continue
        names = {t.string for t in tokens if t.type == tokenize.NAME and _PRIVATE.fullmatch(t.string)
                 and not (t.string.startswith('__') and t.string.endswith('__'))}
        bad += [f"`{name}` (cell {n})" for name in sorted(names)]
    return bad

def run(path: Path, skip_flags: str = '', env: dict | None = None, timeout: int = 900) -> subprocess.CompletedProcess:
    "Run `path`'s shown code cells in a fresh process; nonzero `returncode` when one raises."
    env = {**os.environ, 'IN_TEST': '1', 'PYTHONUNBUFFERED': '1', **(env or {})}
    return subprocess.run([sys.executable, '-c', RUN_SHOWN, str(Path(path).resolve()), skip_flags, str(ROOT)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)

def skip_flags() -> str:
    from nbdev.config import get_config
    return get_config().tst_flags

if __name__ == '__main__':
    cmd, *paths = sys.argv[1:] or ['count']
    nbs = [Path(p) for p in paths] or notebooks()
    if cmd == 'count':
        for p in nbs:
            s, o, i = counts(p)
            print(f"{p.name:24} {s:3} shown code cells, {o:3} with outputs, {i:2} images"
                  f"{'' if 3 * o >= s else '   (fewer than 1 output per 3 shown cells)'}")
    elif cmd == 'names':
        for p in nbs:
            bad = undefined(p)
            print(f"{p.name}: {'ok' if not bad else 'undefined: ' + ', '.join(bad)}")
    elif cmd == 'run':
        bad = 0
        for p in nbs:
            r = run(p, skip_flags())
            print(f"{p.name}: {'ok' if r.returncode == 0 else 'FAILED'}", flush=True)
            if r.returncode: bad += 1; print(r.stderr[-4000:])
        sys.exit(1 if bad else 0)
    else: sys.exit(__doc__)
