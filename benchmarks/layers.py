"""Benchmarks of the layer catalogue, printed as ratios (never asserted): `python benchmarks/layers.py`.

1. Scan over layers: compile time of a `Stack` of 64 Transformer blocks vs one of 2 (contract: at most 1.5x),
   beside a Python loop over separate blocks (what Stack avoids).
2. Compute-bound train steps (forward + backward + SGD, jitted, donated): the catalogue convnet and TransformerLM
   vs the same math written in raw JAX on a dict of the same arrays (contract: within 1.05x).
Timings are the best of several interleaved repeats; run on an idle machine. `--quick` uses smaller sizes."""
import argparse, functools, gc, math, time
import jax, jax.numpy as jnp
import blox as bx

def compile_seconds(fn, *args) -> float:
    gc.collect()
    t = time.perf_counter()
    jax.jit(fn).lower(*args).compile()
    return time.perf_counter() - t

def scan_compile(width: int):
    print("1. compile time of a train step over a stack of Transformer blocks (width %d)" % width)
    x = jnp.ones((2, 16, width))
    heads = width // 32
    results = {}
    for depth in (2, 64):
        graph = bx.Graph('net')
        rng = bx.Rng(graph / 'rng')
        stack = bx.Stack(graph / 'stack', lambda g: bx.TransformerBlock.decoder(g, heads, 32, 4 * width, rng=rng), depth, rng=rng)
        params = stack(rng.seed(bx.Params(), 0), x, is_training=False)[1]
        trainable, rest = params.split()
        loss = lambda t, x: jnp.mean(stack(t.merge(rest), x, is_training=False)[0] ** 2)
        results[depth] = min(compile_seconds(jax.grad(loss), trainable, x) for _ in range(3))
        print(f"   Stack, depth {depth:2d}: {results[depth]:6.2f} s")
    print(f"   ratio 64 / 2: {results[64] / results[2]:.2f}x (contract: at most 1.5x)")
    graph = bx.Graph('net')
    rng = bx.Rng(graph / 'rng')
    blocks = [bx.TransformerBlock.decoder(graph / f'block{i}', heads, 32, 4 * width, rng=rng) for i in range(16)]
    params = rng.seed(bx.Params(), 0)
    for b in blocks: params = b(params, x, is_training=False)[1]
    trainable, rest = params.split()
    def unrolled(t, x):
        p = t.merge(rest)
        for b in blocks: x, p = b(p, x, is_training=False)
        return jnp.mean(x ** 2)
    print(f"   for comparison, a Python loop over 16 separate blocks: {compile_seconds(jax.grad(unrolled), trainable, x):6.2f} s")

def time_steps(steps: dict, state: dict, args: tuple, repeats=7, number=10) -> dict:
    "Best seconds per step of each jitted, donated step function, measured interleaved."
    for k in steps:
        for _ in range(2): state[k] = jax.block_until_ready(steps[k](state[k], *args))
    times = {k: [] for k in steps}
    for _ in range(repeats):
        for k in steps:
            s = state[k]
            gc.collect()
            t = time.perf_counter()
            for _ in range(number): s = steps[k](s, *args)
            state[k] = jax.block_until_ready(s)
            times[k].append((time.perf_counter() - t) / number)
    return {k: min(v) for k, v in times.items()}

def sgd(step_loss):
    "A donated, jitted SGD step of a loss of (trainable, *args)."
    @functools.partial(jax.jit, donate_argnums=0)
    def step(t, *args):
        g = jax.grad(step_loss)(t, *args)
        return jax.tree.map(lambda p, g: p - 1e-3 * g, t, g)
    return step

def convnet_step(batch: int, size: int, channels):
    graph = bx.Graph('net')
    rng = bx.Rng(graph / 'rng')
    model = bx.ConvNet(graph / 'cnn', 10, channels=channels, rng=rng)
    images = jax.random.normal(jax.random.key(0), (batch, size, size, 3))
    labels = jax.random.randint(jax.random.key(1), (batch,), 0, 10)
    params = model(rng.seed(bx.Params(), 0), images)[1]
    trainable, rest = params.split()
    def blox_loss(t, x, y):
        logits, _ = model(t.merge(rest), x)
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))

    raw = {'/'.join(path[2:]): jnp.copy(p.value) for path, p in trainable.items()}  # own buffers: both are donated
    dn = jax.lax.ConvDimensionNumbers((0, 3, 1, 2), (3, 2, 0, 1), (0, 3, 1, 2))
    def raw_loss(w, x, y):
        for i, c in enumerate(channels):
            x = jax.lax.conv_general_dilated(x, w[f'conv{i}/kernel'], (1, 1), 'SAME', dimension_numbers=dn) + w[f'conv{i}/bias']
            groups = math.gcd(8, c)
            g = x.reshape(x.shape[:-1] + (groups, c // groups))
            mean = g.mean((1, 2, 4), keepdims=True)
            var = jnp.square(g - mean).mean((1, 2, 4), keepdims=True)
            x = ((g - mean) * jax.lax.rsqrt(var + 1e-6)).reshape(x.shape) * w[f'norm{i}/scale'] + w[f'norm{i}/bias']
            x = jax.nn.relu(x)
            x = jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), 'VALID')
        logits = x.mean((1, 2)) @ w['head/kernel'] + w['head/bias']
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))
    return {'blox': blox_loss, 'raw': raw_loss}, {'blox': trainable, 'raw': raw}, (images, labels)

