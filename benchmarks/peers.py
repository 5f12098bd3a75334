"""blox beside raw JAX, Flax NNX, Equinox and Haiku doing the same work: `python benchmarks/peers.py` (~28 min on 2 cores;
writes benchmarks/results/peers.json, or `--out PATH`). `--quick`: a smoke run of every section at tiny sizes (~2 min,
no JSON unless `--out`); `--only steps,loop,async,init,trace,compile,import,first_init`: some sections; with
`--merge benchmarks/results/peers.json --why "..."` they replace those sections of the stored run, which records the rerun
(command, date, sections, why) in its 'reruns'. Nothing is asserted but the numerics.

Each library is written as its own docs show, on identical math: the same layer shapes and activations, the same loss,
`optax.adam(1e-3)`, and the same starting weights (blox initialises them; every other library gets copies of them), so
the first 3 losses of every library must agree with raw's within rtol 1e-5 before anything is timed. Every step donates
its state.
- raw: a dict of arrays, `jax.value_and_grad` and optax by hand under `jax.jit`; raw again: the same step compiled a
  second time, the A/A control (the noise floor of the method);
- blox: `jax.jit(bx.train_step(loss_fn, optimizer), donate_argnums=0)` on a `bx.TrainState` (it also computes
  `grad_norm` and the first non-finite gradient, one pass over the gradients); blox by hand: split -> value_and_grad -> optax -> merge;
- nnx.jit: `nnx.jit` of `train_step(model, optimizer, x, y)`, `nnx.Optimizer(model, tx, wrt=nnx.Param)`,
  `optimizer.update(model, grads)`; nnx.jit(graph=False): the same in NNX's tree mode; nnx.cached_partial: the step
  with its graph traversal cached; nnx split/merge + jax.jit: the "functional training loop" of Flax's performance
  guide (`nnx.split((model, optimizer))` once; merge -> update -> `nnx.state` inside `jax.jit`);
- equinox: `eqx.filter_jit(donate='all-except-first')` with the batch first, `eqx.filter_value_and_grad`, optax on
  `eqx.filter(model, eqx.is_array)`; its models take one example, batched by `jax.vmap`;
- haiku: `hk.without_apply_rng(hk.transform(f))`, `jax.jit` of value_and_grad + optax on its params dict.

1. steps: MLP train steps at ~30, ~120 and ~480 parameter arrays (15, 60, 240 Linear(32) + tanh, batch 8, MSE); a CNN
   (Conv 3x3 32, relu, Conv 3x3 64, relu, mean-pool, Linear 10; batch 32 of 16x16x3; MSE) and `bx.TransformerLM` (vocab
   128, 2 scanned pre-RMSNorm blocks of 4 heads of 16, rotary positions, causal `jax.nn.dot_product_attention`, SwiGLU
   MLP 256, no biases, tied embeddings; batch 8 x 32 tokens; cross-entropy), each sync (every step's loss waited for)
   and pipelined (the steps dispatched, then waited for once). Rounds interleave the libraries in a rotating order, so
   drift in the machine's load hits all alike; a library's time in a round is the mean of enough steps to take
   ~`--sample` s (at least 5); reported: the median time, and the median, q1 and q3 of the per-round ratio to raw.
1b. loop: blox's packaged path beside its hand-written one, on the digits MLP (batch 64) and ConvNet (batch 128) of
   benchmarks/training.py: `bx.train_step` vs the step by hand, one batch on the device; `bx.fit` (history every 10
   steps, without and with its progress bar) vs a Python loop over the same jitted step and `bx.batches` iterator.
2. async: how long the step call takes to return, and the whole step, on the CNN at batch 256 (median of 7).
3. init: creating the parameters of 100, 1000 and 10000 Linear(32) layers (200, 2k, 20k arrays) as each library's docs
   do: raw, one `jax.random.split` and one initialiser per array, eagerly and under `jax.jit`; blox, eagerly (the first
   call), with `Module.init` (an abstract pass, then only the initialisers) and under `jax.jit`; NNX, constructing the module, eagerly and under `nnx.jit`; Equinox, constructing it; Haiku, `init`,
   eagerly and under `jax.jit`. Eager: the median of 3 after a first call; jitted: the first call in a fresh process
   (trace, compile and run). A call past 120 s is recorded as too slow, and so is a size that a smaller one's time,
   scaled linearly, already puts past 120 s (not run).
4. trace: `jax.make_jaxpr` of the MLP train step (no lowering, no compile) at 2k and 20k arrays from cleared caches,
   median of 3 (of 1 at 20k); one step per library (raw, blox, nnx.jit, equinox, haiku).
5. compile: lower + compile of the Transformer's train step at 2 and 64 blocks, each library scanning its blocks
   its documented way (`bx.Stack`; `nnx.vmap` init + `nnx.scan`; `eqx.filter_vmap` init + `jax.lax.scan`;
   `hk.layer_stack`; raw `jax.lax.scan` over stacked arrays); cleared caches, median of 3.
6. import: `python -c "import X"` in fresh processes, interleaved, median of 5, and each minus bare `import jax`.
7. first_init: the Transformer's init as the first call in a fresh process, after a warm-up of JAX on an unrelated tiny
   jit (median of 3 processes).
--quick: one MLP (14 arrays), the CNN and Transformer for one step per library (no A/A control), 10 and 40 arrays for init
and trace, 2 blocks, one process each (its jitted inits in this process, from cleared caches).
Run on an idle machine: the ratios are only as good as the machine's quiet."""
import argparse, datetime, functools, importlib, importlib.metadata, json, os, platform, signal, statistics, subprocess, sys, time
import jax, jax.numpy as jnp, numpy as np, optax
import blox as bx
from step_overhead import measure
import training
from training import by_hand  # the step of 04_training, written out

