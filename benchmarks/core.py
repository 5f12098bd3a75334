"""Benchmarks of the blox core, printed as ratios (never asserted): `python benchmarks/core.py`.

1. Building: initialise N parameter arrays through `Module.get_param`, eagerly and under `jax.eval_shape`;
   the contract is that 20k arrays take at most 12x the time of 2k (linear growth, no copy per parameter).
2. Calling: a jitted function of `Params` vs the same function of a nested dict of the same arrays
   (flatten + dispatch + unflatten), at ~30, ~120 and ~480 arrays; the contract is ~1.1x at most.
3. A train step (split -> grad -> SGD -> merge) vs raw JAX on a dict with the same math and the same arrays.
4. `bx.display`: building its tree of modules and parameters, and treescope's text rendering of it, 1k vs 10k arrays.
Timings are the best of several repeats; run on an idle machine."""
import argparse, functools, gc, time
import jax, jax.numpy as jnp
import blox as bx

def best(fn, repeat=5, number=1):
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        for _ in range(number): fn()
        times.append((time.perf_counter() - t) / number)
    return min(times)

class Many(bx.Module):
    "A module holding `n` small parameters, created by `get_param` like any layer's."
    def __init__(self, graph, n: int, init, rng: bx.Rng | None = None): self.n, self.init, self.rng = n, init, rng
    def __call__(self, params, x):
        for i in range(self.n):
            w, params = self.get_param(params, f'w{i}', (4,), self.init, rng=self.rng)
        return x, params

PREMADE = jnp.zeros(4)
INITS = {
    'no jax work (container only)': (lambda key, shape, dtype: PREMADE, False),
    'constant init (jnp.zeros)': (jax.nn.initializers.zeros, False),
    'random init (normal)': (jax.nn.initializers.normal(), True),
}

def init_time(n: int, init, random: bool, abstract: bool) -> float:
    def run():
        graph = bx.Graph('net')
        rng = bx.Rng(graph / 'rng')
        model = Many(graph / 'many', n, init, rng if random else None)
        def build(): return model(rng.seed(bx.Params(), 0), jnp.zeros(4))[1]
        params = jax.eval_shape(build) if abstract else build()
        jax.tree.leaves(params)
    return best(run, repeat=5)

def raw_time(n: int, abstract: bool) -> float:
    "The same arrays made by raw JAX into a dict: the cost JAX itself adds."
    def build(): return {f'w{i}': jnp.zeros((4,)) for i in range(n)}
    return best(lambda: jax.tree.leaves(jax.eval_shape(build) if abstract else build()), repeat=5)

def set_time(n: int) -> float:
    "Just the container: `Params.set` of n new paths one by one, then flatten (no modules, no JAX work)."
    def run():
        p = bx.Params()
        for i in range(n): p = p.set(('net', f'layer{i}', 'kernel'), PREMADE)
        jax.tree.leaves(p)
    return best(run, repeat=5)

def building():
    print("1. building N parameter arrays (time at 20k / time at 2k; linear is 10x, the contract 12x)")
    small, large = set_time(2_000), set_time(20_000)
    print(f"   {'Params.set alone, then flatten':<52} 2k: {small * 1e3:7.1f} ms  20k: {large * 1e3:8.1f} ms  ratio {large / small:5.1f}x")
    for abstract in (False, True):
        small, large = raw_time(2_000, abstract), raw_time(20_000, abstract)
        where = 'jax.eval_shape' if abstract else 'eager'
        print(f"   {'raw JAX dict of jnp.zeros, ' + where:<52} 2k: {small * 1e3:7.1f} ms  20k: {large * 1e3:8.1f} ms  ratio {large / small:5.1f}x")
        for what, (init, random) in INITS.items():
            small, large = init_time(2_000, init, random, abstract), init_time(20_000, init, random, abstract)
            print(f"   {'blox ' + what + ', ' + where:<52} 2k: {small * 1e3:7.1f} ms  20k: {large * 1e3:8.1f} ms  ratio {large / small:5.1f}x")

