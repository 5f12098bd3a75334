"""Loading a checkpoint onto the devices of two processes of one `jax.distributed` job: each reads only its slices.

The parent writes a small checkpoint in a foreign layout with NumPy (PyTorch's `[out, in]` kernels, fused
query-key-value and gate-up projections, one key per layer, a rotary buffer to ignore). Two processes, 4 CPU devices
each, load it with `bx.load_safetensors(..., shardings=...)` onto a mesh of all 8 devices that splits the embedding
axis over `data` (so each process's devices need half of every tensor) and the heads and MLP over `model`. Each
process counts the bytes it reads from the file (by wrapping the loader's one read function) and writes the shards it
holds. The parent assembles the shards of both and compares every parameter with NumPy's own transposes and slices of
the file's tensors, bit for bit, and checks that each process read exactly the union of its devices' shards: half."""
import json, tempfile
from pathlib import Path
import numpy as np
from safetensors.numpy import save_file
from test_multiprocess import run_job

V, D, H, HD, F, DEPTH = 64, 32, 4, 8, 64, 2

WORKER = '''
import json, sys
from pathlib import Path
import jax, jax.numpy as jnp, numpy as np
import blox as bx
import blox.interchange as interchange

V, D, H, HD, F, DEPTH = %r
port, process_id, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
jax.config.update('jax_cpu_collectives_implementation', 'gloo')
jax.distributed.initialize(coordinator_address=f'localhost:{port}', num_processes=2, process_id=process_id)

L, B = 'model.layers.{i}.', 'blocks/block/'
key_map = bx.KeyMap([
    bx.Rule('model.embed_tokens.weight', 'embed/embedding'),
    bx.Rule('model.norm.weight', 'norm/scale'),
    bx.Rule(L + 'self_attn.qkv_proj.weight', [B + 'attn/query/kernel', B + 'attn/key/kernel', B + 'attn/value/kernel'],
            '(h d) e -> e h d', axis=0),
    bx.Rule(L + 'self_attn.o_proj.weight', B + 'attn/out/kernel', 'e (h d) -> h d e'),
    bx.Rule(L + 'mlp.gate_up_proj.weight', [B + 'mlp/gate/kernel', B + 'mlp/up/kernel'], 'f e -> e f', axis=0),
    bx.Rule(L + 'mlp.down_proj.weight', B + 'mlp/down/kernel', 'e f -> f e'),
    bx.Rule(L + 'input_layernorm.weight', B + 'attn_norm/scale'),
    bx.Rule(L + 'post_attention_layernorm.weight', B + 'mlp_norm/scale'),
], ignore=[L + 'self_attn.rotary_emb.inv_freq'])

graph = bx.Graph('lm')
rng = bx.Rng(graph / 'rng')
lm = bx.TransformerLM(graph / 'model', V, depth=DEPTH, num_heads=H, head_dim=HD, hidden_features=F, rng=rng)
ids = jnp.zeros((1, 2), jnp.int32)
weights, _ = jax.eval_shape(lambda: lm(rng.seed(bx.Params(), seed=0), ids, is_training=False)[1]).split()
mesh = jax.make_mesh((4, 2), ('data', 'model'), axis_types=(jax.sharding.AxisType.Auto,) * 2)
rules = {'embed': 'data', 'heads': 'model', 'kv_heads': 'model', 'mlp': 'model', 'vocab': None, 'layers': None,
         'head_dim': None}
specs = bx.shardings(weights, mesh, rules)

read, bytes_read = interchange._read, [0]
def counting_read(handle, key, box):
    block = read(handle, key, box)
    bytes_read[0] += block.nbytes
    return block
interchange._read = counting_read
loaded = bx.load_safetensors(out / 'checkpoint.safetensors', weights, key_map, prefix='lm/model', shardings=specs)
interchange._read = read

shards, needed = {}, 0
for path, p in loaded.items():
    distinct = {}
    for s in p.value.addressable_shards:
        index = tuple((i.start or 0, i.stop if i.stop is not None else n) for i, n in zip(s.index, p.value.shape))
        distinct[index] = np.asarray(s.data)
    needed += sum(a.nbytes for a in distinct.values())
    for k, (index, data) in enumerate(distinct.items()):
        shards[f"{bx.path_str(path)}|{json.dumps(index)}"] = data
np.savez(out / f'shards_{process_id}.npz', **shards)
(out / f'result_{process_id}.json').write_text(json.dumps({
    'bytes_read': bytes_read[0], 'bytes_needed': needed, 'devices': jax.device_count(),
    'local_devices': jax.local_device_count(), 'total': sum(int(np.prod(x.shape)) * 4 for x in jax.tree.leaves(weights))}))
jax.distributed.shutdown()
''' % ((V, D, H, HD, F, DEPTH),)