def optional(module):
    try: return importlib.import_module(module)
    except ImportError: print(f"note: {module} is not installed: its rows are skipped", flush=True)
nnx, eqx, hk = optional('flax.nnx'), optional('equinox'), optional('haiku')

WIDTH, VOCAB, HEADS, HEAD_DIM, SEQ = 32, 128, 4, 16, 32
D = HEADS * HEAD_DIM
SECTIONS = ('steps', 'loop', 'async', 'init', 'trace', 'compile', 'import', 'first_init')

def mse(out, y): return jnp.mean((out - y) ** 2)
def xent(logits, ids): return optax.softmax_cross_entropy_with_integer_labels(logits, ids).mean()
def rms(x, scale): return x * jax.lax.rsqrt(jnp.mean(jnp.square(x), -1, keepdims=True) + 1e-6) * scale

def rotary(x):
    "blox's `apply_rotary` at positions 0, 1, ...: pairs (i, i + half) of [..., time, heads, head_dim] rotated."
    half = x.shape[-1] // 2
    angles = jnp.arange(x.shape[-3], dtype=jnp.float32)[:, None, None] * 10_000.0 ** (-jnp.arange(half) / half)
    x1, x2, sin, cos = x[..., :half], x[..., half:], jnp.sin(angles), jnp.cos(angles)
    return jnp.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)

def attention(q, k, v): return jax.nn.dot_product_attention(rotary(q), rotary(k), v, is_causal=True)

def data(kind, batch):
    if kind == 'mlp': return jnp.ones((batch, WIDTH)), jnp.zeros((batch, WIDTH))
    if kind == 'cnn': return jax.random.normal(jax.random.key(1), (batch, 16, 16, 3)), jax.random.normal(jax.random.key(2), (batch, 10))
    ids = jax.random.randint(jax.random.key(1), (batch, SEQ + 1), 0, VOCAB)
    return ids[:, :-1], ids[:, 1:]

# ---- the models: kind 'mlp' (size: depth), 'cnn' (no size), 'lm' (size: blocks) in each library ----

def blox_model(kind, size):
    "`(model, rng)`, the model at graph node ('<kind>', 'model')."
    graph = bx.Graph(kind)
    rng, node = bx.Rng(graph / 'rng'), graph / 'model'
    if kind == 'mlp':
        return bx.Sequential(node, [f for i in range(size) for f in (bx.Linear(node / f'layer{i}', WIDTH, rng=rng), jnp.tanh)]), rng
    if kind == 'cnn':
        return bx.Sequential(node, [bx.Conv(node / 'conv0', 32, (3, 3), rng=rng), jax.nn.relu, bx.Conv(node / 'conv1', 64, (3, 3), rng=rng),
                                    jax.nn.relu, bx.GlobalPool(node / 'pool'), bx.Linear(node / 'head', 10, rng=rng)]), rng
    return bx.TransformerLM(node, VOCAB, depth=size, num_heads=HEADS, head_dim=HEAD_DIM, rng=rng), rng

def raw_forward(kind):
    def mlp(w, x):
        for i in range(len(w)): x = jnp.tanh(x @ w[f'layer{i}']['kernel'] + w[f'layer{i}']['bias'])
        return x
    def cnn(w, x):
        for name in ('conv0', 'conv1'):
            x = jax.lax.conv_general_dilated(x, w[name]['kernel'], (1, 1), 'SAME', dimension_numbers=('NHWC', 'HWIO', 'NHWC'))
            x = jax.nn.relu(x + w[name]['bias'])
        return x.mean((1, 2)) @ w['head']['kernel'] + w['head']['bias']
    def lm(w, ids):
        table = w['embed']['embedding']
        def block(x, b):
            h = rms(x, b['attn_norm']['scale'])
            q, k, v = (jnp.einsum('btd,dhk->bthk', h, b['attn'][n]['kernel']) for n in ('query', 'key', 'value'))
            x = x + jnp.einsum('bthk,hkd->btd', attention(q, k, v), b['attn']['out']['kernel'])
            h, m = rms(x, b['mlp_norm']['scale']), b['mlp']
            return x + (jax.nn.silu(h @ m['gate']['kernel']) * (h @ m['up']['kernel'])) @ m['down']['kernel'], None
        x, _ = jax.lax.scan(block, table[ids], w['blocks']['block'])
        return rms(x, w['norm']['scale']) @ table.T
    return {'mlp': mlp, 'cnn': cnn, 'lm': lm}[kind]

def raw_shapes(kind, size):
    "The shapes of the model's arrays, as blox makes them (what raw JAX initialises without blox)."
    if kind == 'mlp': return {f'layer{i}': {'kernel': (WIDTH, WIDTH), 'bias': (WIDTH,)} for i in range(size)}
    dense = lambda *shape: {'kernel': (size, *shape)}
    block = {'attn_norm': {'scale': (size, D)}, 'mlp_norm': {'scale': (size, D)},
             'attn': {'query': dense(D, HEADS, HEAD_DIM), 'key': dense(D, HEADS, HEAD_DIM), 'value': dense(D, HEADS, HEAD_DIM),
                      'out': dense(HEADS, HEAD_DIM, D)},
             'mlp': {'gate': dense(D, 4 * D), 'up': dense(D, 4 * D), 'down': dense(4 * D, D)}}
    return {'embed': {'embedding': (VOCAB, D)}, 'blocks': {'block': block}, 'norm': {'scale': (D,)}}

