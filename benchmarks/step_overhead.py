"""What a blox train step costs beyond raw JAX, per step, at ~30, ~120 and ~480 parameter arrays:
`python benchmarks/step_overhead.py` (ratios printed, never asserted).

The same MLP (`depth` tanh layers of width 32, so 2 x depth arrays), the same initial weights, the same MSE loss and
the same `optax.adam`, every step jitted with the state donated:
- raw: a dict of arrays, `jax.value_and_grad` and optax by hand (what a JAX user writes without a library);
- raw again: the same function compiled a second time, the A/A control: the noise floor of the method;
- blox: the model's `Params`, *with its `Rng` state (seed and counter)*, split -> value_and_grad -> optax -> merge
  (`training.by_hand`);
- blox, typed seed: the blox step on the same params with the seed stored as a typed PRNG key, as blox stored it
  before 2026-12 (it now stores `uint32` key data): what carrying a typed key through `jax.jit` costs per step;
- blox packaged: `jax.jit(bx.train_step(loss_fn, optimizer))`, which also reports `grad_norm` and the first
  non-finite gradient (one pass over all the gradients); its ratio to the blox step is printed last.
Sync: every step waited for. Pipelined: 50 steps dispatched, then waited for once.
Method: rounds interleave the variants in a rotating order, so that drift in the machine's load hits all alike;
each variant's time in a round is the mean of enough steps to take ~`--sample` seconds (counted per variant); reported: the median over rounds of the paired
ratio to raw in the same round, and its IQR."""
import argparse, functools, platform, time
import jax, jax.numpy as jnp, numpy as np, optax
import blox as bx
from training import by_hand  # the step of 04_training, written out

WIDTH = 32

def workload(depth: int):
    graph = bx.Graph('mlp')
    rng = bx.Rng(graph / 'rng')
    layers = [bx.Linear(graph / f'layer{i}', WIDTH, rng=rng) for i in range(depth)]
    def forward(params, x):
        for layer in layers: x, params = layer(params, x); x = jnp.tanh(x)
        return x, params
    x, y = jnp.ones((8, WIDTH)), jnp.zeros((8, WIDTH))
    params = forward(rng.seed(bx.Params(), 0), x)[1]
    optimizer = optax.adam(1e-3)

    def raw_loss(w, x, y):
        for i in range(depth): x = jnp.tanh(x @ w[f'layer{i}']['kernel'] + w[f'layer{i}']['bias'])
        return jnp.mean((x - y) ** 2)
    def raw_step(state, x, y):
        w, opt_state = state
        loss, grads = jax.value_and_grad(raw_loss)(w, x, y)
        updates, opt_state = optimizer.update(grads, opt_state, w)
        return (optax.apply_updates(w, updates), opt_state), loss

    def loss_fn(params, batch, *, is_training):
        out, params = forward(params, batch[0])
        return (jnp.mean((out - batch[1]) ** 2), {}), params
    hand = by_hand(loss_fn, optimizer)
    def blox_step(state, x, y): return hand(state, (x, y))
    packaged = bx.train_step(loss_fn, optimizer)
    def packaged_step(state, x, y): return packaged(state, (x, y))

    w = params.to_dict()['mlp']
    w = {k: v for k, v in w.items() if k != 'rng'}
    def raw_state(): w2 = jax.tree.map(jnp.copy, w); return (w2, optimizer.init(w2))
    def blox_state(): return bx.TrainState.create(jax.tree.map(jnp.copy, params), optimizer)
    typed_seed = params.set(('mlp', 'rng', 'seed'), rng.seed_key(params), metadata={})
    def typed_state(): return bx.TrainState.create(jax.tree.map(jnp.copy, typed_seed), optimizer)
    donate = functools.partial(jax.jit, donate_argnums=0)
    variants = {'raw': (donate(raw_step), raw_state), 'raw again': (donate(lambda s, x, y: raw_step(s, x, y)), raw_state),
                'blox': (donate(blox_step), blox_state), 'blox, typed seed': (donate(blox_step), typed_state),
                'blox packaged': (donate(packaged_step), blox_state)}
    return variants, x, y, len(jax.tree.leaves(params))

