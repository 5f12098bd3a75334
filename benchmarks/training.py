"""Benchmarks of `blox.training`, printed as ratios (never asserted): `python benchmarks/training.py`.

1. The packaged step: `jax.jit(bx.train_step(loss_fn, optimizer))` (which also computes `grad_norm` and the first
   non-finite gradient, one pass over all the gradients), and `train_step(..., diagnostics=False)`, vs the same step
   written by hand (split -> value_and_grad -> optax -> merge), all donated.
2. The loop helper: `bx.fit` (history every 10 steps, no progress bar, and with a progress bar) vs a hand-written
   Python loop over the same jitted step and the same grain iterator.
3. The data: a batch from `bx.batches` (whole batches gathered from per-epoch permutations) vs grain's own
   `MapDataset.range(n).shuffle().repeat().batch().map(gather)`, which visits every example in Python.
1 and 2 at two sizes: a small MLP on 8x8 digits (dispatch-bound: the per-step overhead shows) and the digits ConvNet
(compute-bound). 1 and 2: each variant runs N steps once per round, the variants in a rotating order, after a warm-up
that compiles; reported: median times, and the median (and IQR) over rounds of the paired ratio. 3: the best of
several repeats."""
import argparse, contextlib, gc, io, time
import jax, jax.numpy as jnp, numpy as np, optax
import blox as bx

def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)

def setup(kind: str):
    "A model, its loss function, an optimizer and the digits as arrays."
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = (digits.images / 16).astype(np.float32)
    graph = bx.Graph(kind)
    rng = bx.Rng(graph / 'rng')
    if kind == 'mlp':
        data = {'image': images.reshape(-1, 64), 'label': digits.target.astype(np.int32)}
        model = bx.Sequential(graph / 'layers', [bx.Linear(graph / 'hidden', 128, rng=rng), jax.nn.relu,
                                                 bx.Dropout(graph / 'drop', 0.1, rng=rng),
                                                 bx.Linear(graph / 'head', 10, rng=rng)])
        call = lambda params, x, is_training: model(params, x, is_training=is_training)
    else:
        data = {'image': images[..., None], 'label': digits.target.astype(np.int32)}
        model = bx.ConvNet(graph / 'convnet', 10, channels=(32, 64), rng=rng)
        call = lambda params, x, is_training: model(params, x)
    def loss_fn(params, batch, *, is_training):
        logits, params = call(params, batch['image'], is_training)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch['label']).mean()
        return (loss, {'accuracy': (logits.argmax(-1) == batch['label']).mean()}), params
    params = call(rng.seed(bx.Params(), 0), data['image'][:1], False)[1]
    return loss_fn, params, optax.adam(1e-3), data

def by_hand(loss_fn, optimizer):
    "The step of 04_training written out, on a TrainState, returning the loss and metrics only."
    def step(state, batch):
        trainable, rest = state.params.split()
        def loss_of(trainable):
            (loss, metrics), new = loss_fn(trainable.merge(rest), batch, is_training=True)
            return loss, (metrics, new.split()[1])
        (loss, (metrics, rest)), grads = jax.value_and_grad(loss_of, has_aux=True)(trainable)
        updates, opt_state = optimizer.update(grads, state.opt_state, trainable)
        trainable = optax.apply_updates(trainable, updates)
        return bx.TrainState(trainable.merge(rest), opt_state, state.step + 1), {'loss': loss, **metrics}
    return step

def run(kind: str, steps: int, repeat: int, batch_size: int):
    loss_fn, params, optimizer, data = setup(kind)
    donate = lambda f: jax.jit(f, donate_argnames='state')
    packaged, hand = donate(bx.train_step(loss_fn, optimizer)), donate(by_hand(loss_fn, optimizer))
    bare = donate(bx.train_step(loss_fn, optimizer, diagnostics=False))  # no grad_norm, no first non-finite gradient
    batches = bx.batches(data, batch_size, seed=0, num_epochs=None, drop_remainder=True)
    fixed = jax.device_put(next(iter(batches)))          # one batch on the device: the step alone

    def steps_of(step_fn, batch_source):
        def go():
            state, it = bx.TrainState.create(jax.tree.map(jnp.copy, params), optimizer), iter(batches)
            for _ in range(steps): state, metrics = step_fn(state, batch_source(it))
            jax.block_until_ready((state, metrics))
        return go

    def fit_of(progress: bool):
        def go():
            state, it = bx.TrainState.create(jax.tree.map(jnp.copy, params), optimizer), iter(batches)
            with contextlib.redirect_stderr(io.StringIO()):
                state, _ = bx.fit(packaged, state, it, steps, log_every=10, progress=progress)
            jax.block_until_ready(state)
        return go

    runs = {'hand, fixed': steps_of(hand, lambda it: fixed), 'train_step, fixed': steps_of(packaged, lambda it: fixed),
            'train_step without diagnostics, fixed': steps_of(bare, lambda it: fixed),
            'loop': steps_of(packaged, next), 'fit': fit_of(False), 'fit + bar': fit_of(True)}
    times = paired(runs, repeat)
    report(kind, batch_size, steps, repeat, times)
    return comparisons(times, steps)