if nnx:
    class NnxMLP(nnx.Module):
        def __init__(self, depth, rngs): self.layers = nnx.List([nnx.Linear(WIDTH, WIDTH, rngs=rngs) for _ in range(depth)])
        def __call__(self, x):
            for layer in self.layers: x = jnp.tanh(layer(x))
            return x

    class NnxCNN(nnx.Module):
        def __init__(self, _, rngs):
            self.conv0, self.conv1 = nnx.Conv(3, 32, (3, 3), rngs=rngs), nnx.Conv(32, 64, (3, 3), rngs=rngs)
            self.head = nnx.Linear(64, 10, rngs=rngs)
        def __call__(self, x): return self.head(nnx.relu(self.conv1(nnx.relu(self.conv0(x)))).mean((1, 2)))

    class NnxBlock(nnx.Module):
        def __init__(self, rngs):
            self.attn_norm, self.mlp_norm = nnx.RMSNorm(D, epsilon=1e-6, rngs=rngs), nnx.RMSNorm(D, epsilon=1e-6, rngs=rngs)
            self.query, self.key, self.value = (nnx.LinearGeneral(D, (HEADS, HEAD_DIM), use_bias=False, rngs=rngs) for _ in range(3))
            self.out = nnx.LinearGeneral((HEADS, HEAD_DIM), D, axis=(-2, -1), use_bias=False, rngs=rngs)
            self.gate, self.up = (nnx.Linear(D, 4 * D, use_bias=False, rngs=rngs) for _ in range(2))
            self.down = nnx.Linear(4 * D, D, use_bias=False, rngs=rngs)
        def __call__(self, x):
            h = self.attn_norm(x)
            x = x + self.out(attention(self.query(h), self.key(h), self.value(h)))
            h = self.mlp_norm(x)
            return x + self.down(nnx.silu(self.gate(h)) * self.up(h))

    class NnxLM(nnx.Module):
        def __init__(self, depth, rngs):
            self.embed = nnx.Embed(VOCAB, D, rngs=rngs)
            @nnx.split_rngs(splits=depth)
            @nnx.vmap(in_axes=(0,), out_axes=0)
            def blocks(rngs): return NnxBlock(rngs)
            self.blocks, self.norm = blocks(rngs), nnx.RMSNorm(D, epsilon=1e-6, rngs=rngs)
        def __call__(self, ids):
            @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
            def forward(x, block): return block(x)
            return self.embed.attend(self.norm(forward(self.embed(ids), self.blocks)))

    NNX = {'mlp': NnxMLP, 'cnn': NnxCNN, 'lm': NnxLM}

if eqx:
    class EqxMLP(eqx.Module):
        layers: list
        def __init__(self, depth, key): self.layers = [eqx.nn.Linear(WIDTH, WIDTH, key=k) for k in jax.random.split(key, depth)]
        def __call__(self, x):
            for layer in self.layers: x = jnp.tanh(layer(x))
            return x

    class EqxCNN(eqx.Module):
        conv0: eqx.nn.Conv2d
        conv1: eqx.nn.Conv2d
        head: eqx.nn.Linear
        def __init__(self, _, key):
            k0, k1, k2 = jax.random.split(key, 3)
            self.conv0, self.conv1 = eqx.nn.Conv2d(3, 32, 3, padding='SAME', key=k0), eqx.nn.Conv2d(32, 64, 3, padding='SAME', key=k1)
            self.head = eqx.nn.Linear(64, 10, key=k2)
        def __call__(self, x):  # one image [H, W, C], as the others get it; Equinox's convolutions are channels-first
            x = jax.nn.relu(self.conv1(jax.nn.relu(self.conv0(jnp.moveaxis(x, -1, 0)))))
            return self.head(x.mean((1, 2)))

    class EqxBlock(eqx.Module):
        attn_norm: eqx.nn.RMSNorm
        mlp_norm: eqx.nn.RMSNorm
        query: eqx.nn.Linear
        key: eqx.nn.Linear
        value: eqx.nn.Linear
        out: eqx.nn.Linear
        gate: eqx.nn.Linear
        up: eqx.nn.Linear
        down: eqx.nn.Linear
        def __init__(self, k):
            ks = jax.random.split(k, 7)
            self.attn_norm, self.mlp_norm = (eqx.nn.RMSNorm(D, eps=1e-6, use_bias=False) for _ in range(2))
            self.query, self.key, self.value, self.out = (eqx.nn.Linear(D, D, use_bias=False, key=k) for k in ks[:4])
            self.gate, self.up = (eqx.nn.Linear(D, 4 * D, use_bias=False, key=k) for k in ks[4:6])
            self.down = eqx.nn.Linear(4 * D, D, use_bias=False, key=ks[6])
        def __call__(self, x):  # one sequence [time, D]
            h = jax.vmap(self.attn_norm)(x)
            q, k, v = (jax.vmap(p)(h).reshape(-1, HEADS, HEAD_DIM) for p in (self.query, self.key, self.value))
            x = x + jax.vmap(self.out)(attention(q, k, v).reshape(-1, D))
            h = jax.vmap(self.mlp_norm)(x)
            return x + jax.vmap(self.down)(jax.nn.silu(jax.vmap(self.gate)(h)) * jax.vmap(self.up)(h))

    class EqxLM(eqx.Module):
        embed: eqx.nn.Embedding
        blocks: EqxBlock
        norm: eqx.nn.RMSNorm
        def __init__(self, depth, key):
            k0, k1 = jax.random.split(key)
            self.embed, self.blocks = eqx.nn.Embedding(VOCAB, D, key=k0), eqx.filter_vmap(EqxBlock)(jax.random.split(k1, depth))
            self.norm = eqx.nn.RMSNorm(D, eps=1e-6, use_bias=False)
        def __call__(self, ids):  # one sequence [time]
            arrays, static = eqx.partition(self.blocks, eqx.is_array)
            x, _ = jax.lax.scan(lambda x, a: (eqx.combine(a, static)(x), None), jax.vmap(self.embed)(ids), arrays)
            return jax.vmap(self.norm)(x) @ self.embed.weight.T

    EQX = {'mlp': EqxMLP, 'cnn': EqxCNN, 'lm': EqxLM}

    def eqx_load(kind, model, w):
        "`model` with blox's weights `w`: Equinox's Linear weights are [out, in], its convolutions' [out, in, h, w]."
        t = lambda a: jnp.swapaxes(a, -1, -2)
        if kind == 'mlp':
            where = lambda m: [a for layer in m.layers for a in (layer.weight, layer.bias)]
            new = [a for i in range(len(w)) for a in (t(w[f'layer{i}']['kernel']), w[f'layer{i}']['bias'])]
        elif kind == 'cnn':
            where = lambda m: [m.conv0.weight, m.conv0.bias, m.conv1.weight, m.conv1.bias, m.head.weight, m.head.bias]
            new = [a for n in ('conv0', 'conv1') for a in (w[n]['kernel'].transpose(3, 2, 0, 1), w[n]['bias'][:, None, None])]
            new += [t(w['head']['kernel']), w['head']['bias']]
        else:
            b = w['blocks']['block']
            depth = b['attn_norm']['scale'].shape[0]
            where = lambda m: [m.embed.weight, m.norm.weight, m.blocks.attn_norm.weight, m.blocks.mlp_norm.weight, m.blocks.query.weight,
                               m.blocks.key.weight, m.blocks.value.weight, m.blocks.out.weight, m.blocks.gate.weight, m.blocks.up.weight,
                               m.blocks.down.weight]
            new = [w['embed']['embedding'], w['norm']['scale'], b['attn_norm']['scale'], b['mlp_norm']['scale']]
            new += [t(b['attn'][n]['kernel'].reshape(depth, D, D)) for n in ('query', 'key', 'value', 'out')]
            new += [t(b['mlp'][n]['kernel']) for n in ('gate', 'up', 'down')]
        return eqx.tree_at(where, model, new)

