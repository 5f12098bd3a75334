"""Many hosts on one machine: 05_scale's host program, run as two processes of one `jax.distributed` job.

The program is the one the chapter shows (its `WORKER = '''...'''` cell, read from nbs/05_scale.ipynb, so the page and
this test cannot drift apart). Two processes, 4 CPU devices each, talk through JAX's distributed runtime with gloo
collectives, train a data-parallel classifier for 5 steps on batches of 64 digits (32 read by each process) and save a
checkpoint together. One process reading the same 64 examples per step must give the same losses, and the checkpoint
the two wrote must restore into one process as the same weights."""
import ast, importlib, json, os, socket, subprocess, sys, tempfile
from pathlib import Path
import jax, jax.numpy as jnp, numpy as np
import blox as bx

ROOT = Path(__file__).resolve().parents[1]

def worker_program() -> str:
    "The source of the host program: the string assigned to `WORKER` in 05_scale's shown cell."
    for cell in json.loads((ROOT / 'nbs' / '05_scale.ipynb').read_text(encoding='utf-8'))['cells']:
        source = ''.join(cell['source'])
        if cell['cell_type'] == 'code' and source.startswith("WORKER = '''"):
            return ast.literal_eval(ast.parse(source).body[0].value)
    raise AssertionError("nbs/05_scale.ipynb has no WORKER cell")

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('localhost', 0))
        return s.getsockname()[1]

def run_job(out: Path, program: str):
    "Run `program` as `worker.py PORT I .` in `out`, processes 0 and 1 of a job on this machine, 4 CPU devices each."
    (out / 'worker.py').write_text(program)
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get('PYTHONPATH', '')) if p)
    env = {**os.environ, 'XLA_FLAGS': '--xla_force_host_platform_device_count=4', 'JAX_PLATFORMS': 'cpu',
           'PYTHONPATH': path}
    port = free_port()
    workers = [subprocess.Popen([sys.executable, 'worker.py', str(port), str(i), '.'], cwd=out, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in (0, 1)]
    for i, w in enumerate(workers):
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, f"process {i} failed:\n{err[-3000:]}"

def run_two_processes(out: Path) -> dict:
    "Run the chapter's program as a job of two processes; process 0's result."
    run_job(out, worker_program())
    return json.loads((out / 'result.json').read_text())

def bits(tree): return [np.asarray(jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x)
                        for x in jax.tree.leaves(tree)]

def test_two_processes_train_and_checkpoint_as_one():
    out = Path(tempfile.mkdtemp())
    result = run_two_processes(out)
    sys.path.insert(0, str(out))
    try: worker = importlib.import_module('worker')  # the same model, data and optimizer, in this one process
    finally: sys.path.remove(str(out))
    with jax.default_device(jax.devices('cpu')[0]), jax.default_matmul_precision('highest'):  # as the workers
        alone = bx.TrainState.create(worker.init(), worker.optimizer)
        alone_step = jax.jit(bx.train_step(worker.loss_fn, worker.optimizer))
        both = iter(bx.batches(worker.data, 2 * worker.per_process, seed=0, num_epochs=None, process_shard=False))
        alone_losses = []
        for _ in range(worker.steps):  # the same 64 examples per step as the two processes together
            alone, metrics = alone_step(alone, next(both))
            alone_losses.append(float(metrics['loss']))
    assert (result['devices'], result['local_devices']) == (8, 4)
    np.testing.assert_allclose(result['losses'], alone_losses, atol=1e-5)
    with bx.Checkpointer(out / 'checkpoints') as written:  # what the two processes wrote, read by one
        restored = written.restore(jax.eval_shape(lambda: alone))
    for a, b in zip(bits(restored), bits(alone)): np.testing.assert_allclose(a, b, atol=1e-5)
    files = sorted(str(p.relative_to(out / 'checkpoints')) for p in (out / 'checkpoints').rglob('*') if p.is_file())
    assert sum('_CHECKPOINT_METADATA' in f for f in files) == 1  # one checkpoint, written once
    data = [f for f in files if f.startswith(f'{worker.steps}/data/process')]
    assert data == [f'{worker.steps}/data/process_0-of-2.json', f'{worker.steps}/data/process_1-of-2.json'], data
