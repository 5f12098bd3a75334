"""Write README.md from nbs/index.ipynb, as `nbdev_readme` would without Quarto (which cannot be installed here).

Hidden cells and `#|` directives are dropped, stored outputs are kept, and links to notebooks point into nbs/.
Run `python tools/make_readme.py` after changing index.ipynb; tests/test_repo.py checks README.md is current."""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {'hide', 'export', 'exports', 'exporti', 'default_exp'}

def _directives(source: str) -> set:
    return {m.group(1) for m in re.finditer(r'^#\|\s*([\w-]+)', source, re.M)}

def _outputs(cell) -> list:
    texts = []
    for out in cell.get('outputs', []):
        if out.get('output_type') == 'stream': texts.append(''.join(out['text']))
        elif 'text/markdown' in out.get('data', {}): texts.append(''.join(out['data']['text/markdown']) + '\n')
        elif 'text/plain' in out.get('data', {}): texts.append(''.join(out['data']['text/plain']) + '\n')
    return [f"```\n{t.rstrip()}\n```" for t in texts if t.strip()]

def readme(nb_path: Path = ROOT / 'nbs' / 'index.ipynb') -> str:
    nb = json.loads(nb_path.read_text(encoding='utf-8'))
    parts = []
    for cell in nb['cells']:
        source = ''.join(cell['source'])
        if cell['cell_type'] == 'markdown':
            parts.append(re.sub(r'\]\((?!https?:)([\w.-]+\.ipynb)\)', r'](nbs/\1)', source.strip()))
        elif cell['cell_type'] == 'code' and not (_directives(source) & SKIP):
            code = '\n'.join(line for line in source.splitlines() if not line.startswith('#|')).strip()
            parts.append(f"```python\n{code}\n```")
            parts += _outputs(cell)
    note = '<!-- generated from nbs/index.ipynb by tools/make_readme.py; edit the notebook, not this file -->'
    return '\n\n'.join(parts + [note]) + '\n'

if __name__ == '__main__':
    (ROOT / 'README.md').write_text(readme(), encoding='utf-8')
    print('wrote README.md', file=sys.stderr)