if hk:
    def haiku_forward(kind, size):
        def mlp(x):
            for i in range(size): x = jnp.tanh(hk.Linear(WIDTH, name=f'layer{i}')(x))
            return x
        def cnn(x):
            x = jax.nn.relu(hk.Conv2D(64, 3, name='conv1')(jax.nn.relu(hk.Conv2D(32, 3, name='conv0')(x))))
            return hk.Linear(10, name='head')(x.mean((1, 2)))
        def block(x):
            dense = lambda features, name: hk.Linear(features, with_bias=False, name=name)
            h = hk.RMSNorm(-1, eps=1e-6, name='attn_norm')(x)
            q, k, v = (dense(D, n)(h).reshape(*h.shape[:-1], HEADS, HEAD_DIM) for n in ('query', 'key', 'value'))
            x = x + dense(D, 'out')(attention(q, k, v).reshape(x.shape))
            h = hk.RMSNorm(-1, eps=1e-6, name='mlp_norm')(x)
            return x + dense(D, 'down')(jax.nn.silu(dense(4 * D, 'gate')(h)) * dense(4 * D, 'up')(h))
        def lm(ids):
            embed = hk.Embed(VOCAB, D, name='embed')
            x = hk.layer_stack(size)(block)(embed(ids))
            return hk.RMSNorm(-1, eps=1e-6, name='norm')(x) @ embed.embeddings.T
        return hk.without_apply_rng(hk.transform({'mlp': mlp, 'cnn': cnn, 'lm': lm}[kind]))

def by_name(w):
    "blox's arrays by their last two path entries, e.g. ('layer3', 'kernel') or ('query', 'kernel')."
    return {tuple(k.key for k in path[-2:]): v for path, v in jax.tree_util.tree_flatten_with_path(w)[0]}

def lookup(named, module, param, shape):
    "The blox array that NNX's or Haiku's `module`/`param` holds, reshaped to its shape (e.g. Haiku's heads merged)."
    module = f'layer{module}' if isinstance(module, int) else module.split('/')[-1]  # nnx.List index, hk.layer_stack prefix
    return named[module, {'w': 'kernel', 'b': 'bias', 'embeddings': 'embedding'}.get(param, param)].reshape(shape)

# ---- train steps ----

def optax_step(forward, loss, optimizer):
    "What raw JAX writes (and Haiku, on its params dict)."
    def step(state, x, y):
        w, opt_state = state
        l, grads = jax.value_and_grad(lambda w: loss(forward(w, x), y))(w)
        updates, opt_state = optimizer.update(grads, opt_state, w)
        return (optax.apply_updates(w, updates), opt_state), l
    return step