COMPARED = {'train_step': ('train_step, fixed', 'hand, fixed'),
            'train_step(diagnostics=False)': ('train_step without diagnostics, fixed', 'hand, fixed'),
            'fit': ('fit', 'loop'), 'fit + bar': ('fit + bar', 'loop')}

def comparisons(times: dict, steps: int) -> list[dict]:
    "Each packaged variant beside its hand-written baseline: seconds per step, and the paired ratio's median and quartiles."
    rows = []
    for name, (a, b) in COMPARED.items():
        ratio = times[a] / times[b]
        q1, q3 = np.percentile(ratio, [25, 75])
        rows.append({'variant': name, 'baseline': b, 'step_s': float(np.median(times[a]) / steps),
                     'baseline_step_s': float(np.median(times[b]) / steps), 'ratio': float(np.median(ratio)),
                     'q1': float(q1), 'q3': float(q3)})
    return rows

def report(kind, batch_size, steps, repeat, times):
    per = lambda name: f"{np.median(times[name]) / steps * 1e6:8.0f} us/step"
    ratio = lambda a, b: f"{np.median(times[a] / times[b]):.3f}x (IQR {np.subtract(*np.percentile(times[a] / times[b], [75, 25])):.3f})"
    print(f"{kind} (batch {batch_size}, {steps} steps; medians of {repeat} interleaved rounds, ratios paired per round)")
    print(f"  1. step, one batch on device   by hand {per('hand, fixed')}   train_step {per('train_step, fixed')}   "
          f"ratio {ratio('train_step, fixed', 'hand, fixed')}   diagnostics=False {per('train_step without diagnostics, fixed')} "
          f"ratio {ratio('train_step without diagnostics, fixed', 'hand, fixed')}")
    print(f"  2. loop over grain batches     by hand {per('loop')}   fit {per('fit')} (ratio {ratio('fit', 'loop')})"
          f"   fit + progress bar {per('fit + bar')} (ratio {ratio('fit + bar', 'loop')})")

def paired(runs: dict, repeat: int) -> dict:
    "Each run's time in each of `repeat` rounds, the runs in a rotating order (so load drift hits all alike)."
    for go in runs.values(): go()   # compile
    names, times = list(runs), {name: [] for name in runs}
    for r in range(repeat):
        for name in names[r % len(names):] + names[:r % len(names)]:
            gc.collect()
            t = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - t)
    return {name: np.array(t) for name, t in times.items()}

def data(repeat: int, batch_size: int = 64, count: int = 300):
    import grain
    _, _, _, arrays = setup('mlp')
    n = len(arrays['label'])
    ours = iter(bx.batches(arrays, batch_size, seed=0, num_epochs=None, drop_remainder=True))
    gather = lambda idx: jax.tree.map(lambda a: a[idx], arrays)
    theirs = iter(grain.MapDataset.range(n).shuffle(seed=0).repeat(None).batch(batch_size, drop_remainder=True)
                  .map(gather).to_iter_dataset(grain.ReadOptions(num_threads=0, prefetch_buffer_size=0)))
    def per_batch(it):
        next(it)
        return best(lambda: [next(it) for _ in range(count)], repeat) / count
    a, b = per_batch(ours), per_batch(theirs)
    print(f"data (batch {batch_size} of 8x8 digits, best of {repeat})")
    print(f"  3. bx.batches {a * 1e6:6.0f} us/batch   grain shuffle+batch {b * 1e6:6.0f} us/batch   ratio {a / b:.3f}x")

if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--only', choices=['mlp', 'convnet', 'data'])
    parser.add_argument('--steps', type=int, default=300)
    parser.add_argument('--repeat', type=int, default=9)
    args = parser.parse_args()
    print(f"jax {jax.__version__} on {jax.devices()[0].platform} ({jax.device_count()} devices)")
    for kind, batch_size in (('mlp', 64), ('convnet', 128)):
        if args.only in (None, kind): run(kind, args.steps, args.repeat, batch_size)
    if args.only in (None, 'data'): data(args.repeat)
