"""Exported blox steps, read back in fresh processes (nbs/07_export.ipynb has the chapter).

A server does not run the Python that exported a model. So each artifact here is written to a file and read back by a
new Python process: one that never imports blox (an artifact with the weights baked in, a function of the ids only,
with a symbolic batch served at batch 1 and 7; the weights pass through `jax.lax.optimization_barrier`, see the
chapter's gotchas), and one that imports blox to read a prefill step whose signature holds
`Params` with the KV cache inside. Each must give, to the bit, what the jitted call gives in this process."""
import os, subprocess, sys, tempfile
from pathlib import Path
import jax, jax.numpy as jnp, numpy as np
from jax import export
import blox as bx

ROOT = Path(__file__).resolve().parents[1]

def model():
    graph = bx.Graph('lm')
    rng = bx.Rng(graph / 'rng')
    lm = bx.TransformerLM(graph / 'model', num_embeddings=64, depth=2, num_heads=4, head_dim=8, rng=rng)
    _, params = lm(rng.seed(bx.Params(), seed=0), jnp.zeros((1, 8), jnp.int32), is_training=False)
    return lm, params

def serve(program: str, out: Path, with_blox: bool) -> str:
    "Run `program` in a fresh Python in `out`, with blox importable or not; its stdout."
    path = os.pathsep.join(p for p in ((str(ROOT) if with_blox else ''), os.environ.get('PYTHONPATH', '')) if p)
    env = {k: v for k, v in os.environ.items() if k != 'XLA_FLAGS'} | {'JAX_PLATFORMS': 'cpu', 'PYTHONPATH': path}
    run = subprocess.run([sys.executable, '-c', program], cwd=out, env=env, capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, f"the serving process failed:\n{run.stderr[-3000:]}"
    return run.stdout

SERVE_BAKED = '''
import sys, numpy as np, jax
from jax import export
restored = export.deserialize(bytearray(open('forward.jax', 'rb').read()))
inputs = np.load('inputs.npz')
np.savez('served.npz', **{name: np.asarray(restored.call(ids)) for name, ids in inputs.items()})
assert 'blox' not in sys.modules, 'the serving process imported blox'
print('blox' in sys.modules)
'''

def test_baked_artifact_runs_without_blox_at_batch_1_and_7():
    lm, params = model()
    def forward(ids):  # the weights are constants of the program; the barrier keeps XLA from compiling the
        # symbolic-batch program around constant weights differently from jit's (a few ulps apart without it)
        return lm(jax.lax.optimization_barrier(params), ids, is_training=False)[0]
    b, = export.symbolic_shape('b')
    blob = export.export(jax.jit(forward))(jax.ShapeDtypeStruct((b, 8), jnp.int32)).serialize()
    inputs = {f'batch{n}': np.asarray(jax.random.randint(jax.random.key(n), (n, 8), 0, 64)) for n in (1, 7)}
    out = Path(tempfile.mkdtemp())
    (out / 'forward.jax').write_bytes(blob)
    np.savez(out / 'inputs.npz', **inputs)
    assert serve(SERVE_BAKED, out, with_blox=False).strip() == 'False'
    served = np.load(out / 'served.npz')
    for name, ids in inputs.items():
        want = np.asarray(jax.jit(forward)(ids))
        assert served[name].shape == (len(ids), 8, 64)
        np.testing.assert_array_equal(served[name], want)   # bit for bit

SERVE_PREFILL = '''
import sys, pickle, numpy as np, jax
from jax import export
import blox   # registers Params with jax.export: the artifact's signature holds them
restored = export.deserialize(bytearray(open('prefill.jax', 'rb').read()))
cache, ids, lengths = pickle.load(open('inputs.pkl', 'rb'))
logits, filled = restored.call(cache, ids, lengths)
pickle.dump((np.asarray(logits), jax.tree.map(np.asarray, filled)), open('served.pkl', 'wb'))
'''

def test_prefill_with_params_in_its_signature_reads_back_in_a_process_with_blox():
    lm, params = model()
    def prefill(p, ids, lengths): return lm(p, ids, is_training=False, decode=True, lengths=lengths)
    b, = export.symbolic_shape('b')
    specs = bx.export_specs(lm.init_cache(params, 1, 16), {'batch': b})
    exported = export.export(jax.jit(prefill))(specs, jax.ShapeDtypeStruct((b, 8), jnp.int32),
                                               jax.ShapeDtypeStruct((b,), jnp.int32))
    cache, ids, lengths = lm.init_cache(params, 3, 16), jnp.ones((3, 8), jnp.int32), jnp.array([8, 2, 5], jnp.int32)
    out = Path(tempfile.mkdtemp())
    (out / 'prefill.jax').write_bytes(exported.serialize())
    import pickle
    (out / 'inputs.pkl').write_bytes(pickle.dumps(jax.tree.map(np.asarray, (cache, ids, lengths))))
    serve(SERVE_PREFILL, out, with_blox=True)
    logits, filled = pickle.loads((out / 'served.pkl').read_bytes())
    want_logits, want_filled = jax.jit(prefill)(cache, ids, lengths)
    assert jax.tree.structure(filled) == jax.tree.structure(want_filled)   # the same paths, flags and metadata
    np.testing.assert_array_equal(logits, np.asarray(want_logits))
    for a, w in zip(jax.tree.leaves(filled), jax.tree.leaves(want_filled)): np.testing.assert_array_equal(a, w)

def test_without_blox_a_params_artifact_does_not_read_back():
    "What the chapter's first gotcha says: the registration is made by `import blox`."
    lm, params = model()
    out = Path(tempfile.mkdtemp())
    blob = export.export(jax.jit(lambda p, ids: lm(p, ids, is_training=False)[0]))(params, jnp.ones((1, 8), jnp.int32))
    (out / 'forward.jax').write_bytes(blob.serialize())
    program = '''
from jax import export
try: export.deserialize(bytearray(open('forward.jax', 'rb').read()))
except Exception as e: print(type(e).__name__, e)
'''
    said = serve(program, out, with_blox=False)
    assert 'blox.Params' in said, said
