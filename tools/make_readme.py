"""Write README.md from nbs/index.ipynb, as `nbdev_readme` would without Quarto (which cannot be installed here).

Hidden cells and `#|` directives are dropped, stored outputs are kept, and links to notebooks point to their pages on
the docs site (`X.ipynb#anchor` too: the README's vocabulary link once pointed to a notebook name outside nbs/ and 404ed).
Run `python tools/make_readme.py` after changing index.ipynb; tests/test_repo.py checks README.md is current."""
import json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SKIP = {'hide', 'export', 'exports', 'exporti', 'default_exp'}
SITE = 'https://jax-blox.github.io/blox/'  # the docs site the deploy workflow publishes (settings.ini's doc_host/doc_baseurl)

def page_name(nb: str) -> str:
    "A notebook's page on the site: nbdev's `output-file`, the name lowercased without its number (10_digits -> digits.html)."
    return re.sub(r'^\d+[a-zA-Z0-9]*_', '', nb.lower()).rsplit('.', 1)[0] + '.html'  # nbdev.doclinks._nbpath2html

def _site_links(md: str) -> str:
    "Links to notebooks (`X.ipynb`, `X.ipynb#anchor`) become links to their rendered pages on the docs site."
    return re.sub(r'\]\((?!https?:)([\w.-]+\.ipynb)(#[\w.:-]+)?\)', lambda m: f"]({SITE}{page_name(m[1])}{m[2] or ''})", md)

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
            parts.append(_site_links(source.strip()))
        elif cell['cell_type'] == 'code' and not (_directives(source) & SKIP):
            code = '\n'.join(line for line in source.splitlines() if not line.startswith('#|')).strip()
            parts.append(f"```python\n{code}\n```")
            parts += _outputs(cell)
    note = '<!-- generated from nbs/index.ipynb by tools/make_readme.py; edit the notebook, not this file -->'
    return '\n\n'.join(parts + [note]) + '\n'

if __name__ == '__main__':
    (ROOT / 'README.md').write_text(readme(), encoding='utf-8')
    print('wrote README.md', file=sys.stderr)
