"""What carrying the Rng state through a jitted step costs: `python benchmarks/rng_carry.py` (ratios printed, never asserted).

A jitted, donated step over a 15-layer blox MLP that draws one key, with the seed stored as blox stores it (uint32 key
data), stored as a typed PRNG key (as before 2026-12), and with no Rng state at all (a constant key); 40 rounds in rotating
order, 300 pipelined steps each; ratio: median of per-round ratios to the step carrying no Rng state."""
import time, numpy as np, jax, jax.numpy as jnp, blox as bx
g = bx.Graph('mlp'); rng = bx.Rng(g / 'rng')
layers = [bx.Linear(g / f'l{i}', 16, rng=rng) for i in range(15)]
x = jnp.ones((1, 16))
params = rng.seed(bx.Params(), 0)
for l in layers: _, params = l(params, x)
print('seed stored as', params[('mlp', 'rng', 'seed')].value.dtype)
def with_rng(p):
    key, p = rng(p)
    return jax.tree.map(lambda a: a * 0.999 if a.dtype == jnp.float32 else a, p), jax.random.uniform(key)
def without(p): return jax.tree.map(lambda a: a * 0.999, p), jax.random.uniform(jax.random.fold_in(jax.random.key(0), 1))
bare = params.split(lambda path, _: path[1] != 'rng')[0] if False else bx.Params({k: v for k, v in params.items() if k[1] != 'rng'})
typed = params.set(('mlp', 'rng', 'seed'), jax.random.key(0), metadata={})
variants = {'seed as typed key': (jax.jit(with_rng, donate_argnums=0), typed), 'no Rng state': (jax.jit(without, donate_argnums=0), bare), 'with Rng state': (jax.jit(with_rng, donate_argnums=0), params)}
states = {}
for k, (f, p) in variants.items():
    s = jax.tree.map(jnp.copy, p)
    for _ in range(3): s, o = f(s)
    states[k] = s
res = {k: [] for k in variants}
for r in range(40):
    names = list(variants); names = names[r % 3:] + names[:r % 3]
    for k in names:
        f, s = variants[k][0], states[k]
        t = time.perf_counter()
        for _ in range(300): s, o = f(s)
        jax.block_until_ready(s); res[k].append((time.perf_counter() - t) / 300 * 1e6); states[k] = s
b = np.array(res['no Rng state'])
for k, v in res.items(): print(f"{k:16} {np.median(v):6.1f} us/step (pipelined), ratio {np.median(np.array(v) / b):.3f}")
