"""Offline checks on what the docs site shows: figures quoted in prose, links and anchors, outputs per shown cell.

Each check returns a list of human-readable violations (empty when the page is fine); tests/test_site.py asserts
they are empty and tests the checks themselves on small synthetic notebooks. `python tools/site_checks.py` prints
every violation per notebook (nothing here needs the network, a kernel or Quarto).

- `figures(nb)`: a measured figure in markdown (a number followed by ×, x, s, ms, µs, %, B/KB/MB/GB/KiB/MiB/GiB,
  ulp(s), steps/s; or a number written with a thousands separator, 26,122) must appear in a stored output of the same
  notebook or of a notebook the same markdown cell links to. Both ends of a range (0.54–0.63×) count. Numbers in
  inline code, code blocks, math, link targets and HTML tags are exempt; so are the entries of `ALLOWED`.
- `links(nb)` / `readme_links()`: every internal link (`X.ipynb`, `X.ipynb#anchor`, `X.html#anchor`, `#anchor`,
  relative files) resolves to an existing page and heading anchor, with Pandoc's identifier rule (what Quarto uses).
  A page's file on the site is nbdev's `output-file` (`page_name`): 04_training.ipynb is training.html.
- `output_ratio(nb)`: ≥ 1 stored output per 3 shown code cells (tools/shown.py `counts`); `big_images(nb)`: every
  image output ≤ `MAX_IMAGE_KB`; `raw_errors(nb)`: no stored output shows a traceback, an error or ANSI escapes."""
import base64, json, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NBS = ROOT / 'nbs'
sys.path.insert(0, str(ROOT))
from tools.shown import counts, notebooks  # noqa: E402,F401

SITE = 'https://jax-blox.github.io/blox/'
MAX_IMAGE_KB = 150

def page_name(nb: Path | str) -> str:
    """The file a notebook's page gets on the site: nbdev's front matter sets `output-file` to the notebook's name,
    lowercased, without its number prefix (nbdev.doclinks._nbpath2html): 10_digits.ipynb is digits.html."""
    return re.sub(r'^\d+[a-zA-Z0-9]*_', '', Path(nb).name.lower()).rsplit('.', 1)[0] + '.html'

def pages(folder: Path = NBS) -> dict[str, Path]:
    "`{page file on the site: notebook}` for the notebooks of `folder`."
    return {page_name(p): p for p in sorted(Path(folder).glob('*.ipynb')) if not p.name.startswith(('_', '.'))}


def _cells(path: Path) -> list[dict]:
    return json.loads(Path(path).read_text(encoding='utf-8'))['cells']

def _src(cell) -> str:
    s = cell.get('source', '')
    return s if isinstance(s, str) else ''.join(s)

# ---------------------------------------------------------------- figures in prose

# (notebook name, figure as written, why it is not a measured figure the notebook must print). Keep it short.
ALLOWED: list[tuple[str, str, str]] = [
]

_NUM = r'\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?'
_UNIT = r'×|x(?![\w])|steps/s|ulps?|µs|us|ms|s|%|[KMG]i?B|B'
# a number (or a range of two) followed by a unit; the unit must end the word (not "3 steps", "2 layers", "3x3")
_FIGURE = re.compile(rf'(?<![\w.,])({_NUM})(?:\s?[–-]\s?({_NUM}))?(?:\s|\u202f|\u00a0)?({_UNIT})(?![\w/])')
_THOUSANDS = re.compile(r'(?<![\w.,])(\d{1,3}(?:,\d{3})+(?:\.\d+)?)(?![\w,]|\.\d)')

def prose(md: str) -> str:
    "Markdown with what the figures rule exempts blanked out: code blocks, inline code, math, link targets, HTML tags."
    md = re.sub(r'```.*?```|~~~.*?~~~', ' ', md, flags=re.S)
    md = re.sub(r'(`+).+?\1', ' ', md, flags=re.S)
    md = re.sub(r'\$\$.+?\$\$|\$[^$\n]+\$', ' ', md, flags=re.S)
    md = re.sub(r'\]\([^)]*\)|<[^>\n]+>|https?://\S+', ' ', md)
    return md

