"""What the Checkpointer's integrity checks cost, printed (never asserted): `python benchmarks/checkpoints.py`.

`save` runs one jitted reduction over the state (`_fingerprint`: is every float finite, and each array's checksum,
the sum of its 32-bit words mod 2**32) and `restore` runs it again on what it read, to compare the checksums. Timed
here: that reduction alone (warm, and its first call, which compiles), and a whole synchronous save (`save` + `wait`)
and restore with the checks and with them stubbed out, for the 04 chapter's MLP with adam (~0.1 MiB) and a 48 MiB
state (four 1024x1024 float32 weights with adam's two moments). Best of 5 repeats; run on an idle machine."""
import tempfile, time
import jax, jax.numpy as jnp, numpy as np, optax
import blox as bx
from blox import training

def best(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter(); fn(); times.append(time.perf_counter() - t)
    return min(times)

def mlp_state():
    graph = bx.Graph('mlp'); rng = bx.Rng(graph / 'rng')
    model = bx.Sequential(graph / 'layers', [bx.Linear(graph / 'hidden', 128, rng=rng), bx.BatchNorm(graph / 'norm'),
                                             jax.nn.relu, bx.Linear(graph / 'head', 10, rng=rng)])
    params = model(rng.seed(bx.Params(), seed=0), jnp.zeros((1, 64)), is_training=False)[1]
    return bx.TrainState.create(params, optax.adam(1e-3))

def big_state():
    params = bx.Params()
    for i in range(4): params = params.set(('net', f'w{i}'), jnp.full((1024, 1024), 0.5 + i, jnp.float32))
    return bx.TrainState.create(params, optax.adam(1e-3))   # 4 MiB x 4 weights x 3 (params, mu, nu) = 48 MiB

def measure(name: str, state):
    leaves = jax.tree.leaves(state)
    size = sum(x.nbytes for x in leaves)
    t = time.perf_counter(); training._fingerprints(state); first = time.perf_counter() - t
    warm = best(lambda: training._fingerprints(state))
    target = jax.eval_shape(lambda: state)
    results = {}
    for checked in (True, False):
        saved_fp, saved_verify = training._fingerprints, bx.Checkpointer._verify
        if not checked:
            training._fingerprints = lambda tree: ({}, {})
            bx.Checkpointer._verify = lambda self, step, restored: None
        try:
            directory = tempfile.mkdtemp()
            c = bx.Checkpointer(directory, keep=2, async_save=False)
            count = iter(range(1, 1000))
            def save():
                c.save(bx.TrainState(state.params, state.opt_state, jnp.int32(next(count)), state.ema)); c.wait()
            save()   # the first save makes orbax's manager
            results[checked] = best(save), best(lambda: jax.block_until_ready(c.restore(target)))
            c.close()
        finally:
            training._fingerprints, bx.Checkpointer._verify = saved_fp, saved_verify
    (save_on, restore_on), (save_off, restore_off) = results[True], results[False]
    print(f"{name}: {len(leaves)} arrays, {size / 2**20:.2f} MiB on {jax.devices()[0].platform}")
    print(f"  finite check + checksums: {warm * 1e3:.2f} ms warm, {first * 1e3:.0f} ms first call (compiles)")
    print(f"  save + wait:  {save_off * 1e3:.1f} ms without the checks, {save_on * 1e3:.1f} ms with them")
    print(f"  restore:      {restore_off * 1e3:.1f} ms without the checksum, {restore_on * 1e3:.1f} ms with it")

if __name__ == '__main__':
    measure('04 MLP (adam)', mlp_state())
    measure('~50 MB state (adam)', big_state())