def layers(n_arrays: int):
    "A dict and a Params holding the same arrays: (n_arrays // 2) layers of kernel [16, 16] and bias [16]."
    tree = {'net': {f'layer{i}': {'kernel': jnp.full((16, 16), 0.01), 'bias': jnp.zeros(16)} for i in range(n_arrays // 2)}}
    return tree, bx.Params.from_dict(tree)

def calling():
    print("2. a jitted call taking and returning the state (Params / nested dict of the same arrays)")
    f = jax.jit(lambda t: t)
    for n in (30, 120, 480):
        tree, params = layers(n)
        for x in (tree, params): jax.block_until_ready(f(x))
        t_dict = best(lambda: jax.block_until_ready(f(tree)), number=200)
        t_params = best(lambda: jax.block_until_ready(f(params)), number=200)
        flat = lambda x: jax.tree.unflatten(*reversed(jax.tree.flatten(x)))
        f_dict, f_params = best(lambda: flat(tree), number=2000), best(lambda: flat(params), number=2000)
        print(f"   {n:4d} arrays: call {t_params * 1e6:7.1f} us vs {t_dict * 1e6:7.1f} us = {t_params / t_dict:.2f}x;"
              f"  flatten+unflatten {f_params * 1e6:6.1f} us vs {f_dict * 1e6:6.1f} us = {f_params / f_dict:.2f}x")

class Stack(bx.Module):
    "`depth` dense layers with tanh, reading kernel/bias from params like raw JAX reads them from a dict."
    def __init__(self, graph, depth: int): self.depth = depth
    def __call__(self, params, x):
        for i in range(self.depth):
            node = self.path + (f'layer{i}',)
            x = jnp.tanh(x @ params[node + ('kernel',)].value + params[node + ('bias',)].value)
        return x, params

def train_step():
    print("3. a jitted, donated SGD train step (blox: split -> grad -> update -> merge; raw JAX: grad on a dict)")
    x, y = jnp.ones((8, 16)), jnp.zeros((8, 16))
    for n in (30, 120, 480):
        depth = n // 2
        tree, _ = layers(n)
        graph = bx.Graph('net')
        model = Stack(graph / 'stack', depth)
        params = bx.Params.from_dict({'net': {'stack': jax.tree.map(jnp.copy, tree['net'])}})  # own buffers: both are donated

        def raw_loss(t, x, y):
            for i in range(depth): x = jnp.tanh(x @ t[f'layer{i}']['kernel'] + t[f'layer{i}']['bias'])
            return jnp.mean((x - y) ** 2)
        @functools.partial(jax.jit, donate_argnums=0)
        def raw_step(t, x, y):
            g = jax.grad(raw_loss)(t, x, y)
            return jax.tree.map(lambda p, g: p - 0.01 * g, t, g)

        def loss(trainable, rest, x, y): return jnp.mean((model(trainable.merge(rest), x)[0] - y) ** 2)
        @functools.partial(jax.jit, donate_argnums=0)
        def blox_step(params, x, y):
            trainable, rest = params.split()
            g = jax.grad(loss)(trainable, rest, x, y)
            return jax.tree.map(lambda p, g: p - 0.01 * g, trainable, g).merge(rest)

        state = {'raw': tree['net'], 'blox': params}
        steps = {'raw': raw_step, 'blox': blox_step}
        for k in state:  # twice: the first outputs are committed arrays, which retraces once (raw JAX too)
            for _ in range(2): state[k] = jax.block_until_ready(steps[k](state[k], x, y))
        times = {'raw': [], 'blox': []}
        for _ in range(7):  # interleaved, best of 7
            for k in state:
                s, t = state[k], time.perf_counter()
                for _ in range(50): s = steps[k](s, x, y)
                state[k] = jax.block_until_ready(s)
                times[k].append((time.perf_counter() - t) / 50)
        t_raw, t_blox = min(times['raw']), min(times['blox'])
        print(f"   {n:4d} arrays: {t_blox * 1e6:8.1f} us vs raw {t_raw * 1e6:8.1f} us = {t_blox / t_raw:.2f}x")
    x = jnp.ones((2048, 16))
    s = blox_step(blox_step(state['blox'], x, x), x, x)
    jax.block_until_ready(s)
    t0 = time.perf_counter(); out = blox_step(s, x, x); t_return = time.perf_counter() - t0
    jax.block_until_ready(out); t_ready = time.perf_counter() - t0
    print(f"   async dispatch: a 480-array step on a [2048, 16] batch returns after {t_return * 1e6:.0f} us, "
          f"its result is ready after {t_ready * 1e6:.0f} us")

class Leaf(bx.Module):
    "A module with no behaviour, to hang parameters on."
    def __call__(self, params, x): return x, params

def display():
    import treescope
    from blox.graph import _view
    print("4. bx.display (time at 10k arrays / time at 1k; linear is 10x)")
    times = {}
    for n in (1_000, 10_000):
        graph = bx.Graph('net')
        for i in range(n // 2): Leaf(graph / f'layer{i}')
        params = bx.Params.from_dict({'net': {f'layer{i}': {'kernel': PREMADE, 'bias': PREMADE} for i in range(n // 2)}})
        times[n] = (best(lambda: _view(graph, params), repeat=5),
                    best(lambda: treescope.render_to_text(_view(graph, params)), repeat=3))
    for k, what in enumerate(('building the tree', 'the tree rendered as text by treescope')):
        small, large = times[1_000][k], times[10_000][k]
        print(f"   {what:<52} 1k: {small * 1e3:7.1f} ms  10k: {large * 1e3:8.1f} ms  ratio {large / small:5.1f}x")

if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--only', choices=['building', 'calling', 'train_step', 'display'])
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({jax.device_count()} devices)")
    for name in ('building', 'calling', 'train_step', 'display'):
        if args.only in (None, name): globals()[name]()