def checkpoint(out: Path) -> dict:
    "A checkpoint as a PyTorch model in the Llama family with fused projections (as Phi-3's) would write it."
    r = np.random.default_rng(0)
    def normal(*shape): return r.standard_normal(shape).astype(np.float32)
    tensors = {'model.embed_tokens.weight': normal(V, D), 'model.norm.weight': normal(D)}
    for i in range(DEPTH):
        tensors |= {f'model.layers.{i}.self_attn.qkv_proj.weight': normal(3 * H * HD, D),
                    f'model.layers.{i}.self_attn.o_proj.weight': normal(D, H * HD),
                    f'model.layers.{i}.mlp.gate_up_proj.weight': normal(2 * F, D),
                    f'model.layers.{i}.mlp.down_proj.weight': normal(D, F),
                    f'model.layers.{i}.input_layernorm.weight': normal(D),
                    f'model.layers.{i}.post_attention_layernorm.weight': normal(D),
                    f'model.layers.{i}.self_attn.rotary_emb.inv_freq': normal(HD // 2)}
    save_file(tensors, out / 'checkpoint.safetensors')
    return tensors

def expected(t: dict) -> dict:
    "Each blox parameter from the file's tensors by NumPy's own slicing, transposes and reshapes, layers stacked."
    def layers(f): return np.stack([f(i) for i in range(DEPTH)])
    qkv = lambda i, k: t[f'model.layers.{i}.self_attn.qkv_proj.weight'][k * H * HD:(k + 1) * H * HD].T.reshape(D, H, HD)
    gate_up = lambda i, k: t[f'model.layers.{i}.mlp.gate_up_proj.weight'][k * F:(k + 1) * F].T
    b = 'lm/model/blocks/block/'
    return {'lm/model/embed/embedding': t['model.embed_tokens.weight'], 'lm/model/norm/scale': t['model.norm.weight'],
            **{b + f'attn/{n}/kernel': layers(lambda i, k=k: qkv(i, k)) for k, n in enumerate(['query', 'key', 'value'])},
            b + 'attn/out/kernel': layers(lambda i: t[f'model.layers.{i}.self_attn.o_proj.weight'].T.reshape(H, HD, D)),
            b + 'mlp/gate/kernel': layers(lambda i: gate_up(i, 0)), b + 'mlp/up/kernel': layers(lambda i: gate_up(i, 1)),
            b + 'mlp/down/kernel': layers(lambda i: t[f'model.layers.{i}.mlp.down_proj.weight'].T),
            b + 'attn_norm/scale': layers(lambda i: t[f'model.layers.{i}.input_layernorm.weight']),
            b + 'mlp_norm/scale': layers(lambda i: t[f'model.layers.{i}.post_attention_layernorm.weight'])}

def test_two_processes_each_read_only_their_slices():
    out = Path(tempfile.mkdtemp())
    tensors = checkpoint(out)
    run_job(out, WORKER)  # 05_scale's launcher: two processes of 4 CPU devices each
    results = [json.loads((out / f'result_{i}.json').read_text()) for i in (0, 1)]
    total = results[0]['total']
    for r in results:
        assert (r['devices'], r['local_devices']) == (8, 4)
        assert r['bytes_read'] == r['bytes_needed'] == total // 2, (r, total)  # its devices' shards, nothing else
    want = expected(tensors)
    assert sum(a.nbytes for a in want.values()) == total
    got = {p: np.full(a.shape, np.nan, np.float32) for p, a in want.items()}
    for i in (0, 1):
        with np.load(out / f'shards_{i}.npz') as shards:
            for name in shards.files:
                p, index = name.split('|')
                got[p][tuple(slice(a, b) for a, b in json.loads(index))] = shards[name]
    for p, a in want.items():
        np.testing.assert_array_equal(got[p], a, err_msg=p)  # every element from some process, and equal
