"""Edit notebooks as plain text: `python tools/nbtxt.py out nbs/01_params.ipynb` writes `nbs/01_params.txt`-style text,
`python tools/nbtxt.py in nbs/01_params.ipynb` reads it back.

The text form is the cells in order, each after a marker line `# ==== code <id>` or `# ==== markdown <id>`. Leave the id
off (`# ==== code`) for a new cell. Reading back keeps the stored outputs of every cell whose id and source are
unchanged and drops the rest (run `python tools/run_nb.py` to store fresh ones). The text file is a scratch copy:
the notebook stays the source, so delete the text when done (`*.nbtxt` is git-ignored)."""
import json, re, secrets, sys
from pathlib import Path

MARK = re.compile(r'^# ==== (code|markdown|raw)(?: ([0-9a-zA-Z_-]+))?[ \t]*$')

def text_path(nb: Path) -> Path: return nb.with_suffix('.nbtxt')

def to_text(nb: Path) -> str:
    cells = json.loads(nb.read_text(encoding='utf-8'))['cells']
    return '\n'.join(f"# ==== {c['cell_type']} {c.get('id', '')}".rstrip() + '\n' + ''.join(c['source']).rstrip('\n')
                     for c in cells) + '\n'

def from_text(nb: Path, text: str) -> dict:
    old = json.loads(nb.read_text(encoding='utf-8')) if nb.exists() else {
        'cells': [], 'metadata': {'kernelspec': {'display_name': 'python3', 'language': 'python', 'name': 'python3'}},
        'nbformat': 4, 'nbformat_minor': 5}
    by_id = {c.get('id'): c for c in old['cells']}
    cells, kind, cid, lines, seen = [], None, None, [], set()
    def flush():
        if kind is None: return
        source = '\n'.join(lines).strip('\n')
        nonlocal cid
        if cid is None or cid in seen: cid = secrets.token_hex(4)
        seen.add(cid)
        prev = by_id.get(cid)
        cell = {'cell_type': kind, 'id': cid, 'metadata': prev.get('metadata', {}) if prev else {},
                'source': source.splitlines(keepends=True)}
        if kind == 'code':
            same = prev is not None and ''.join(prev['source']) == source
            cell['execution_count'] = None
            cell['outputs'] = prev.get('outputs', []) if same else []
        cells.append(cell)
    for line in text.splitlines():
        m = MARK.match(line)
        if m:
            flush()
            kind, cid, lines = m.group(1), m.group(2), []
        else: lines.append(line)
    flush()
    return {**old, 'cells': cells}

if __name__ == '__main__':
    mode, nb = sys.argv[1], Path(sys.argv[2])
    if mode == 'out':
        text_path(nb).write_text(to_text(nb), encoding='utf-8')
        print(text_path(nb))
    elif mode == 'in':
        data = from_text(nb, text_path(nb).read_text(encoding='utf-8'))
        nb.write_text(json.dumps(data, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
        print(f"wrote {nb} ({len(data['cells'])} cells)")
    else: sys.exit(f"usage: {sys.argv[0]} out|in NOTEBOOK")
