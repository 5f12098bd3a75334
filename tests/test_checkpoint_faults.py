"""Checkpoints under fault injection: a process saving checkpoints is killed with SIGKILL midway through a save or a
rotation, and an evaluator reads a directory while a trainer is still writing it (04_training, "Checkpoints").

Each test runs a small training-free script in a separate process, holds it at the moment under test (by pausing one
of orbax's internal steps, or the file deletions of a rotation), kills it, and checks that every step the directory
lists restores with its own values and that the next save clears what the killed one left."""
import os, subprocess, sys, tempfile, textwrap, time
from pathlib import Path
import jax, jax.numpy as jnp, optax
import pytest
import blox as bx

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, 'PYTHONPATH': os.pathsep.join([str(ROOT), os.environ.get('PYTHONPATH', '')]).rstrip(os.pathsep),
       'JAX_PLATFORMS': 'cpu'}

KILLED_SAVE = textwrap.dedent('''
    import os, sys, time, jax, jax.numpy as jnp, blox as bx, optax
    from pathlib import Path
    directory, moment = Path(sys.argv[1]), sys.argv[2]
    def hold(*args, **kwargs):                                       # stop here until the parent kills us
        (directory / 'ready').touch(); time.sleep(3600)
    def saved(step):                                                 # 2 MiB of step + 1, so a write takes a moment
        state = bx.TrainState.create(bx.Params().set(('net', 'w'), jnp.full((512, 1024), step + 1.0)), optax.sgd(0.1))
        return bx.TrainState(state.params, state.opt_state, jnp.int32(step))
    checkpointer = bx.Checkpointer(directory, keep=2)
    checkpointer.save(saved(0)); checkpointer.wait()                 # step 0: complete
    if moment == 'before-rename':                                    # hold the save just before its rename
        from orbax.checkpoint._src.path import atomicity
        async def held(self): hold()
        atomicity.AtomicRenameTemporaryPath.finalize = held
    if moment.startswith('rotating'):                                # keep=2: step 2's save rotates step 0 out
        checkpointer.save(saved(1)); checkpointer.wait()
        from orbax.checkpoint._src.path import deleter
        if moment == 'rotating: before it starts': deleter.StandardCheckpointDeleter.delete = hold
        files = sum(p.is_file() for p in (directory / '0').rglob('*'))
        last = {'rotating: half its files deleted': files // 2, 'rotating: all its files deleted but one': files - 1}
        unlink, calls = os.unlink, []
        def unlinking(*args, **kwargs):                              # hold once `last[moment]` files are deleted
            if len(calls) == last.get(moment): hold()
            calls.append(args)
            return unlink(*args, **kwargs)
        os.unlink = unlinking
        checkpointer.save(saved(2)); checkpointer.wait()
        hold()
    checkpointer.save(saved(1))                                      # step 1: in flight...
    if moment == 'async': (directory / 'ready').touch()
    time.sleep(3600)                                                 # ...until the parent kills us
''')

TRAINER = textwrap.dedent('''
    import sys, time, jax.numpy as jnp, blox as bx, optax
    from pathlib import Path
    from orbax.checkpoint._src.path import atomicity
    directory = Path(sys.argv[1])
    finalize = atomicity.AtomicRenameTemporaryPath.finalize
    async def held(self):                        # step 1 waits just before its rename, until the reader has looked
        if self.get_final().name == '1':
            (directory.parent / 'ready').touch()
            while not (directory.parent / 'go').exists(): time.sleep(0.02)
        return await finalize(self)
    atomicity.AtomicRenameTemporaryPath.finalize = held
    with bx.Checkpointer(directory, keep=3) as checkpointer:
        for step in range(4):
            state = bx.TrainState.create(bx.Params().set(('net', 'w'), jnp.full((512, 1024), step + 1.0)), optax.sgd(0.1))
            checkpointer.save(bx.TrainState(state.params, state.opt_state, jnp.int32(step)))
''')

def wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120):
    "Wait until `path` exists or `proc` exits."
    for _ in range(int(seconds / 0.05)):
        if path.exists() or proc.poll() is not None: return
        time.sleep(0.05)

