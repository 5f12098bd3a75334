"""Creating a model's parameters: blox's eager init, blox's init under `jax.jit`, and raw JAX making the same arrays
with the same initialisers: `python benchmarks/init.py` (times printed, never asserted).

The model: `bx.TransformerLM(vocab 128, depth 2, 4 heads of 16, width 64)`. Raw JAX: one `jax.random.split` and
one initialiser call per array, into a dict, eagerly and under `jax.jit`. `first` is the first call in this process
(tracing and compiling included, after a warm-up of JAX itself on another model); `warm` is the median of later calls.
blox under `jax.jit` is checked to give the eager init's keys bit for bit and its floats within a few float32 ulps
(JAX promises the same random bits under `jax.jit`, not the same rounding of the floats made from them)."""
import statistics, time
import jax, jax.numpy as jnp, numpy as np
import blox as bx

def timed(fn, repeat: int = 20) -> tuple[float, float]:
    t = time.perf_counter(); jax.block_until_ready(fn()); first = time.perf_counter() - t
    times = []
    for _ in range(repeat):
        t = time.perf_counter(); jax.block_until_ready(fn()); times.append(time.perf_counter() - t)
    return first, statistics.median(times)

def model(vocab=128, depth=2, heads=4, head_dim=16):
    graph = bx.Graph('lm')
    rng = bx.Rng(graph / 'rng')
    lm = bx.TransformerLM(graph / 'model', vocab, depth=depth, num_heads=heads, head_dim=head_dim, rng=rng)
    def init(seed=0): return lm(rng.seed(bx.Params(), seed=seed), jnp.zeros((1, 8), jnp.int32), is_training=False)[1]
    return init

if __name__ == '__main__':
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}")
    jax.block_until_ready(jax.jit(model(vocab=64, depth=1))())   # JAX's own first-use costs, paid elsewhere
    init = model()
    shapes = {k: (p.value.shape, p.value.dtype) for k, p in jax.eval_shape(init).items()
              if jnp.issubdtype(p.value.dtype, jnp.floating)}
    normal = jax.nn.initializers.lecun_normal()
    def raw(seed=0):
        keys = jax.random.split(jax.random.key(seed), len(shapes))
        return {'/'.join(k): normal(key, s, d) if len(s) > 1 else jnp.ones(s, d) for key, (k, (s, d)) in zip(keys, shapes.items())}
    rows = {'raw JAX, eager': timed(raw), 'raw JAX, jax.jit': timed(jax.jit(raw)),
            'blox, eager': timed(init), 'blox, jax.jit': timed(jax.jit(model()))}
    eager = init()
    pairs = [(np.asarray(a), np.asarray(b)) for a, b in zip(jax.tree.leaves(jax.jit(init)()), jax.tree.leaves(eager))]
    assert all(np.array_equal(a, b) for a, b in pairs if not np.issubdtype(a.dtype, np.floating))  # seed, counter
    ulp = max(np.testing.assert_array_max_ulp(a, b, 16).max() for a, b in pairs if np.issubdtype(a.dtype, np.floating))
    print(f"{len(eager)} arrays; blox under jax.jit gives the eager values to within {ulp:.0f} float32 ulp")
    base = rows['raw JAX, eager'][1]
    for name, (first, warm) in rows.items():
        print(f"{name:>18}: first {first * 1e3:8.1f} ms   warm {warm * 1e3:8.2f} ms = {warm / base:6.2f}x raw eager")
