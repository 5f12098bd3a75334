"""Creating a model's parameters: raw JAX, blox's first call (eager init: the forward pass creates each parameter as it
reaches it) and `Module.init` (an abstract pass, then only the initialisers): `python benchmarks/init.py`.
Times are printed, never asserted.

Models: a 2-block Transformer built from separate `TransformerBlock`s, the same as a `bx.TransformerLM` (its blocks in a
`bx.Stack`, so its arrays are stacked: fewer and larger), MLPs of 100, 1000 and 10000
`Linear(32)` layers (200, 2k, 20k arrays) and a ConvNet (two 3x3 convolutions, global pooling, a dense head). Raw JAX:
one `jax.random.split` and one initialiser per array (lecun_normal for kernels, zeros/ones for the rest), eagerly.
`warm`: rounds interleave the variants in a rotating order; the ratio is the median over rounds of (variant / raw) in
the same round. `first`: the first call in a fresh process after a warm-up of JAX itself, the variants' processes
interleaved; the ratio is the median of (variant / raw) over process rounds. `--only NAME,...` picks models;
`--rounds`, `--processes` set the repetitions. Run it with PYTHONPATH pointing at another checkout for a before/after
(a blox without `Module.init` skips that variant)."""
import argparse, os, statistics, subprocess, sys, time
import jax, jax.numpy as jnp, numpy as np
import blox as bx

WIDTH = 32

def build(name):
    "`(model, rng, inputs, options)` of the model called `name`."
    graph = bx.Graph(name.split()[0])
    rng, node = bx.Rng(graph / 'rng'), graph / 'model'
    if name == 'transformer':
        layers = [bx.Embed(node / 'embed', 128, 64, rng=rng)]
        layers += [bx.TransformerBlock.decoder(node / f'block{i}', 4, 16, 256, rng=rng) for i in range(2)]
        model = bx.Sequential(node, layers + [bx.RMSNorm(node / 'norm')])
        return model, rng, (jnp.zeros((1, 8), jnp.int32),), {'is_training': False}
    if name == 'transformerlm':  # the same sizes, its blocks in a `bx.Stack` (stacked parameters, one scan)
        model = bx.TransformerLM(node, 128, depth=2, num_heads=4, head_dim=16, hidden_features=256, rng=rng)
        return model, rng, (jnp.zeros((1, 8), jnp.int32),), {'is_training': False}
    if name == 'convnet':
        model = bx.Sequential(node, [bx.Conv(node / 'conv0', 32, (3, 3), rng=rng), jax.nn.relu, bx.Conv(node / 'conv1', 64, (3, 3), rng=rng),
                                     jax.nn.relu, bx.GlobalPool(node / 'pool'), bx.Linear(node / 'head', 10, rng=rng)])
        return model, rng, (jnp.zeros((1, 16, 16, 3)),), {}
    depth = int(name.split()[1])
    model = bx.Sequential(node, [f for i in range(depth) for f in (bx.Linear(node / f'layer{i}', WIDTH, rng=rng), jnp.tanh)])
    return model, rng, (jnp.zeros((1, WIDTH)),), {}

def variants(name):
    "`{variant: function making the params}`; `raw` makes arrays of the same shapes with the same initialisers."
    model, rng, inputs, options = build(name)
    shapes = [(p.value.shape, p.value.dtype) for path, p in jax.eval_shape(lambda: model(rng.seed(bx.Params(), 0), *inputs, **options)[1]).items()
              if path[:len(rng.path)] != rng.path]
    normal = jax.nn.initializers.lecun_normal()
    def raw():
        keys = jax.random.split(jax.random.key(0), len(shapes))
        return [normal(key, s, d) if len(s) > 1 else jnp.zeros(s, d) for key, (s, d) in zip(keys, shapes)]
    fns = {'raw': raw, 'first call': lambda: model(rng.seed(bx.Params(), 0), *inputs, **options)[1]}
    if hasattr(bx.Module, 'init'): fns['Module.init'] = lambda: model.init(rng.seed(bx.Params(), 0), *inputs, **options)
    return fns, len(shapes)

def once(fn) -> float:
    t = time.perf_counter(); jax.block_until_ready(fn()); return time.perf_counter() - t

CHILD = """import sys, time
sys.path.insert(0, {here!r})
import jax, init
jax.block_until_ready(jax.jit(lambda a: a * 2)(jax.numpy.ones(3)))  # JAX's own first-use costs, paid before
fn = init.variants({name!r})[0][{variant!r}]
print(init.once(fn))"""

def first(name, variant) -> float:
    "Seconds of the first call of `variant` in a fresh Python process."
    code = CHILD.format(here=os.path.dirname(os.path.abspath(__file__)), name=name, variant=variant)
    return float(subprocess.run([sys.executable, '-c', code], check=True, capture_output=True, text=True).stdout.split()[-1])

def report(name, arrays, kind, times):
    for variant, t in times.items():
        ratios = [a / b for a, b in zip(t, times['raw'])]
        print(f"  {name:<13} {arrays:6d} arrays  {kind:<6} {variant:<12} {statistics.median(t) * 1e3:10.2f} ms  "
              f"{statistics.median(ratios):6.2f}x raw  (q1 {np.percentile(ratios, 25):.2f}, q3 {np.percentile(ratios, 75):.2f})", flush=True)

if __name__ == '__main__':
    parser = argparse.ArgumentParser()
    parser.add_argument('--only', default='transformer,transformerlm,mlp 100,mlp 1000,mlp 10000,convnet')
    parser.add_argument('--rounds', type=int, default=9)
    parser.add_argument('--processes', type=int, default=5)
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, blox from {os.path.dirname(bx.__file__)}")
    for name in args.only.split(','):
        fns, arrays = variants(name)
        out = {v: fn() for v, fn in fns.items() if v != 'raw'}
        if len(out) == 2:  # what init makes is what the first call makes, bit for bit
            a, b = (jax.tree.leaves(p) for p in out.values())
            assert all(np.array_equal(jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x,
                                      jax.random.key_data(y) if jnp.issubdtype(y.dtype, jax.dtypes.prng_key) else y) for x, y in zip(a, b))
        rounds = max(3, args.rounds // (1 + arrays // 2000))  # fewer rounds of the big models
        warm = {v: [] for v in fns}
        for r in range(rounds):
            order = list(fns)[r % len(fns):] + list(fns)[:r % len(fns)]
            for v in order: warm[v].append(once(fns[v]))
        report(name, arrays, 'warm', warm)
        cold = {v: [] for v in fns}
        for r in range(max(3, args.processes // (1 + arrays // 2000))):
            order = list(fns)[r % len(fns):] + list(fns)[:r % len(fns)]
            for v in order: cold[v].append(first(name, v))
        report(name, arrays, 'first', cold)