def quoted_figures(md: str) -> list[str]:
    "The measured figures a markdown text quotes (numbers as written, both ends of a range), in order, no repeats."
    text, found = prose(md), []
    for m in _FIGURE.finditer(text):
        unit, after = m.group(3), text[m.end():m.end() + 2]
        if unit in 'x×' and (re.match(r'\s?\d', after) or (text[m.start(3) - 1].isspace() and after[:1].isspace())):
            continue  # 3x3, 8×8, "4 × 8", "data 4 × model 2": a shape or a product, not a ratio (5.4× has no space)
        found += [g for g in m.group(1, 2) if g]
    found += [m.group(1) for m in _THOUSANDS.finditer(text)]
    return list(dict.fromkeys(found))

def output_text(cell) -> str:
    "What a code cell's stored outputs show as text: streams, text/plain, text/markdown, text/html."
    parts = []
    for o in cell.get('outputs', []):
        if o.get('output_type') == 'stream': parts.append(_src({'source': o.get('text', '')}))
        for k in ('text/plain', 'text/markdown', 'text/html'):
            if k in o.get('data', {}): parts.append(_src({'source': o['data'][k]}))
    return '\n'.join(parts)

def notebook_outputs(path: Path) -> str:
    return '\n'.join(output_text(c) for c in _cells(path) if c['cell_type'] == 'code')

def _shows(number: str, text: str) -> bool:
    """Does `text` show `number` as a whole number (not inside 15.4 or 5.41)? The same value written with trailing zeros
    (2.4 as 2.40, 24 as 24.0) or without its thousands separators (26,122 as 26122) counts; a rounding does not."""
    forms = {number, number.replace(',', '')}
    zeros = lambda f: r'0*' if '.' in f else r'(?:\.0+)?'
    return any(re.search(rf'(?<![\d.]){re.escape(f)}{zeros(f)}(?!\d|\.\d)', text) for f in forms)

def linked_notebooks(md: str, here: Path) -> list[Path]:
    "The notebooks of this folder a markdown text links to (`X.ipynb`, `X.html`, with or without an anchor)."
    out = []
    for target in _link_targets(md):
        m = re.match(r'([\w.-]+\.(?:ipynb|html))(?:#.*)?$', target)
        if not m: continue
        nb = pages(here.parent).get(m.group(1)) if m.group(1).endswith('.html') else here.parent / m.group(1)
        if nb is not None and nb.exists(): out.append(nb)
    return out

def figures(path: Path, allowed=None) -> list[str]:
    "Measured figures quoted in `path`'s markdown that no stored output of it (or of a notebook the cell links to) shows."
    path = Path(path)
    allowed = {(nb, fig) for nb, fig, _ in (ALLOWED if allowed is None else allowed)}
    own, cache, bad = notebook_outputs(path), {}, []
    for i, cell in enumerate(_cells(path)):
        if cell['cell_type'] != 'markdown': continue
        md = _src(cell)
        for fig in quoted_figures(md):
            if (path.name, fig) in allowed or _shows(fig, own): continue
            if any(_shows(fig, cache.setdefault(nb, notebook_outputs(nb))) for nb in linked_notebooks(md, path)): continue
            line = next((ln.strip() for ln in prose(md).splitlines() if fig in ln), '')
            bad.append(f"{path.name} cell {i}: {fig!r} is in no stored output: ...{_around(line, fig)}...")
    return bad

def _around(line: str, fig: str, width: int = 50) -> str:
    k = line.find(fig)
    return line[max(0, k - width):k + len(fig) + width]

# ---------------------------------------------------------------- links and anchors

