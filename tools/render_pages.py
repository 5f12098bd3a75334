"""Look at the docs pages as a reader would, without Quarto (which cannot be installed here).

    python tools/render_pages.py [OUT]           (default OUT: /tmp/blox-pages)
    python tools/render_pages.py OUT --no-screenshots --reuse-proc
    python tools/render_pages.py OUT nbs/03c_attention.ipynb ...

1. Runs the docs preprocessing, `nbdev_proc_nbs`, with a stub Quarto (tools/docs_report.py's `proc_nbs`): `_proc/`
   holds each notebook as Quarto would receive it (export and hidden cells gone, show_doc rendered).
2. Converts each processed notebook to OUT/<page>.html with nbconvert, as Quarto would show it: `#|` lines dropped
   from code, the code of `echo: false` cells and all of `include: false` cells removed, images embedded.
3. Screenshots every page with headless Chromium (`chromium --headless --screenshot`, 1280 px wide, 4000 px tall)
   into OUT/<page>.png. Install it with `apt-get install -y chromium` (Debian) or set $CHROMIUM to a browser binary.
4. Checks every page, and exits non-zero on a problem: each image the source notebook stores appears in the processed
   notebook (an image in a `#| hide` cell never reaches the site) and in the HTML; no page shows a raw traceback
   (`Traceback (most recent call last)`, an error output) or ANSI escape junk in an output.

CI has no browser: tests/test_repo.py runs the browser-free part of step 4 on the processed notebooks (`problems`).
Open OUT/<page>.html in a browser, or look at the PNGs, to read the pages. Cost: ~1 minute of preprocessing, then
~10 s a page (22 pages: ~5 minutes on a loaded 2-core machine). nbconvert does not know Quarto's syntax: attributes
like `{target="_blank"}` on show_doc's source links and `:::` callouts show as text here, not on the site."""
import argparse, json, os, re, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / 'tools'))
from tools.shown import _directives, _is_false  # noqa: E402

_ANSI = re.compile(r'\x1b\[[\d;]*[A-Za-z]|\[(?:\d+;)*\d+m')  # escape codes, and their remains once ESC is dropped

def _src(x) -> str: return x if isinstance(x, str) else ''.join(x)

def images(nb: dict) -> list[str]:
    "The stored images of a notebook, each as the start of its data (enough to find it again)."
    return [_src(v).strip()[:200] for c in nb['cells'] if c['cell_type'] == 'code' for o in c.get('outputs', [])
            for k, v in o.get('data', {}).items() if k.startswith('image/')]


def problems(src: Path, proc: Path, html: str | None = None) -> list[str]:
    "What a reader of `src`'s page would see wrong: missing images, tracebacks, ANSI junk (`html`: also check the HTML)."
    s, p, bad = json.loads(src.read_text(encoding='utf-8')), json.loads(proc.read_text(encoding='utf-8')), []
    shown = images(p)
    for i, img in enumerate(images(s)):
        if img not in shown: bad.append(f"{src.name}: stored image {i + 1} is not on the page (is its cell hidden?)")
        elif html is not None and img[:100] not in html.replace('\n', ''):
            bad.append(f"{src.name}: stored image {i + 1} is not in the HTML")
    for i, c in enumerate(p['cells']):
        if c['cell_type'] != 'code' or _is_false(_directives(c), 'include:'): continue
        for o in c.get('outputs', []):
            text = _src(o.get('text', '')) + ''.join(_src(v) for k, v in o.get('data', {}).items() if k.startswith('text/'))
            if o.get('output_type') == 'error': bad.append(f"{src.name}: processed cell {i} shows an error output")
            if 'Traceback (most recent call last)' in text: bad.append(f"{src.name}: processed cell {i} shows a traceback")
            if _ANSI.search(text): bad.append(f"{src.name}: processed cell {i} shows ANSI escape codes")
    if html is not None:
        body = re.sub(r'<style.*?</style>|<script.*?</script>', '', html, flags=re.S)
        if 'Traceback (most recent call last)' in body: bad.append(f"{src.name}: the HTML shows a traceback")
    return bad

def as_quarto_shows(nb: dict) -> dict:
    "The notebook as Quarto renders it: front matter, `#|` lines, `echo: false` code and `include: false` cells removed."
    cells = []
    for c in nb['cells']:
        if c['cell_type'] == 'raw': continue  # the front matter nbdev writes (title, description): Quarto's, not shown
        if c['cell_type'] == 'code':
            d = _directives(c)
            if _is_false(d, 'include:'): continue
            c = {**c, 'source': '\n'.join(l for l in _src(c['source']).splitlines() if not l.lstrip().startswith('#|'))}
            if _is_false(d, 'echo:') or re.search(r'^show_doc', c['source'], re.M):
                c['metadata'] = {**c.get('metadata', {}), 'tags': ['remove_input']}
        cells.append(c)
    return {**nb, 'cells': cells}

def to_html(nb: dict) -> str:
    import nbformat
    from nbconvert import HTMLExporter
    from traitlets.config import Config
    cfg = Config()
    cfg.TagRemovePreprocessor.enabled = True
    cfg.TagRemovePreprocessor.remove_input_tags = {'remove_input'}
    html, _ = HTMLExporter(config=cfg, template_name='lab').from_notebook_node(nbformat.reads(json.dumps(as_quarto_shows(nb)), as_version=4))
    return html

def chromium() -> str | None:
    return os.environ.get('CHROMIUM') or next((shutil.which(b) for b in ('chromium', 'chromium-browser', 'google-chrome')
                                               if shutil.which(b)), None)

def screenshot(browser: str, html: Path, png: Path, size=(1280, 4000)) -> None:
    subprocess.run([browser, '--headless=new', '--no-sandbox', '--disable-gpu', '--hide-scrollbars',
                    f'--window-size={size[0]},{size[1]}', f'--screenshot={png}', html.resolve().as_uri()],
                   check=True, capture_output=True, timeout=120)

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('out', nargs='?', default='/tmp/blox-pages')
    ap.add_argument('notebooks', nargs='*', help='only these (default: every page)')
    ap.add_argument('--no-screenshots', action='store_true')
    ap.add_argument('--reuse-proc', action='store_true', help="use _proc/ as it is (skip nbdev_proc_nbs, ~1 minute)")
    args = ap.parse_intermixed_args()
    import docs_report
    out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
    proc = ROOT / '_proc' if args.reuse_proc and (ROOT / '_proc').exists() else docs_report.proc_nbs()
    srcs = [Path(p).resolve() for p in args.notebooks] or docs_report.notebooks()
    browser = None if args.no_screenshots else chromium()
    if not args.no_screenshots and browser is None: sys.exit("no Chromium: apt-get install -y chromium, or --no-screenshots")
    bad = []
    for src in srcs:
        nb = json.loads((proc / src.name).read_text(encoding='utf-8'))
        html = to_html(nb)
        page = out / f'{src.stem}.html'
        page.write_text(html, encoding='utf-8')
        found = problems(src, proc / src.name, html)
        bad += found
        if browser: screenshot(browser, page, out / f'{src.stem}.png')
        print(f"{src.name:24} {len(images(nb)):2} images, {len(html) // 1024:5} KB of HTML"
              f"{', screenshot' if browser else ''}{'' if not found else '   ' + '; '.join(found)}", flush=True)
    print(f"pages in {out}; {len(bad)} problem(s)")
    sys.exit(1 if bad else 0)

if __name__ == '__main__':
    main()