def kill_during_save(moment: str) -> Path:
    "Run `KILLED_SAVE` until it reaches `moment`, SIGKILL it, and return its checkpoint directory."
    directory = Path(tempfile.mkdtemp()) / 'run'
    directory.mkdir()
    proc = subprocess.Popen([sys.executable, '-c', KILLED_SAVE, str(directory), moment], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(directory / 'ready', proc)
    proc.kill()
    _, err = proc.communicate()
    assert (directory / 'ready').exists(), f'the save never started:\n{err[-3000:]}'
    return directory

def w_state(step: int) -> bx.TrainState:
    "What the scripts save at `step`: every weight is step + 1 (0 is what a lost file reads as)."
    state = bx.TrainState.create(bx.Params().set(('net', 'w'), jnp.full((512, 1024), step + 1.0)), optax.sgd(0.1))
    return bx.TrainState(state.params, state.opt_state, jnp.int32(step))

W_TARGET = jax.eval_shape(lambda: w_state(0))

def listing(directory: Path) -> list[str]:
    return sorted('1.orbax-checkpoint-tmp-...' if 'tmp' in p.name else p.name
                  for p in directory.iterdir() if p.name not in ('ready', 'go'))

def mean_weight(checkpointer, step=None) -> float:
    return float(checkpointer.restore(W_TARGET, step=step).params[('net', 'w')].value.mean())

def test_killed_before_the_rename():
    "The worst moment: every file of step 1 written, only the atomic rename left."
    directory = kill_during_save('before-rename')
    left = listing(directory)
    assert left == ['0', '1.orbax-checkpoint-tmp-...'], left
    c = bx.Checkpointer(directory)             # a new process's view: the half-written step 1 is not a checkpoint
    assert (c.steps, mean_weight(c)) == ([0], 1.0)
    assert listing(directory) == left          # reading changed nothing
    c.save(w_state(2)); c.wait()               # a writer's first save clears the killed save's leftovers
    assert listing(directory) == ['0', '2']

@pytest.mark.parametrize('attempt', range(2))
def test_killed_after_an_async_save_returned(attempt):
    "The background write may or may not have finished: whichever steps are listed restore intact."
    c = bx.Checkpointer(kill_during_save('async'))
    assert c.steps in ([0], [0, 1]), c.steps
    for step in c.steps: assert mean_weight(c, step) == step + 1

@pytest.mark.parametrize('moment', ['rotating: before it starts', 'rotating: half its files deleted',
                                    'rotating: all its files deleted but one'])
def test_killed_while_rotating(moment):
    "keep=2: saving step 2 rotates step 0 out; every listed step restores whatever the moment of the kill."
    directory = kill_during_save(moment)
    c = bx.Checkpointer(directory, keep=2)
    restorable = c.steps
    assert {1, 2} <= set(restorable), restorable   # step 2 was complete before the rotation began
    for step in restorable: assert mean_weight(c, step) == step + 1
    c.save(w_state(3)); c.wait()
    assert (c.steps, listing(directory)) == ([2, 3], ['2', '3'])

def test_reader_beside_a_running_trainer():
    "A read-only Checkpointer opened while the trainer holds step 1 before its rename changes nothing the trainer needs."
    root = Path(tempfile.mkdtemp())
    proc = subprocess.Popen([sys.executable, '-c', TRAINER, str(root / 'run')], env=ENV,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    wait_for(root / 'ready', proc)
    reader = bx.Checkpointer(root / 'run', read_only=True)
    seen = reader.steps, listing(root / 'run'), int(reader.restore(W_TARGET).step)
    (root / 'go').touch()
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]          # the trainer finished...
    assert seen == ([0], ['0', '1.orbax-checkpoint-tmp-...'], 0)
    assert reader.steps == [1, 2, 3]                   # ...and the same reader sees its later steps
    for step in reader.steps: assert mean_weight(reader, step) == step + 1
    with pytest.raises(bx.CheckpointError, match="this Checkpointer is read-only"): reader.save(w_state(4))
