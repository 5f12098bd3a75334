"""`bx.Stack` (one `lax.scan` over stacked layers) vs a Python loop over separate blocks, at depths 2 to 64: the
compile time and the step time of a jitted train step (forward, backward, SGD), printed, never asserted:
`python benchmarks/stack_depth.py [--depths 2 4 8 16 32 64] [--out benchmarks/results/stack_depth.json]`.

The block is a ViT-sized encoder block (`TransformerBlock.encoder`, 4 heads of 16, width 64, MLP 256) on a batch of
16 sequences of 17 tokens, the shapes of 10_digits' ViT. Three ways to run `depth` of them:
- `loop`: `depth` separate blocks called in a Python loop (traced `depth` times, one straight-line program);
- `Stack`: `bx.Stack(..., depth)`, a `lax.scan` whose body is one block (traced once, whatever the depth);
- `Stack(unroll=True)`: the same stacked parameters, the scan fully unrolled by XLA (a loop's program).
Step times are medians of interleaved repeats, each the mean of `--number` steps; ratios are to the loop."""
import argparse, datetime, gc, json, os, platform, statistics, time
from pathlib import Path
import jax, jax.numpy as jnp
import blox as bx

WIDTH, HEADS, BATCH, TOKENS = 64, 4, 16, 17

def block(graph, rng): return bx.TransformerBlock.encoder(graph, HEADS, WIDTH // HEADS, 4 * WIDTH, rng=rng)

def stacked(depth: int, unroll=1):
    graph = bx.Graph('net'); rng = bx.Rng(graph / 'rng')
    stack = bx.Stack(graph / 'stack', lambda g: block(g, rng), depth, rng=rng, unroll=unroll)
    def apply(params, x): return stack(params, x, is_training=False)
    return apply, rng

def loop(depth: int):
    graph = bx.Graph('net'); rng = bx.Rng(graph / 'rng')
    blocks = [block(graph / f'block{i}', rng) for i in range(depth)]
    def apply(params, x):
        for b in blocks: x, params = b(params, x, is_training=False)
        return x, params
    return apply, rng

def train_step(apply):
    "A jitted, donated SGD step on the mean square of the output: the same math for every variant."
    def loss(trainable, rest, x):
        y, _ = apply(trainable.merge(rest), x)
        return jnp.mean(y ** 2)
    def step(trainable, rest, x):
        g = jax.grad(loss)(trainable, rest, x)
        return jax.tree.map(lambda p, g: p - 0.01 * g, trainable, g)
    return jax.jit(step, donate_argnums=0)

def setup(apply, rng, x):
    params = apply(rng.seed(bx.Params(), 0), x)[1]
    trainable, rest = params.split()
    step = train_step(apply)
    gc.collect()
    t = time.perf_counter()
    compiled = step.lower(trainable, rest, x).compile()
    return compiled, trainable, rest, time.perf_counter() - t

def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--depths', type=int, nargs='+', default=[2, 4, 8, 16, 32, 64])
    p.add_argument('--repeats', type=int, default=7)
    p.add_argument('--number', type=int, default=10)
    p.add_argument('--out', type=Path, help='write the rows as JSON here (the benchmarks page reads it)')
    p.add_argument('--budget', type=float, default=120.0,
                   help='skip a variant at a depth where its last compile, scaled by the depth ratio squared, exceeds this (s)')
    args = p.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}; block width {WIDTH}, batch {BATCH}x{TOKENS}")
    x = jax.random.normal(jax.random.key(0), (BATCH, TOKENS, WIDTH))
    print(f"{'depth':>5} | {'compile s: loop':>15} {'Stack':>7} {'unrolled':>8} | {'step ms: loop':>13} {'Stack':>7} "
          f"{'unrolled':>8} | {'Stack/loop':>10} {'unrolled/loop':>13}")
    last, rows = {}, []  # variant -> (depth, compile seconds); the JSON rows
    for depth in args.depths:
        variants = {'loop': loop(depth), 'Stack': stacked(depth), 'unrolled': stacked(depth, unroll=True)}
        variants = {k: v for k, v in variants.items()  # XLA's compile time of a straight-line program grows faster than its length
                    if k not in last or last[k][1] * (depth / last[k][0]) ** 2 <= args.budget}
        built = {k: setup(apply, rng, x) for k, (apply, rng) in variants.items()}
        last.update({k: (depth, b[3]) for k, b in built.items()})
        state = {k: b[1] for k, b in built.items()}
        times = {k: [] for k in built}
        for k, (compiled, _, rest, _) in built.items():  # warm up
            state[k] = jax.block_until_ready(compiled(state[k], rest, x))
        for _ in range(args.repeats):
            for k, (compiled, _, rest, _) in built.items():
                s = state[k]
                t = time.perf_counter()
                for _ in range(args.number): s = compiled(s, rest, x)
                state[k] = jax.block_until_ready(s)
                times[k].append((time.perf_counter() - t) / args.number)
        ms = {k: f"{1e3 * statistics.median(v):.2f}" for k, v in times.items()}
        ratio = {k: f"{statistics.median(a / b for a, b in zip(times[k], times['loop'])):.2f}x" if 'loop' in times else '-'
                 for k in times}
        c = {k: f"{b[3]:.2f}" for k, b in built.items()}
        g = lambda d, k: d.get(k, '-')  # '-': skipped, its compile predicted past --budget
        print(f"{depth:5d} | {g(c, 'loop'):>15} {g(c, 'Stack'):>7} {g(c, 'unrolled'):>8} | {g(ms, 'loop'):>13} "
              f"{g(ms, 'Stack'):>7} {g(ms, 'unrolled'):>8} | {g(ratio, 'Stack'):>10} {g(ratio, 'unrolled'):>13}", flush=True)
        rows += [{'depth': depth, 'variant': k, 'compile_s': built[k][3], 'step_s': statistics.median(times[k]),
                  'ratio_to_loop': statistics.median(a / b for a, b in zip(times[k], times['loop'])) if 'loop' in times else None}
                 for k in built]
    if args.out:
        machine = {'platform': jax.devices()[0].platform, 'cpus': os.cpu_count(), 'python': platform.python_version(),
                   'jax': jax.__version__, 'blox': bx.__version__}
        args.out.write_text(json.dumps({'date': datetime.date.today().isoformat(), 'machine': machine,
                                        'budget_s': args.budget, 'rows': rows}, indent=1) + '\n')
        print(f"wrote {args.out}")

if __name__ == '__main__':
    main()