def _link_targets(md: str) -> list[str]:
    "Link targets of markdown links and `<a href>`s, outside code."
    md = re.sub(r'```.*?```|~~~.*?~~~', ' ', md, flags=re.S)
    md = re.sub(r'(`+).+?\1', ' ', md, flags=re.S)
    out = [m.group(1) for m in re.finditer(r'\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)', md)]
    out += re.findall(r'<a\s[^>]*href="([^"]+)"', md)
    out += [m.group(1) for m in re.finditer(r'^\s*\[[^\]]+\]:\s*(\S+)', md, re.M)]  # reference-style definitions
    return out

def anchor(heading: str) -> str:
    """Pandoc's auto identifier, which Quarto uses (pandoc's `auto_identifiers`, not `gfm_auto_identifiers`): the
    heading's text without formatting or links, lowercased, only letters, digits, `_`, `-`, `.` and spaces kept, its
    words joined by `-`, everything before the first letter dropped; `section` when nothing is left. (Pandoc's
    `inlineListToIdentifier`: `T.intercalate "-" . T.words . filterPunct . T.toLower`, then `T.dropWhile (not . isAlpha)`.)"""
    h = re.sub(r'\{[^}]*\}\s*$', '', heading)                   # attributes, e.g. {.unnumbered}
    h = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', h)            # links and images: their text
    h = re.sub(r'<[^>]+>', '', h)                                # raw HTML tags
    h = re.sub(r'(`+)(.+?)\1', r'\2', h)                         # inline code: its text
    h = re.sub(r'(\*\*|__|\*|~~)(.+?)\1', r'\2', h)              # emphasis (not single _: names keep theirs)
    h = re.sub(r'(?<![\w])_(\S.*?)_(?![\w])', r'\1', h)
    h = ''.join(c for c in h.lower() if c.isalnum() or c in '_-.' or c.isspace())
    out = '-'.join(h.split())                                    # words joined by dashes (runs of spaces: one)
    while out and not out[0].isalpha(): out = out[1:]            # identifiers start with a letter
    return out or 'section'

def headings(path: Path) -> list[str]:
    "Markdown headings of a notebook (markdown cells, and show_doc's markdown outputs), as written."
    out = []
    for c in _cells(path):
        texts = [_src(c)] if c['cell_type'] == 'markdown' else [
            _src({'source': o['data']['text/markdown']}) for o in c.get('outputs', []) if 'text/markdown' in o.get('data', {})]
        for t in texts:
            t = re.sub(r'```.*?```|~~~.*?~~~', '', t, flags=re.S)
            out += [m.group(1).strip() for m in re.finditer(r'^#{1,6}\s+(.+?)\s*#*\s*$', t, re.M)]
    return out

def anchors(path: Path) -> set[str]:
    "Every anchor a page has: each heading's identifier (Pandoc numbers repeats -1, -2, ...) and explicit `{#id}`s."
    seen, out = {}, set()
    for h in headings(path):
        explicit = re.search(r'\{[^}]*#([\w:.-]+)[^}]*\}\s*$', h)
        if explicit: out.add(explicit.group(1)); continue
        a = anchor(h)
        n = seen.get(a, 0)
        out.add(a if n == 0 else f'{a}-{n}')
        seen[a] = n + 1
    for c in _cells(path):  # explicit ids on divs/spans and html anchors anywhere in markdown
        if c['cell_type'] == 'markdown':
            out |= set(re.findall(r'\{#([\w:.-]+)', _src(c))) | set(re.findall(r'<a\s+(?:id|name)="([^"]+)"', _src(c)))
    return out