def step_variants(kind, size, batch):
    """`({library: (step, make, lower)}, x, y, arrays)`: `step(state, x, y) -> (state, loss)`, `make()` a fresh state
    with blox's initial weights, `lower(state, x, y)` the step's `Lowered` (None: no lowering of its own)."""
    x, y = data(kind, batch)
    model, rng = blox_model(kind, size)
    opts = (lambda is_training: {'is_training': is_training}) if kind == 'lm' else (lambda is_training: {})
    params = model(rng.seed(bx.Params(), 0), x, **opts(False))[1]
    w = params.to_dict()[kind]['model']
    fresh = lambda: jax.tree.map(jnp.copy, w)
    loss, optimizer = (xent if kind == 'lm' else mse), optax.adam(1e-3)
    donate = functools.partial(jax.jit, donate_argnums=0)
    variants = {}

    def raw_state(): weights = fresh(); return weights, optimizer.init(weights)
    for name in ('raw', 'raw again'):
        jitted = donate(optax_step(raw_forward(kind), loss, optimizer))
        variants[name] = jitted, raw_state, jitted.lower

    def loss_fn(params, batch, *, is_training):
        out, params = model(params, batch[0], **opts(is_training))
        return (loss(out, batch[1]), {}), params
    packaged = donate(bx.train_step(loss_fn, optimizer))
    hand = donate(by_hand(loss_fn, optimizer))
    blox_state = lambda: bx.TrainState.create(jax.tree.map(jnp.copy, params), optimizer)
    variants['blox'] = lambda s, x, y: packaged(s, (x, y)), blox_state, lambda s, x, y: packaged.lower(s, (x, y))
    variants['blox by hand'] = lambda s, x, y: hand(s, (x, y)), blox_state, lambda s, x, y: hand.lower(s, (x, y))

    if nnx:
        def nnx_fresh():
            model = NNX[kind](size, rngs=nnx.Rngs(0))
            state, named = nnx.state(model, nnx.Param), by_name(fresh())
            pure = jax.tree_util.tree_map_with_path(lambda p, v: lookup(named, p[-2].key, p[-1].key, v.shape), state.to_pure_dict())
            nnx.replace_by_pure_dict(state, pure)
            nnx.update(model, state)
            return model, nnx.Optimizer(model, optimizer, wrt=nnx.Param)
        def train_step(model, optimizer, x, y):
            l, grads = nnx.value_and_grad(lambda model: loss(model(x), y))(model)
            optimizer.update(model, grads)
            return l
        def nnx_variant(jitted): return (lambda s, x, y: (s, jitted(*s, x, y))), nnx_fresh, lambda s, x, y: jitted.lower(*s, x, y)
        graph_jit = nnx.jit(train_step, donate_argnames=('model', 'optimizer'))
        variants['nnx.jit'] = nnx_variant(graph_jit)
        variants['nnx.jit(graph=False)'] = nnx_variant(nnx.jit(train_step, donate_argnames=('model', 'optimizer'), graph=False))
        def cached_state(): model, optimizer = nnx_fresh(); return nnx.cached_partial(graph_jit, model, optimizer), model, optimizer
        variants['nnx.cached_partial'] = (lambda s, x, y: (s, s[0](x, y))), cached_state, None
        @functools.partial(jax.jit, donate_argnums=1)
        def functional(graphdef, state, x, y):
            model, optimizer = nnx.merge(graphdef, state)
            l = train_step(model, optimizer, x, y)
            return nnx.state((model, optimizer)), l
        def split_step(s, x, y):
            state, l = functional(*s, x, y)
            return (s[0], state), l
        variants['nnx split/merge + jax.jit'] = split_step, lambda: nnx.split(nnx_fresh()), lambda s, x, y: functional.lower(*s, x, y)

    if eqx:
        def eqx_fresh():
            model = eqx_load(kind, EQX[kind](size, jax.random.key(0)), fresh())
            return model, optimizer.init(eqx.filter(model, eqx.is_array))
        @eqx.filter_jit(donate='all-except-first')
        def make_step(batch, model, opt_state):
            x, y = batch
            l, grads = eqx.filter_value_and_grad(lambda model: loss(jax.vmap(model)(x), y))(model)
            updates, opt_state = optimizer.update(grads, opt_state, eqx.filter(model, eqx.is_array))
            return eqx.apply_updates(model, updates), opt_state, l
        def eqx_step(s, x, y):
            model, opt_state, l = make_step((x, y), *s)
            return (model, opt_state), l
        variants['equinox'] = eqx_step, eqx_fresh, lambda s, x, y: make_step.lower((x, y), *s)

    if hk:
        net = haiku_forward(kind, size)
        def hk_fresh():
            named = by_name(fresh())
            p = jax.tree_util.tree_map_with_path(lambda path, s: lookup(named, path[0].key, path[1].key, s.shape),
                                                 jax.eval_shape(net.init, jax.random.key(0), x))
            return p, optimizer.init(p)
        jitted = donate(optax_step(net.apply, loss, optimizer))
        variants['haiku'] = jitted, hk_fresh, jitted.lower
    return variants, x, y, len(jax.tree.leaves(w))

def check_numerics(variants, x, y):
    "The first three losses of every library agree with raw's (rtol 1e-5) before anything is timed."
    losses = {}
    for name, (step, make, _) in variants.items():
        state, out = make(), []
        for _ in range(3):
            state, loss = step(state, x, y)
            out.append(float(loss['loss'] if isinstance(loss, dict) else loss))
        losses[name] = out
    for name, l in losses.items(): np.testing.assert_allclose(l, losses['raw'], rtol=1e-5, err_msg=f'{name} vs raw')

# ---- init, trace and compile times ----

LIMIT = 120.0  # seconds: a call past it is recorded as too slow (null), not waited for
ONE_EACH = ('raw', 'blox', 'nnx.jit', 'equinox', 'haiku')  # one step per library where the others trace and compile alike

