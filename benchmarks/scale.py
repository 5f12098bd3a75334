"""Benchmarks of `blox.sharding`, printed as ratios (never asserted): `python benchmarks/scale.py` (`--quick`: smaller).

One training step of a small char-level `TransformerLM` (vocab 128, depth 2, 4 heads of 16, batch 32 windows of 65
bytes of Python's `textwrap` source; `--quick`: heads of 8, batch 16 windows of 33), `bx.train_step(loss_fn,
optax.adamw(3e-3))` under `jax.jit` with the state donated, as in nbs/05_scale.ipynb:

- one device: state and batch on `jax.devices()[0]`, `jax.jit(step, donate_argnums=0)`;
- each layout, the state placed by `bx.shardings(state, mesh, rules)` (created on its devices by a jitted init with
  `out_shardings`), the batch split over 'data', `jax.jit(step, in_shardings=(state_sh, batch_sh),
  out_shardings=(state_sh, None), donate_argnums=0)`: data parallel (mesh (n,) 'data', nothing split), tensor
  parallel (mesh (n//2, 2) ('data', 'model'), 'mlp', 'heads', 'kv_heads', 'vocab' over 'model'), fsdp (mesh (n,),
  'embed' over 'data') and fsdp + tensor parallel (the 2-D mesh, both). Meshes have Auto axes. The FSDP layouts
  gather the weights for the computation inside the loss (`bx.constrain(params, mesh, compute_rules)`, compute
  rules: the same without 'embed'), as 05_scale does; 'fsdp,
  unconstrained' leaves the choice to the compiler, which on this model all-gathers the batch instead and all-reduces
  full-batch activations.

Printed: a numerics check first (every layout's first 3 losses against one device's, within 1e-4); then per layout
the median step time and its IQR, the ratio to the one-device step (paired within each round, median and IQR), the
bytes of params + optimizer state one device holds (`bx.device_bytes`), the peak bytes per device of the jitted
init (`memory_analysis()`: output + temp) and the collectives in the compiled step. Each timing runs `--steps` steps
on batches already on the devices and blocks once at the end; every layout is compiled and warmed up first, and the
rounds are interleaved, the order rotated each round.

The devices are XLA's emulated CPU devices (`XLA_FLAGS=--xla_force_host_platform_device_count=8`, set here before
jax is imported unless XLA_FLAGS already sets a count; `--devices N` for another). All of them share the host's
cores, so a ratio measures the cost of partitioning and communication, not a speedup: one device already uses
every core. Speedups need real accelerators. Run on an idle machine."""
import argparse, os, sys, platform

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
LAYOUTS = ('dp', 'tp', 'fsdp', 'fsdp_tp', 'fsdp_unconstrained')
parser.add_argument('--only', choices=LAYOUTS, action='append',
                    help='time only this layout beside the one-device step (may be repeated)')
parser.add_argument('--quick', action='store_true', help='a smaller model and batch, fewer rounds (~30 s)')
parser.add_argument('--repeat', type=int, default=None, help='interleaved rounds (default 15, --quick 5)')
parser.add_argument('--steps', type=int, default=None, help='steps per timing (default 10, --quick 5)')
parser.add_argument('--devices', type=int, default=None,
                    help='emulated CPU devices (default 8, or the count XLA_FLAGS already sets)')
args = parser.parse_args()

_COUNT = '--xla_force_host_platform_device_count'
_flags = os.environ.get('XLA_FLAGS', '')
if args.devices is not None:  # replace any count already there
    _flags = ' '.join(f for f in _flags.split() if not f.startswith(_COUNT))
    os.environ['XLA_FLAGS'] = f"{_flags} {_COUNT}={args.devices}".strip()
elif _COUNT not in _flags:
    os.environ['XLA_FLAGS'] = f"{_flags} {_COUNT}=8".strip()

import gc, re, shlex, time
from pathlib import Path
import textwrap as _source
import jax, jax.numpy as jnp, numpy as np, optax
from jax.sharding import AxisType, NamedSharding, PartitionSpec as P
import blox as bx

NAMES = {'dp': 'data parallel', 'tp': 'tensor parallel', 'fsdp': 'fsdp', 'fsdp_tp': 'fsdp + tensor parallel',
         'fsdp_unconstrained': 'fsdp, unconstrained'}
COLLECTIVES = ('all-gather', 'all-reduce', 'reduce-scatter', 'all-to-all', 'collective-permute')

def human(n: float) -> str: return bx.graph._human_bytes(int(n))

def quartiles(xs):
    q1, med, q3 = np.percentile(np.asarray(xs), [25, 50, 75])
    return med, q3 - q1