def _check_target(target: str, base: Path, here: Path | None, where: str) -> str | None:
    "Why an internal link target does not resolve, or None. `base`: the folder relative links start from."
    if re.match(r'^[a-z][\w+.-]*:', target, re.I): return None  # http:, https:, mailto:, ...
    path, _, frag = target.partition('#')
    if not path:
        if here is None or frag in anchors(here): return None
        return f"{where}: '#{frag}' is no heading of {here.name} (anchors: {_near(frag, anchors(here))})"
    file = (base / path).resolve()
    if file.suffix == '.html':  # a page of the site: the notebook whose output-file it is
        site = pages(file.parent)
        if file.name not in site:
            near = _near(file.name, set(site))
            return f"{where}: '{target}' is no page of the site (pages are named without their number: {near})"
        file = site[file.name]
    if not file.exists(): return f"{where}: '{target}' points to no file ({file.relative_to(ROOT) if file.is_relative_to(ROOT) else file})"
    if here is not None and not file.is_relative_to(here.parent.resolve()):  # the site is the notebooks' folder
        return f"{where}: '{target}' leaves nbs/, so the site has no such page (link to GitHub instead)"
    if frag and file.suffix == '.ipynb' and frag not in anchors(file):
        return f"{where}: '{target}': {file.name} has no heading with anchor '#{frag}' (near: {_near(frag, anchors(file))})"
    return None

def _near(frag: str, have: set[str]) -> str:
    import difflib
    return ', '.join(difflib.get_close_matches(frag, sorted(have), n=3, cutoff=0.4)) or 'none close'

def links(path: Path) -> list[str]:
    "Internal links of a notebook's markdown cells that point to no page, file or heading anchor."
    path, bad = Path(path), []
    for i, c in enumerate(_cells(path)):
        if c['cell_type'] != 'markdown': continue
        for t in _link_targets(_src(c)):
            if t.startswith(SITE): t = t[len(SITE):] or 'index.html'
            why = _check_target(t, path.parent, path, f"{path.name} cell {i}")
            if why: bad.append(why)
    return bad

def readme_links(readme: Path = ROOT / 'README.md') -> list[str]:
    "README.md's relative links resolve from the repository root; its links to the docs site name existing pages."
    bad = []
    for t in _link_targets(readme.read_text(encoding='utf-8')):
        if t.startswith(SITE):
            why = _check_target(t[len(SITE):] or 'index.html', NBS, None, 'README.md (docs site)')
        else: why = _check_target(t, readme.parent, None, 'README.md')
        if why: bad.append(why)
    return bad

# ---------------------------------------------------------------- outputs

def output_ratio(path: Path) -> list[str]:
    s, o, _ = counts(path)
    return [] if 3 * o >= s else [f"{Path(path).name}: {o} stored outputs for {s} shown code cells (needs ≥ {-(-s // 3)})"]

def big_images(path: Path, max_kb: int = MAX_IMAGE_KB) -> list[str]:
    bad = []
    for i, c in enumerate(_cells(path)):
        for o in c.get('outputs', []):
            for k, v in o.get('data', {}).items():
                if not k.startswith('image/'): continue
                data = _src({'source': v})
                size = len(data.encode()) if k == 'image/svg+xml' else len(base64.b64decode(data))
                if size > max_kb * 1024: bad.append(f"{Path(path).name} cell {i}: a {k} of {size / 1024:.0f} KB (> {max_kb} KB)")
    return bad

def raw_errors(path: Path) -> list[str]:
    "Stored outputs a reader should never see: error outputs, printed tracebacks, ANSI escape codes."
    bad = []
    for i, c in enumerate(_cells(path)):
        if c['cell_type'] != 'code': continue
        if any(o.get('output_type') == 'error' for o in c.get('outputs', [])): bad.append(f"{Path(path).name} cell {i}: an error output")
        text = output_text(c)
        if 'Traceback (most recent call last)' in text: bad.append(f"{Path(path).name} cell {i}: a printed traceback")
        if '\x1b[' in text: bad.append(f"{Path(path).name} cell {i}: ANSI escape codes in an output")
    return bad

CHECKS = {'figures': figures, 'links': links, 'output ratio': output_ratio, 'image size': big_images, 'raw errors': raw_errors}

if __name__ == '__main__':
    paths = [Path(p) for p in sys.argv[1:]] or notebooks()
    total = 0
    for name, check in CHECKS.items():
        found = [v for p in paths for v in check(p)]
        if check is links and not sys.argv[1:]: found += readme_links()
        total += len(found)
        print(f"== {name}: {len(found)} violation(s)")
        for v in found: print('  ' + v)
    sys.exit(1 if total else 0)
