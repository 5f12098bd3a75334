"""The benchmarks run: `peers.py --quick`, `step_overhead.py --quick`, and `init.py` and `stack_depth.py` at their
smallest, each in a fresh process on one device.

Their numbers are printed, never asserted (on a shared 2-core machine they mean little); what is asserted is that
every library and every section runs, that each library's first losses agree with raw JAX's (the scripts assert it
before timing), and that the JSON the benchmarks page reads has every section it plots."""
import json, os, re, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, 'XLA_FLAGS': re.sub(r'--xla_force_host_platform_device_count=\d+', '', os.environ.get('XLA_FLAGS', ''))}

def run(*args, timeout=600):
    r = subprocess.run([sys.executable, *args], cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(args)} failed:\n{r.stdout[-4000:]}\n{r.stderr[-8000:]}"
    return r.stdout

def test_peers_quick(tmp_path):
    out = tmp_path / 'peers.json'
    run('benchmarks/peers.py', '--quick', '--out', str(out))
    results = json.loads(out.read_text())
    libraries = {row['library'] for row in results['steps']}
    assert {'raw', 'raw again', 'blox', 'equinox', 'haiku'} <= libraries and any('nnx' in l for l in libraries), libraries
    for section in ('steps', 'async', 'init', 'trace', 'compile', 'import', 'first_init'):
        assert results[section], f"no rows in section {section!r}"
    stored = json.loads((ROOT / 'benchmarks/results/peers.json').read_text())  # what the benchmarks page shows
    assert set(stored) - {'reruns'} == set(results), set(stored) ^ set(results)
    before = results['import']
    run('benchmarks/peers.py', '--quick', '--only', 'import', '--merge', str(out), '--why', 'a smoke test')
    merged = json.loads(out.read_text())
    assert merged['reruns'] == [{'command': 'python benchmarks/peers.py --quick --only import', 'date': merged['reruns'][0]['date'],
                                 'sections': ['import'], 'why': 'a smoke test'}], merged['reruns']
    assert merged['import'] != before and merged['steps'] == results['steps']  # the rerun's section replaced, the rest kept

def test_step_overhead_quick():
    assert 'arrays pipelined' in run('benchmarks/step_overhead.py', '--quick')

def test_init_quick():
    "Module.init's params equal the first call's (the script asserts it before timing), on the smallest model."
    assert 'Module.init' in run('benchmarks/init.py', '--only', 'transformer', '--rounds', '3', '--processes', '1')

def test_stack_depth_quick(tmp_path):
    out = tmp_path / 'stack_depth.json'
    run('benchmarks/stack_depth.py', '--depths', '2', '--repeats', '1', '--number', '1', '--out', str(out))
    rows = json.loads(out.read_text())['rows']
    assert {r['variant'] for r in rows} == {'loop', 'Stack', 'unrolled'}, rows
    stored = json.loads((ROOT / 'benchmarks/results/stack_depth.json').read_text())  # what the benchmarks page shows
    assert {r['depth'] for r in stored['rows']} == {2, 4, 8, 16, 32, 64}, stored['rows']