def setup(quick: bool):
    "The model's init, the loss, the optimizer and a list of [batch, window] int32 windows of real text."
    vocab, depth, heads, head_dim = 128, 2, 4, 8 if quick else 16
    batch_size, window = (16, 33) if quick else (32, 65)
    graph = bx.Graph('lm')
    rng = bx.Rng(graph / 'rng')
    lm = bx.TransformerLM(graph / 'model', vocab, depth=depth, num_heads=heads, head_dim=head_dim, rng=rng)
    def init(seed=0):
        return lm(rng.seed(bx.Params(), seed=seed), jnp.zeros((1, 8), jnp.int32), is_training=False)[1].locked()
    def loss_fn(params, batch, *, is_training):
        logits, params = lm(params, batch[:, :-1], is_training=is_training)
        return (optax.softmax_cross_entropy_with_integer_labels(logits, batch[:, 1:]).mean(), {}), params
    text = np.frombuffer(Path(_source.__file__).read_text().encode('ascii', 'replace'), np.uint8).astype(np.int32)
    starts = np.random.default_rng(0).integers(0, len(text) - window, (16, batch_size))
    windows = [text[s[:, None] + np.arange(window)] for s in starts]
    size = dict(vocab=vocab, depth=depth, num_heads=heads, head_dim=head_dim, batch=batch_size, window=window)
    return init, loss_fn, optax.adamw(3e-3), windows, size