def init_fns(kind, size):
    "`{(library, variant): (create, jitted)}`: each library creating the model's parameters its documented way."
    example = jnp.zeros((1, 8), jnp.int32) if kind == 'lm' else jnp.zeros((1, WIDTH))
    model, rng = blox_model(kind, size)
    options = {'is_training': False} if kind == 'lm' else {}
    def blox_init(): return model(rng.seed(bx.Params(), 0), example, **options)[1]
    shapes = raw_shapes(kind, size)
    normal = jax.nn.initializers.lecun_normal()
    def raw_init():
        leaves, tree = jax.tree.flatten(shapes, is_leaf=lambda s: isinstance(s, tuple))
        keys = jax.random.split(jax.random.key(0), len(leaves))
        return tree.unflatten([normal(key, s) if len(s) > 1 else jnp.zeros(s) for key, s in zip(keys, leaves)])
    def blox_module_init(): return model.init(rng.seed(bx.Params(), 0), example, **options)
    fns = {('raw', 'eager'): (raw_init, False), ('raw', 'jax.jit'): (jax.jit(raw_init), True),
           ('blox', 'eager'): (blox_init, False), ('blox', 'Module.init'): (blox_module_init, False),
           ('blox', 'jax.jit'): (jax.jit(blox_init), True)}
    if nnx:
        fns['nnx', 'eager'] = lambda: NNX[kind](size, rngs=nnx.Rngs(0)), False
        fns['nnx', 'nnx.jit'] = nnx.jit(lambda: NNX[kind](size, rngs=nnx.Rngs(0))), True
    if eqx: fns['equinox', 'eager'] = lambda: EQX[kind](size, jax.random.key(0)), False
    if hk:
        net = haiku_forward(kind, size)
        fns['haiku', 'eager'] = lambda: net.init(jax.random.key(0), example), False
        jitted_init = jax.jit(net.init)
        fns['haiku', 'jax.jit'] = lambda: jitted_init(jax.random.key(0), example), True
    return fns

def timed(fn, repeat, cold=False):
    "Median seconds of `repeat` calls of `fn`, its result waited for (`cold`: each from empty JAX caches); None past LIMIT."
    def expire(*_): raise TimeoutError
    signal.signal(signal.SIGALRM, expire)  # interrupts Python (tracing, eager ops), not a compile inside XLA
    times = []
    for _ in range(repeat):
        if cold: jax.clear_caches()
        signal.setitimer(signal.ITIMER_REAL, LIMIT)
        try:
            t = time.perf_counter(); jax.block_until_ready(fn()); times.append(time.perf_counter() - t)
        except TimeoutError: return None
        finally: signal.setitimer(signal.ITIMER_REAL, 0)
    return statistics.median(times)

CHILD = """import sys, time
sys.path.insert(0, {here!r})
import jax, peers
jax.block_until_ready(jax.jit(lambda a: a * 2)(jax.numpy.ones(3)))  # JAX's own first-use costs, paid before
fn = peers.init_fns({kind!r}, {size!r})[{key!r}][0]
print('ready', flush=True)
t = time.perf_counter(); jax.block_until_ready(fn()); print(time.perf_counter() - t)"""

