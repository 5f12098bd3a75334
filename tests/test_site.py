"""What the docs site shows, checked offline (tools/site_checks.py): figures quoted in prose come from stored outputs,
internal links and anchors resolve, every page shows ≥ 1 output per 3 shown code cells, images are small, no stored
output shows a traceback, and the custom sidebar lists every page exactly once. The checks are tested first, on small
synthetic notebooks. All of it reads JSON: the whole file runs in a few seconds."""
import json, sys
from pathlib import Path
import pytest, yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tools import site_checks as S  # noqa: E402

NBS = S.notebooks()
IDS = [p.name for p in NBS]

# ---------------------------------------------------------------- the checks, on synthetic notebooks

def _nb(tmp_path, name, *cells) -> Path:
    "A notebook of `cells`: a str is a markdown cell, a (source, output text) tuple a code cell with a stream output."
    out = []
    for c in cells:
        if isinstance(c, str): out.append({'cell_type': 'markdown', 'metadata': {}, 'source': c})
        else:
            src, text = c
            outputs = [{'output_type': 'stream', 'name': 'stdout', 'text': text}] if text else []
            out.append({'cell_type': 'code', 'metadata': {}, 'source': src, 'outputs': outputs, 'execution_count': None})
    p = tmp_path / name
    p.write_text(json.dumps({'cells': out, 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}))
    return p

def test_figures_catch_a_stale_count(tmp_path):
    nb = _nb(tmp_path, 'a.ipynb', ("print(n)", "frozen: 26122\n"), "LoRA trains 60 and freezes 26,123 frozen weights.")
    bad = S.figures(nb, allowed=[])
    assert len(bad) == 1 and "'26,123'" in bad[0], bad
    ok = _nb(tmp_path, 'b.ipynb', ("print(n)", "| frozen | 26,122 |\n"), "LoRA freezes 26,122 weights.")
    assert S.figures(ok, allowed=[]) == []
    plain = _nb(tmp_path, 'c.ipynb', ("print(n)", "26122\n"), "LoRA freezes 26,122 weights.")
    assert S.figures(plain, allowed=[]) == []  # the same number without its separator

def test_figures_units_ranges_and_rounding(tmp_path):
    nb = _nb(tmp_path, 'a.ipynb', ("", "ratios 0.54x and 0.70x; 13.2 ms; 2.40 s\n"),
             "The ratios are 0.54–0.63×, a step takes 13.2 ms (13 ms rounded), 2.4 s; 5.4x faster; 3 ulps; 12% less.")
    bad = ' '.join(S.figures(nb, allowed=[]))
    for missing in ("'0.63'", "'13'", "'5.4'", "'3'", "'12'"): assert missing in bad, (missing, bad)
    for present in ("'0.54'", "'13.2'", "'2.4'"): assert present not in bad, (present, bad)

def test_figures_ignore_what_is_not_a_measurement(tmp_path):
    md = ("On 8 devices with Python 3.11 and jax 0.10.2, eps 1e-5, ([arXiv 2104.09864](https://arxiv.org/abs/2104.09864)), "
          "2026-08-19, a 3x3 kernel, 8×8 images, a batch of 4 × 8, `26,123 weights`, $10^{-5}$ and\n```\n0.5 s\n```\n"
          "<img width=\"400\"> 3 layers, 2 steps, 10 epochs")
    nb = _nb(tmp_path, 'a.ipynb', ("", ""), md)
    assert S.quoted_figures(md) == [] and S.figures(nb, allowed=[]) == []

def test_figures_may_come_from_a_linked_notebook(tmp_path):
    _nb(tmp_path, 'bench.ipynb', ("", "blox 1.06x\n"))
    linked = _nb(tmp_path, 'a.ipynb', "blox is 1.06× raw JAX ([benchmarks](bench.ipynb#steps)).")
    unlinked = _nb(tmp_path, 'b.ipynb', "blox is 1.06× raw JAX.")
    assert S.figures(linked, allowed=[]) == [] and len(S.figures(unlinked, allowed=[])) == 1

def test_figures_allowlist(tmp_path):
    nb = _nb(tmp_path, 'a.ipynb', "Trained for 1,000 steps.")
    assert S.figures(nb, allowed=[('a.ipynb', '1,000', 'a setting')]) == [] and S.figures(nb, allowed=[])

@pytest.mark.parametrize('heading,anchor', [
    ('Heading identifiers in HTML', 'heading-identifiers-in-html'), ("Maître d'hôtel", 'maître-dhôtel'),
    ('*Dogs*?--in *my* house?', 'dogs--in-my-house'), ('[HTML], [S5], or [RTF]?', 'html-s5-or-rtf'),
    ('3. Applications', 'applications'), ('33', 'section'),  # pandoc's manual's own examples
    ('The `Stack` scan: one trace', 'the-stack-scan-one-trace'), ('Module.split', 'module.split'),
    ('Read [the paper](https://arxiv.org/abs/1)', 'read-the-paper'), ('Your turn {.unnumbered}', 'your-turn')])