def layouts(abstract, n: int, only):
    "name: (mesh, rules, compute rules or None) as in 05_scale."
    auto = lambda shape, names: jax.make_mesh(shape, names, axis_types=(AxisType.Auto,) * len(names))
    model_axis = 2 if n % 2 == 0 else 1
    data_mesh, grid = auto((n,), ('data',)), auto((n // model_axis, model_axis), ('data', 'model'))
    replicate = {name: None for name in bx.logical_axes(abstract)}
    tp = {'mlp': 'model', 'heads': 'model', 'kv_heads': 'model', 'vocab': 'model'}
    fsdp = {'embed': 'data'}
    out = {'dp': (data_mesh, replicate, None), 'tp': (grid, replicate | tp, None),
           'fsdp': (data_mesh, replicate | fsdp, replicate), 'fsdp_tp': (grid, replicate | fsdp | tp, replicate | tp),
           'fsdp_unconstrained': (data_mesh, replicate | fsdp, None)}
    return {k: v for k, v in out.items() if not only or k in only}

def collectives(compiled) -> str:
    "Counts of the collective ops in a compiled program's HLO, e.g. 'all-reduce 9, all-gather 12'."
    hlo = compiled.as_text()
    counts = {c: len(re.findall(rf'= [^=\n]*? {c}(?:-start)?\(', hlo)) for c in COLLECTIVES}
    return ', '.join(f"{c} {k}" for c, k in counts.items() if k) or 'none'

def prepare(init, loss_fn, optimizer, windows, layout):
    "A fresh state, the jitted donated step, the batches placed for it, the init's peak bytes and the step's HLO."
    if layout is not None and layout[2] is not None:  # FSDP: stored split, gathered for the computation
        mesh, _, compute = layout
        def gathered(params, batch, *, is_training):
            return loss_fn(bx.constrain(params, mesh, compute), batch, is_training=is_training)
        step = bx.train_step(gathered, optimizer)
    else: step = bx.train_step(loss_fn, optimizer)
    create = lambda: bx.TrainState.create(init(), optimizer)
    if layout is None:
        device = jax.devices()[0]
        jinit, jstep = jax.jit(create), jax.jit(step, donate_argnums=0)
        place = lambda b: jax.device_put(b, device)
    else:
        mesh, rules, _ = layout
        state_sh = bx.shardings(jax.eval_shape(create), mesh, rules)
        batch_sh = NamedSharding(mesh, P('data'))
        jinit = jax.jit(create, out_shardings=state_sh)
        jstep = jax.jit(step, in_shardings=(state_sh, batch_sh), out_shardings=(state_sh, None), donate_argnums=0)
        place = lambda b: jax.device_put(b, batch_sh)
    compiled_init = jinit.lower().compile()
    mem = compiled_init.memory_analysis()
    state = jinit()
    if layout is None: state = jax.device_put(state, device)  # already there: jax.devices()[0] is the default
    batches = [place(b) for b in windows]
    compiled_step = jstep.lower(state, batches[0]).compile()
    return dict(state=state, step=jstep, batches=batches, peak=mem.output_size_in_bytes + mem.temp_size_in_bytes,
                hlo=collectives(compiled_step), temp=compiled_step.memory_analysis().temp_size_in_bytes)

def numerics(runs: dict, first: int = 3) -> bool:
    "Each layout's first losses from the same initial state on the same batches, against one device's."
    print(f"numerics: the first {first} losses of each layout, from the same initial state on the same batches")
    losses = {}
    for name, r in runs.items():
        state, out = r['state'], []
        for b in r['batches'][:first]:
            state, metrics = r['step'](state, b)
            out.append(float(metrics['loss']))
        r['state'] = state
        losses[name] = np.array(out)
    ok = True
    for name, values in losses.items():
        diff = float(np.max(np.abs(values - losses['one device'])))
        good = diff <= 1e-4
        ok &= good
        print(f"  {NAMES.get(name, name):>22}  {'  '.join(f'{v:.6f}' for v in values)}  "
              f"max |diff| {diff:.1e}  {'ok' if good else 'MISMATCH (> 1e-4)'}")
    return ok

def timings(runs: dict, rounds: int, steps: int) -> dict:
    "Seconds per step of every run, `rounds` interleaved rounds of `steps` steps each, the order rotated each round."
    names = list(runs)
    for r in runs.values():  # warm up: compiled already; a few steps more
        for b in r['batches'][:2]: r['state'], _ = r['step'](r['state'], b)
        jax.block_until_ready(r['state'])
    times = {k: [] for k in names}
    for i in range(rounds):
        for k in names[i % len(names):] + names[:i % len(names)]:
            r = runs[k]
            fn, state, batches = r['step'], r['state'], r['batches']
            gc.collect()
            t = time.perf_counter()
            for j in range(steps): state, metrics = fn(state, batches[j % len(batches)])
            jax.block_until_ready((state, metrics))
            times[k].append((time.perf_counter() - t) / steps)
            r['state'] = state
    return times

def main():
    quick = args.quick
    rounds = args.repeat or (5 if quick else 15)
    steps = args.steps or (5 if quick else 10)
    n = jax.device_count()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPU cores, {platform.platform()}; python "
          f"{platform.python_version()}")
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({n} devices), optax {optax.__version__}; "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}")
    print(f"command: python {' '.join(shlex.quote(a) for a in sys.argv)}")
    if jax.devices()[0].platform == 'cpu' and n > 1:
        print(f"NOTE: these {n} devices are emulated on the CPU and share its {os.cpu_count()} cores. A ratio to "
              f"one device measures\n      partitioning + communication overhead, not speedup; real speedups need "
              f"real accelerators.")
    init, loss_fn, optimizer, windows, size = setup(quick)
    abstract = jax.eval_shape(init)
    print("model: TransformerLM " + ', '.join(f"{k} {v}" for k, v in size.items()) +
          f"; {sum(x.size for x in jax.tree.leaves(abstract)):,} parameters; optax.adamw(3e-3)")
    print(f"timing: {rounds} interleaved rounds of {steps} steps each (order rotated per round)\n")

    setups = {'one device': None, **layouts(abstract, n, args.only)}
    runs = {}
    for name, layout in setups.items():
        t = time.perf_counter()
        runs[name] = prepare(init, loss_fn, optimizer, windows, layout)
        runs[name]['compile'] = time.perf_counter() - t
    ok = numerics(runs)
    print()
    times = timings(runs, rounds, steps)

    base = np.asarray(times['one device'])
    head = (f"{'layout':>22}  {'mesh':>14}  {'step ms':>8}  {'IQR':>6}  {'vs one device':>13}  {'IQR':>6}  "
            f"{'state/device':>12}  {'init peak/device':>16}  {'step temp/device':>16}  {'compile s':>9}")
    print(head)
    print('-' * len(head))
    for name, r in runs.items():
        med, iqr = quartiles(np.asarray(times[name]) * 1e3)
        ratio, riqr = quartiles(np.asarray(times[name]) / base)
        mesh = 'device 0' if setups[name] is None else ' x '.join(f"{a} {s}" for a, s in setups[name][0].shape.items())
        print(f"{NAMES.get(name, name):>22}  {mesh:>14}  {med:8.2f}  {iqr:6.2f}  {ratio:12.2f}x  {riqr:6.2f}  "
              f"{human(bx.device_bytes(r['state'])):>12}  {human(r['peak']):>16}  {human(r['temp']):>16}  {r['compile']:9.2f}")
    print("\ncollectives in each compiled step (HLO op counts):")
    for name, r in runs.items(): print(f"  {NAMES.get(name, name):>22}: {r['hlo']}")
    print("\nratios: median of per-round (layout / one device) step times; IQR: 75th - 25th percentile. "
          "state/device: bx.device_bytes\nof params + optimizer state; init peak: memory_analysis() output + temp of "
          "the jitted TrainState init; step temp: the compiled step's\ntemporaries (activations, gathered weights). compile s: setup\n(init, placement, compiling the step). Emulated CPU devices "
          "share the host's cores: overhead, not speedup.")
    if not ok: print("\nNUMERICS MISMATCH: some layout's losses differ from one device's by more than 1e-4")

if __name__ == '__main__':
    t0 = time.perf_counter()
    main()
    print(f"\ntotal {time.perf_counter() - t0:.0f} s")