def first_call(kind, size, key):
    """Seconds of the first call of `init_fns(kind, size)[key]` in a fresh process, after a warm-up of JAX itself;
    None past LIMIT, the process killed (an XLA compile cannot be interrupted from inside)."""
    code = CHILD.format(here=os.path.dirname(os.path.abspath(__file__)), kind=kind, size=size, key=key)
    proc = subprocess.Popen([sys.executable, '-c', code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.stdout.readline().strip() != 'ready': raise RuntimeError(proc.communicate()[1])
    try: out, err = proc.communicate(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        proc.kill(); proc.communicate()
        return None
    if proc.returncode: raise RuntimeError(err)
    return float(out)

def seconds(s): return f'too slow (> {LIMIT:.0f} s)' if s is None else f'{s:8.3f} s'

# ---- sections ----

def steps_section(args, results):
    depths, cnn_batch = ((7,), 8) if args.quick else ((15, 60, 240), 32)
    print(f"\n1. train steps: {args.rounds} rounds of ~{args.sample * 1e3:.0f} ms of steps per library; ratio: median of the "
          "per-round (library / raw), with its q1 and q3; the first 3 losses of all agree with raw's (rtol 1e-5)", flush=True)
    for label, kind, size, batch in [('MLP', 'mlp', d, 8) for d in depths] + [('CNN', 'cnn', None, cnn_batch), ('Transformer', 'lm', 2, 8)]:
        variants, x, y, arrays = step_variants(kind, size, batch)
        if args.quick and kind != 'mlp': variants = {k: v for k, v in variants.items() if k in ONE_EACH}
        check_numerics(variants, x, y)
        for mode in ('sync', 'pipelined'):
            times = measure(variants, x, y, args.rounds, args.sample, mode == 'pipelined')
            print(f"{label}, {arrays} arrays, {mode}:")
            for name, t in times.items():
                ratio = t / times['raw']
                q1, q3 = np.percentile(ratio, [25, 75])
                results['steps'].append({'workload': label, 'arrays': arrays, 'mode': mode, 'library': name, 'median_s': float(np.median(t)),
                                         'ratio': float(np.median(ratio)), 'q1': float(q1), 'q3': float(q3)})
                print(f"  {name:<26} {np.median(t) * 1e6:10.1f} us  {np.median(ratio):6.3f}x  (q1 {q1:.3f}, q3 {q3:.3f})", flush=True)

def loop_section(args, results):
    steps, repeat = (30, 2) if args.quick else (1000, 21)
    print(f"\n1b. blox's packaged path beside its hand-written one (benchmarks/training.py): train_step vs the step by hand "
          f"on one batch on the device; fit (history every 10 steps; and with its progress bar) vs a Python loop over the "
          f"same jitted train_step and batches; {steps} steps (a third of them for the ConvNet) per run, {repeat} "
          f"interleaved rounds, ratio: median of the per-round ratio", flush=True)
    for kind, batch, n in (('mlp', 64, steps), ('convnet', 128, max(steps // 3, 10))):
        rows = training.run(kind, n, repeat, batch)
        for r in rows:
            results['loop'].append({'workload': {'mlp': 'digits MLP', 'convnet': 'digits ConvNet'}[kind], 'batch': batch, **r})

def async_section(args, results):
    batch, trials = (32, 3) if args.quick else (256, 7)
    variants, x, y, _ = step_variants('cnn', None, batch)
    if args.quick: variants = {k: v for k, v in variants.items() if k in ONE_EACH}
    check_numerics(variants, x, y)
    print(f"\n2. async dispatch, the CNN step at batch {batch}, median of {trials}: when the call returns, and when the step is done", flush=True)
    for name, (step, make, _) in variants.items():
        state = make()
        for _ in range(2): state = jax.block_until_ready(step(state, x, y))[0]
        returned, total = [], []
        for _ in range(trials):
            t = time.perf_counter()
            state, loss = step(state, x, y)
            returned.append(time.perf_counter() - t)
            jax.block_until_ready((state, loss))
            total.append(time.perf_counter() - t)
        r, s = statistics.median(returned), statistics.median(total)
        results['async'].append({'library': name, 'return_s': r, 'total_s': s})
        print(f"  {name:<26} returns after {r * 1e3:8.2f} ms of a {s * 1e3:8.2f} ms step", flush=True)

def init_section(args, results):
    sizes, repeat = ((5, 20), 1) if args.quick else ((100, 1000, 10000), 3)
    print(f"\n3. creating the parameters of N Linear({WIDTH}) layers: eager, median of {repeat} after a first call; jitted, "
          f"the first call in a fresh process (--quick: from cleared caches); too slow: past {LIMIT:.0f} s", flush=True)
    rows = {}
    for n in sizes:
        for (library, variant), (fn, jitted) in init_fns('mlp', n).items():
            smaller = [(m, rows[library, variant, m]) for m in sizes if m < n]
            if any(t is None or t * n / m > LIMIT for m, t in smaller): s = None  # not run: the work grows at least linearly
            elif not jitted: s = timed(fn, 1) and timed(fn, repeat)  # its first call compiles the eager ops
            else: s = timed(fn, 1, cold=True) if args.quick else first_call('mlp', n, (library, variant))
            rows[library, variant, n] = s
            base = rows['raw', 'jax.jit' if jitted else 'eager', n]
            ratio = s / base if s and base else None
            results['init'].append({'library': library, 'variant': variant, 'arrays': 2 * n, 'median_s': s, 'ratio': ratio})
            print(f"  {library:<8} {variant:<11} {2 * n:6d} arrays: {seconds(s)}" + (f"  {ratio:6.2f}x raw" if ratio else ''), flush=True)

def trace_section(args, results):
    sizes, repeats = ((5, 20), (1, 1)) if args.quick else ((1000, 10000), (3, 1))
    print(f"\n4. tracing the MLP train step (`jax.make_jaxpr` of the step, no lowering or compile) from cleared caches; median of {repeats[0]} ({repeats[1]} at the larger size)", flush=True)
    for n, repeat in zip(sizes, repeats):
        variants, x, y, arrays = step_variants('mlp', n, 8)
        rows, states = {}, {name: variants[name][1]() for name in ONE_EACH if name in variants}
        for name, state in states.items():
            rows[name] = timed(lambda: jax.make_jaxpr(lambda s: variants[name][0](s, x, y))(state), repeat, cold=True)
            ratio = rows[name] / rows['raw'] if rows[name] and rows['raw'] else None
            results['trace'].append({'library': name, 'arrays': arrays, 'median_s': rows[name], 'ratio': ratio})
            print(f"  {name:<8} {arrays:6d} arrays: {seconds(rows[name])}" + (f"  {ratio:6.2f}x raw" if ratio else ''), flush=True)

def compile_section(args, results):
    depths, repeat = ((2,), 1) if args.quick else ((2, 64), 3)
    print(f"\n5. lower + compile of the Transformer's train step, its blocks scanned, from cleared caches; median of {repeat}", flush=True)
    cases = []
    for depth in depths:  # every model and state made before the first cache is cleared
        variants, x, y, _ = step_variants('lm', depth, 8)
        cases += [(depth, name, variants[name][2], variants[name][1](), x, y) for name in ONE_EACH if name in variants]
    for depth, name, lower, state, x, y in cases:
        s = timed(lambda: lower(state, x, y).compile(), repeat, cold=True)
        results['compile'].append({'library': name, 'blocks': depth, 'seconds': s})
        print(f"  {name:<8} {depth:3d} blocks: {seconds(s)}", flush=True)

def import_section(args, results):
    repeat = 1 if args.quick else 5
    statements = {'jax': 'import jax', 'blox': 'import blox', 'flax.nnx': 'from flax import nnx', 'equinox': 'import equinox', 'haiku': 'import haiku'}
    statements = {k: v for k, v in statements.items() if {'flax.nnx': nnx, 'equinox': eqx, 'haiku': hk}.get(k, True)}
    print(f"\n6. import time in a fresh process, median of {repeat}", flush=True)
    times = {k: [] for k in statements}
    for _ in range(repeat):  # interleaved, as the rounds above
        for k, statement in statements.items():
            t = time.perf_counter(); subprocess.run([sys.executable, '-c', statement], check=True); times[k].append(time.perf_counter() - t)
    for k, t in times.items():
        s, over = statistics.median(t), statistics.median(t) - statistics.median(times['jax'])
        results['import'].append({'library': k, 'seconds': s, 'over_jax': over})
        print(f"  import {k:<10} {s:6.2f} s  (+{over:5.2f} s over jax)", flush=True)

def first_init_section(args, results):
    repeat = 1 if args.quick else 3
    keys = list(init_fns('lm', 2))
    if args.quick: keys = list({key[0]: key for key in reversed(keys)}.values())[::-1]  # the first variant of each library
    print(f"\n7. the Transformer's init, the first call in a fresh process (after a warm-up of JAX), median of {repeat} processes", flush=True)
    for key in keys:
        times = [first_call('lm', 2, key) for _ in range(repeat)]
        s = None if None in times else statistics.median(times)
        results['first_init'].append({'library': key[0], 'variant': key[1], 'seconds': s})
        print(f"  {key[0]:<8} {key[1]:<11} {seconds(s)}", flush=True)

METHOD = ("Every library runs the same math (layer shapes, activations, loss, optax.adam(1e-3)) from the same starting "
          "weights (blox's, copied into each); the first 3 losses of every library agree with raw's within rtol 1e-5. Step "
          "times: rounds interleave the libraries in a rotating order; a library's time in a round is the mean of enough "
          "steps to take ~sample seconds (sync: each step's loss waited for; pipelined: all dispatched, then waited for "
          "once); median_s is the median over rounds, ratio/q1/q3 the median and quartiles of the per-round ratio to raw "
          "('raw again': the same step compiled twice, the noise floor). async: seconds until the step call returns and "
          "until its outputs are ready. init: eager, median after a first call; jitted, the first call in a fresh process. "
          "trace: jax.make_jaxpr of the train step from cleared caches. compile: lower + compile from cleared caches. "
          "first_init: the Transformer's init as the first call in a fresh process after a warm-up of JAX. import: python "
          "-c 'import X' wall time. null seconds: past 120 s (not waited for), or not run where a smaller size's time, scaled linearly, is past 120 s.")

def machine():
    versions = {'jax': jax.__version__, 'jaxlib': importlib.metadata.version('jaxlib'), 'optax': optax.__version__}
    for name, dist in (('flax', 'flax'), ('equinox', 'equinox'), ('haiku', 'dm-haiku'), ('blox', 'jax-blox')):
        try: versions[name] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError: versions[name] = None
    return {'platform': platform.platform(), 'cpus': os.cpu_count(), 'devices': f"{jax.device_count()} x {jax.devices()[0].device_kind}",
            'python': platform.python_version(), 'versions': versions}

if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--rounds', type=int, default=None, help='interleaved rounds per step workload (default 20, --quick 3)')
    parser.add_argument('--sample', type=float, default=None, help='seconds of steps per timing (default 0.05, --quick 0.005)')
    parser.add_argument('--quick', action='store_true', help='a smoke run of every section, tiny sizes, one step per library beyond the MLP')
    parser.add_argument('--out', help='the JSON file (default benchmarks/results/peers.json; with --quick: none)')
    parser.add_argument('--only', type=lambda s: s.split(','), default=list(SECTIONS), help=f"comma-separated sections of {','.join(SECTIONS)}")
    parser.add_argument('--merge', metavar='JSON', help="replace these sections of a stored run (e.g. benchmarks/results/peers.json) "
                        "and record the rerun in its 'reruns', instead of writing a file of its own; the machine must match")
    parser.add_argument('--why', default='', help='with --merge: what changed, recorded with the rerun')
    args = parser.parse_args()
    if args.merge and args.out: parser.error('--merge writes into the stored run: give no --out')
    if set(args.only) - set(SECTIONS): parser.error(f"--only takes sections of {', '.join(SECTIONS)}, not {', '.join(set(args.only) - set(SECTIONS))}")
    args.rounds = args.rounds or (3 if args.quick else 20)
    args.sample = args.sample or (0.005 if args.quick else 0.05)
    out = args.out or (None if args.quick else os.path.join(os.path.dirname(os.path.abspath(__file__)), 'results', 'peers.json'))
    info = machine()
    print(f"{info['platform']}, {info['cpus']} cpus, {info['devices']}; python {info['python']}; "
          + ', '.join(f'{k} {v}' for k, v in info['versions'].items() if v), flush=True)
    results = {'command': ' '.join(['python', 'benchmarks/peers.py', *sys.argv[1:]]), 'date': datetime.datetime.now().isoformat(timespec='seconds'),
               'machine': info, 'method': METHOD, **{k: [] for k in SECTIONS}}
    sections = {'steps': steps_section, 'loop': loop_section, 'async': async_section, 'init': init_section, 'trace': trace_section,
                'compile': compile_section, 'import': import_section, 'first_init': first_init_section}
    start = time.perf_counter()
    for name in SECTIONS:
        if name in args.only:
            t = time.perf_counter(); sections[name](args, results)
            print(f"   ({name}: {time.perf_counter() - t:.0f} s)", flush=True)
    print(f"\n{time.perf_counter() - start:.0f} s in all", flush=True)
    if args.merge:
        stored = json.load(open(args.merge))
        if stored['machine'] != info: sys.exit(f"not merged: {args.merge} was measured on {stored['machine']}, this is {info}")
        stored.update({name: results[name] for name in args.only})
        stored.setdefault('reruns', []).append({'command': results['command'].split(' --merge')[0], 'date': results['date'],
                                                'sections': args.only, 'why': args.why})
        with open(args.merge, 'w') as f: json.dump(stored, f, indent=1)
        print(f"merged into: {args.merge}")
    elif out:
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        with open(out, 'w') as f: json.dump(results, f, indent=1)
        print(f"written: {out}")