def transformer_step(batch: int, time_: int, width: int, depth: int, vocab: int):
    heads = width // 32
    graph = bx.Graph('net')
    rng = bx.Rng(graph / 'rng')
    model = bx.TransformerLM(graph / 'lm', vocab, depth=depth, num_heads=heads, head_dim=32, rng=rng)
    ids = jax.random.randint(jax.random.key(0), (batch, time_ + 1), 0, vocab)
    params = model(rng.seed(bx.Params(), 0), ids[:, :-1], is_training=False)[1]
    trainable, rest = params.split()
    def xent(logits, targets): return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), targets[..., None], -1))
    def blox_loss(t, ids):
        logits, _ = model(t.merge(rest), ids[:, :-1], is_training=False)
        return xent(logits, ids[:, 1:])

    raw = {'/'.join(path[2:]): jnp.copy(p.value) for path, p in trainable.items()}  # own buffers: both are donated
    def rms(x, s): return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), -1, keepdims=True) + 1e-6) * s
    def rope(x):
        half = x.shape[-1] // 2
        freqs = 10_000.0 ** (-jnp.arange(half, dtype=jnp.float32) / half)
        ang = jnp.arange(x.shape[1], dtype=jnp.float32)[:, None, None] * freqs
        x1, x2 = x[..., :half], x[..., half:]
        return jnp.concatenate([x1 * jnp.cos(ang) - x2 * jnp.sin(ang), x2 * jnp.cos(ang) + x1 * jnp.sin(ang)], -1)
    def block(x, w):
        h = rms(x, w['attn_norm/scale'])
        q, k, v = (jnp.einsum('btd,dhk->bthk', h, w[f'attn/{n}/kernel']) for n in ('query', 'key', 'value'))
        a = jax.nn.dot_product_attention(rope(q), rope(k), v, is_causal=True)
        x = x + jnp.einsum('bthk,hkd->btd', a, w['attn/out/kernel'])
        h = rms(x, w['mlp_norm/scale'])
        return x + (jax.nn.silu(h @ w['mlp/gate/kernel']) * (h @ w['mlp/up/kernel'])) @ w['mlp/down/kernel'], None
    def raw_loss(w, ids):
        x = jnp.take(w['embed/embedding'], ids[:, :-1], axis=0)
        stacked = {k.removeprefix('blocks/block/'): v for k, v in w.items() if k.startswith('blocks/block/')}
        x, _ = jax.lax.scan(block, x, stacked)
        logits = rms(x, w['norm/scale']) @ w['embed/embedding'].T
        return xent(logits, ids[:, 1:])
    return {'blox': blox_loss, 'raw': raw_loss}, {'blox': trainable, 'raw': raw}, (ids,)

def compute_bound(quick: bool):
    print("2. compute-bound train steps (jitted, donated SGD), blox vs the same math in raw JAX")
    cases = {
        'convnet': lambda: convnet_step(16 if quick else 64, 32, (16, 32) if quick else (32, 64)),
        'TransformerLM': lambda: transformer_step(4 if quick else 8, 64 if quick else 128, 128 if quick else 256, 2 if quick else 4, 512),
    }
    for name, make in cases.items():
        losses, state, args = make()
        values = {k: float(jax.jit(losses[k])(state[k], *args)) for k in losses}
        assert abs(values['blox'] - values['raw']) < 1e-3 * abs(values['raw']), f"not the same math: {values}"
        t = time_steps({k: sgd(f) for k, f in losses.items()}, state, args)
        print(f"   {name:<14} blox {t['blox'] * 1e3:8.2f} ms   raw JAX {t['raw'] * 1e3:8.2f} ms   ratio {t['blox'] / t['raw']:.3f}x")

if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--only', choices=['scan_compile', 'compute_bound'])
    parser.add_argument('--quick', action='store_true', help='smaller sizes (a few seconds per case)')
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({jax.device_count()} devices)")
    if args.only in (None, 'scan_compile'): scan_compile(64 if args.quick else 256)
    if args.only in (None, 'compute_bound'): compute_bound(args.quick)