def test_anchor_is_pandocs(heading, anchor):
    assert S.anchor(heading) == anchor

def test_links(tmp_path):
    _nb(tmp_path, 'b.ipynb', "# B\n## One word per concept\n## Setup\n## Setup\n## Custom {#mine}")
    (tmp_path / 'data.txt').write_text('x')
    good = ['b.ipynb', 'b.ipynb#one-word-per-concept', 'b.html#setup-1', 'b.ipynb#mine', 'data.txt', '#local',
            'https://docs.jax.dev/x.html#nothing-checked']
    a = _nb(tmp_path, 'a.ipynb', "## Local\n" + ' '.join(f'[x]({t})' for t in good))
    assert S.links(a) == []
    bad = ['c.ipynb', 'b.ipynb#one-word', 'b.html#setup-2', '#nowhere', 'missing.txt']
    a = _nb(tmp_path, 'a.ipynb', "## Local\n" + ' '.join(f'[x]({t})' for t in bad) + " `[x](in-code.ipynb)`")
    found = S.links(a)
    assert len(found) == len(bad), found
    for t in bad: assert any(repr(t) in f or repr(t.split('#', 1)[-1] if t.startswith('#') else t) in f for f in found), (t, found)

def test_links_to_pages_use_the_sites_names(tmp_path):
    "nbdev names a page after its notebook without the number: 10_x.ipynb is x.html (10_x.html does not exist)."
    _nb(tmp_path, '10_x.ipynb', "# X\n## Setup")
    assert S.page_name('03a_conv.ipynb') == 'conv.html' and S.page_name('index.ipynb') == 'index.html'
    assert S.links(_nb(tmp_path, 'a.ipynb', "[x](x.html#setup) [x](10_x.ipynb#setup)")) == []
    assert len(S.links(_nb(tmp_path, 'b.ipynb', "[x](10_x.html#setup)"))) == 1

def test_output_ratio_and_image_checks(tmp_path):
    few = _nb(tmp_path, 'a.ipynb', ("x = 1", ""), ("y = 2", ""), ("z = 3", ""), ("print(1)", "1\n"), ("w = 4", ""))
    assert S.output_ratio(few)  # 1 output for 5 shown cells
    enough = _nb(tmp_path, 'b.ipynb', ("x = 1", ""), ("y = 2", ""), ("print(1)", "1\n"))
    assert S.output_ratio(enough) == []
    tb = _nb(tmp_path, 'c.ipynb', ("f()", "Traceback (most recent call last):\n  ...\n\x1b[31mValueError\n"))
    assert len(S.raw_errors(tb)) == 2

# ---------------------------------------------------------------- the pages

def test_pages_have_distinct_names():
    "Two notebooks whose names differ only in their number prefix render to one file, and the site shows only one."
    names = {}
    for nb in NBS: names.setdefault(S.page_name(nb), []).append(nb.name)
    clash = {page: nbs for page, nbs in names.items() if len(nbs) > 1}
    assert not clash, f"notebooks that nbdev renders to the same page (rename one): {clash}"

@pytest.mark.parametrize('nb', NBS, ids=IDS)
def test_figures_in_prose_come_from_outputs(nb):
    "A measured figure quoted in markdown is printed by a stored output of the page (or of a page the cell links to)."
    bad = S.figures(nb)
    assert not bad, "print these figures in an output, or stop quoting them:\n" + '\n'.join(bad)

def test_allowlist_is_current():
    "Every allowlisted figure is still quoted on its page (an entry nobody needs is a hole in the check)."
    stale = [(nb, fig) for nb, fig, _ in S.ALLOWED if fig not in S.quoted_figures(
        '\n'.join(''.join(c['source']) for c in json.loads((S.NBS / nb).read_text())['cells'] if c['cell_type'] == 'markdown'))]
    assert not stale, f"remove these entries from tools/site_checks.py's ALLOWED: {stale}"

@pytest.mark.parametrize('nb', NBS, ids=IDS)
def test_links_resolve(nb):
    bad = S.links(nb)
    assert not bad, '\n'.join(bad)

def test_readme_links_resolve():
    bad = S.readme_links()
    assert not bad, '\n'.join(bad)

@pytest.mark.parametrize('nb', NBS, ids=IDS)
def test_outputs_per_shown_cell(nb):
    "≥ 1 stored output per 3 shown code cells: the site shows results, not only code."
    assert not S.output_ratio(nb), S.output_ratio(nb)

@pytest.mark.parametrize('nb', NBS, ids=IDS)
def test_images_are_small(nb):
    assert not S.big_images(nb), f"{S.big_images(nb)}: lower the dpi or figsize (STYLE: dpi ~80, figsize ≤ (8, 4))"

@pytest.mark.parametrize('nb', NBS, ids=IDS)
def test_no_raw_errors_in_outputs(nb):
    assert not S.raw_errors(nb), S.raw_errors(nb)