def check_numerics(variants, x, y):
    "The first three losses of every variant agree with raw before anything is timed."
    losses = {}
    for name, (step, make) in variants.items():
        state, out = make(), []
        for _ in range(3):
            state, loss = step(state, x, y)
            out.append(float(loss['loss'] if isinstance(loss, dict) else loss))
        losses[name] = np.array(out)
    for name, l in losses.items():
        np.testing.assert_allclose(l, losses['raw'], rtol=1e-6, err_msg=name)

def measure(variants, x, y, rounds, sample, pipelined, clock=time.perf_counter):
    """Per library, one time per round: the mean over enough steps to take ~`sample` s (counted for each library, so
    a slow one does not stretch the run), the libraries in a rotating order."""
    states, number = {}, {}
    for name, (step, make, *_) in variants.items():
        state = make()
        for _ in range(2): state = jax.block_until_ready(step(state, x, y)[0])  # compile, and once more for committed inputs
        t = time.perf_counter()
        for _ in range(5): state = jax.block_until_ready(step(state, x, y)[0])
        states[name], number[name] = state, max(5, round(sample / ((time.perf_counter() - t) / 5)))
    names, times = list(variants), {name: [] for name in variants}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            step, state = variants[name][0], states[name]
            t = clock()
            for _ in range(number[name]):
                state, loss = step(state, x, y)
                if not pipelined: jax.block_until_ready(loss)
            jax.block_until_ready(state)
            times[name].append((clock() - t) / number[name])
            states[name] = state
    return {name: np.array(t) for name, t in times.items()}

if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--rounds', type=int, default=30)
    parser.add_argument('--sample', type=float, default=0.05, help='seconds of steps per timing')
    parser.add_argument('--quick', action='store_true', help='a smoke run: few rounds, two sizes')
    parser.add_argument('--clock', choices=['wall', 'cpu'], default='wall',
                        help="cpu: the process's CPU time (all its threads, XLA's included), which other processes' "
                             "load on a shared machine disturbs far less than the wall clock")
    parser.add_argument('--depths', type=int, nargs='+', default=[15, 60, 240], help='MLP depths (2 arrays a layer)')
    args = parser.parse_args()
    rounds, sample = (3, 0.005) if args.quick else (args.rounds, args.sample)
    print(f"{platform.machine()}, {jax.device_count()} {jax.devices()[0].platform} device(s); python {platform.python_version()}, "
          f"jax {jax.__version__}, optax {optax.__version__}")
    print(f"{args.clock} clock; {rounds} rounds of ~{sample * 1e3:.0f} ms of steps per variant; ratio: median of per-round (variant / raw); IQR of that ratio")
    for depth in ((7, 30) if args.quick else args.depths):
        variants, x, y, arrays = workload(depth)
        check_numerics(variants, x, y)
        for pipelined in (False, True):
            times = measure(variants, x, y, rounds, sample, pipelined,
                            time.process_time if args.clock == 'cpu' else time.perf_counter)
            row = []
            for name, t in times.items():
                ratio = t / times['raw']
                q1, q3 = np.percentile(ratio, [25, 75])
                row.append(f"{name} {np.median(t) * 1e6:7.1f} us {np.median(ratio):.3f}x (IQR {q3 - q1:.3f})")
            own = times['blox packaged'] / times['blox']
            row.append(f"packaged / blox {np.median(own):.3f}x (IQR {np.subtract(*np.percentile(own, [75, 25])):.3f}; "
                       f"fastest rounds {times['blox packaged'].min() / times['blox'].min():.3f}x)")
            print(f"{arrays:4d} arrays {'pipelined' if pipelined else 'sync     '}: " + ' | '.join(row), flush=True)