@pytest.mark.parametrize('nb', NBS, ids=IDS)
def test_shown_code_defines_its_names(nb):
    "The quick, static half of tests/test_shown.py: every name shown code uses is imported or defined by a shown cell."
    from tools import shown
    bad = shown.undefined(nb)
    assert not bad, ("shown code uses names only hidden or export cells define (import them in the page's first shown "
                     "code cell, or show the cell that defines them): " + ', '.join(bad))

@pytest.mark.parametrize('nb', NBS, ids=IDS)
def test_shown_code_uses_no_private_names(nb):
    "Code a reader runs or copies uses the public API; only `#| exports` cells, which show the implementation, may not."
    from tools import shown
    bad = shown.private_names(nb)
    assert not bad, "shown code uses private names (use the public API, or hide the cell if it is a test): " + ', '.join(bad)

def test_private_names_check(tmp_path):
    from tools import shown
    nb = _nb(tmp_path, 'a.ipynb', ("#| exports\ndef _helper(): return 1", ""), ("x = _helper()  # _not_this\ny = '_nor_this'", ""),
             ("#| hide\nz = _hidden()", ""), ("import orbax.checkpoint._src as s\nt = x.__class__, _", ""),
             ("def _sketch(x): return _helper(x)", ""))
    assert shown.private_names(nb) == ['`_helper` (cell 1)', '`_src` (cell 3)']

def test_undefined_names_check(tmp_path):
    from tools import shown
    nb = _nb(tmp_path, 'a.ipynb', ("#| export\nimport numpy as np", ""), ("import jax\nx = jax.numpy.ones(2)", ""),
             ("#| hide\nfrom fastcore.test import *", ""), ("test_eq(x, np.ones(2))\n!ls", ""))
    assert shown.undefined(nb) == ['`test_eq` (cell 3, shown cell 2)', '`np` (cell 3, shown cell 2)']

# ---------------------------------------------------------------- the sidebar

def _sidebar_entries(node) -> list[str]:
    "Every page a Quarto sidebar's contents name: plain entries, `href`s and sections' `href`s, depth first."
    if isinstance(node, str): return [node]
    if isinstance(node, list): return [e for n in node for e in _sidebar_entries(n)]
    if isinstance(node, dict):
        return ([node['href']] if 'href' in node else []) + _sidebar_entries(node.get('contents', []))
    return []

def test_sidebar_is_custom():
    "nbdev regenerates nbs/sidebar.yml as one flat list unless settings.ini says `custom_sidebar = True`."
    from configparser import ConfigParser
    cfg = ConfigParser(); cfg.read(ROOT / 'settings.ini')
    assert cfg['DEFAULT'].getboolean('custom_sidebar'), "set custom_sidebar = True in settings.ini"

def test_sidebar_lists_every_page_once():
    "Two tracks: Start · Use blox · Build blox (00→05) · Tutorials · Reference; every notebook once, every entry a page."
    side = yaml.safe_load((ROOT / 'nbs' / 'sidebar.yml').read_text())['website']['sidebar']
    entries = _sidebar_entries(side['contents'])
    sections = [s['section'] for s in side['contents'] if isinstance(s, dict)]
    assert sections == ['Start', 'Use blox', 'Build blox', 'Tutorials', 'Reference'], sections
    twice = sorted({e for e in entries if entries.count(e) > 1})
    missing = [e for e in entries if not (ROOT / 'nbs' / e).exists()]
    absent = [p.name for p in NBS if p.name not in entries]
    assert not (twice or missing or absent), f"listed twice: {twice}; no such page: {missing}; not in the sidebar: {absent}"

def test_render_problems(tmp_path):
    "tools/render_pages.py's browser-free check: an image that the processed page lost, a traceback, ANSI junk."
    import base64
    sys.path.insert(0, str(ROOT / 'tools'))
    import render_pages
    png = base64.b64encode(b'\x89PNG fake image bytes' * 10).decode()
    img = {'output_type': 'display_data', 'metadata': {}, 'data': {'image/png': png, 'text/plain': '<Figure>'}}
    cell = lambda src, outs: {'cell_type': 'code', 'metadata': {}, 'source': src, 'outputs': outs, 'execution_count': 1}
    def write(name, cells):
        (tmp_path / name).write_text(json.dumps({'cells': cells, 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}))
        return tmp_path / name
    src = write('src.ipynb', [cell('#| hide\nplt.plot()', [img]), cell('f()', [
        {'output_type': 'stream', 'name': 'stderr', 'text': 'Traceback (most recent call last):\n\x1b[0;31mValueError'}])])
    proc = write('proc.ipynb', json.loads(src.read_text())['cells'][1:])  # nbdev drops the hidden cell
    found = render_pages.problems(src, proc)
    assert len(found) == 3 and 'image 1 is not on the page' in found[0], found
    assert len(render_pages.problems(src, src)) == 2  # with the image cell kept, only the traceback and the ANSI codes
