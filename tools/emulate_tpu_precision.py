"""Run notebooks on CPU as a TPU would compute their float32 matmuls: one bfloat16 pass by default.

A TPU multiplies float32 matrices (`dot_general`, `conv_general_dilated`) by rounding both operands to bfloat16 and
accumulating in float32, unless the op asks for more (`precision='highest'`, `jax.default_matmul_precision('highest')`).
CPU always computes in full float32 and ignores the precision setting, so a test that only holds at full precision
passes here and fails on a TPU. This script makes CPU behave like the TPU default: it wraps the CPU lowering of both
primitives so that a float32 operand whose precision is the default (`None`, `Precision.DEFAULT`, or the `DEFAULT`
algorithm preset) is rounded to bfloat16 first. The ambient `jax_default_matmul_precision` is resolved into the
primitive's `precision` parameter when the op is traced, so `with jax.default_matmul_precision('highest'):` (or the
config flag) turns the emulation off for the ops traced inside it, as on a TPU. `'high'`/`'tensorfloat32'` (TPU: three
bf16 passes, near float32) are left at full float32.

    python tools/emulate_tpu_precision.py --self-check          # the emulator's own check
    python tools/emulate_tpu_precision.py nbs/03_layers.ipynb   # run notebooks as `nbdev_test` does, emulated
    python tools/emulate_tpu_precision.py --all nbs/X.ipynb     # keep going after a failing cell, list every failure

A tool for auditing tests on CPU, not a perfect TPU model: TPU's convolution and reduction orders differ too, and other
ops (e.g. `exp`) are not emulated."""
import os, sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

def install():
    "Make CPU round float32 operands of default-precision `dot_general`/`conv_general_dilated` to bfloat16."
    import jax.numpy as jnp
    from jax._src import core
    from jax._src.interpreters import mlir
    from jax._src.lax import lax as lax_internal, convolution
    from jax.lax import Precision, DotAlgorithmPreset

    def default(p):  # is this operand's precision the TPU default (one bf16 pass)?
        return p is None or p == Precision.DEFAULT or p == DotAlgorithmPreset.DEFAULT

    def operand_defaults(precision):  # (lhs, rhs): which operands a TPU would round
        if isinstance(precision, tuple): return tuple(default(p) for p in precision)
        return (default(precision),) * 2

    def rounded(ctx, value, aval):
        if aval.dtype != jnp.float32: return value
        bf16 = core.ShapedArray(aval.shape, jnp.bfloat16)
        return mlir.convert_hlo(ctx, mlir.convert_hlo(ctx, value, aval, bf16), bf16, aval)

    def wrap(prim):
        entry = mlir._platform_specific_lowerings['cpu'].get(prim) or mlir._lowerings[prim]
        rule = entry.rule
        if getattr(rule, '_tpu_emulation', False): return
        def emulated(ctx, lhs, rhs, *rest, precision, **params):
            lhs_default, rhs_default = operand_defaults(precision)
            lhs_aval, rhs_aval = ctx.avals_in[:2]
            if lhs_default: lhs = rounded(ctx, lhs, lhs_aval)
            if rhs_default: rhs = rounded(ctx, rhs, rhs_aval)
            return rule(ctx, lhs, rhs, *rest, precision=precision, **params)
        emulated._tpu_emulation = True
        mlir.register_lowering(prim, emulated, platform='cpu', inline=entry.inline)

    wrap(lax_internal.dot_general_p)
    wrap(convolution.conv_general_dilated_p)

def self_check():
    "A float32 matmul differs from float64 by bf16 rounding under the emulator, and by float32 rounding under 'highest'."
    import jax, jax.numpy as jnp
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 256, 256))
    exact = a @ b
    def rel(x): return float(np.abs(np.asarray(x, np.float64) - exact).max() / np.abs(exact).max())
    a32, b32 = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
    matmul = jax.jit(lambda x, y: x @ y)
    conv = jax.jit(lambda x, y: jax.lax.conv(x[None, None], y[None, None], (1, 1), 'VALID'))
    errors = {'eager default': rel(a32 @ b32), 'jit default': rel(matmul(a32, b32)),
              "precision='highest'": rel(jnp.matmul(a32, b32, precision='highest'))}
    with jax.default_matmul_precision('highest'):
        errors["jit inside default_matmul_precision('highest')"] = rel(matmul(a32, b32))
    errors['jit default again (cache keyed on precision)'] = rel(matmul(a32, b32))
    a_bf16, b_bf16 = (np.asarray(jnp.asarray(v, jnp.bfloat16), np.float64) for v in (a, b))
    errors['reference: bf16-rounded inputs in float64'] = rel(a_bf16 @ b_bf16)
    conv_exact = float(np.asarray(conv(a32[:8, :8], b32[:3, :3]))[0, 0, 0, 0])
    with jax.default_matmul_precision('highest'):
        conv_highest = float(np.asarray(conv(a32[:8, :8], b32[:3, :3]))[0, 0, 0, 0])
    for name, err in errors.items(): print(f"{name:55s} max rel error vs float64 {err:.1e}")
    low = [k for k in errors if 'default' in k and 'highest' not in k]
    ok = all(errors[k] > 1e-4 for k in low) and all(errors[k] < 1e-6 for k in errors if 'highest' in k)
    ok &= conv_exact != conv_highest
    print('conv default vs highest differ:', conv_exact != conv_highest)
    print('self-check', 'passed' if ok else 'FAILED')
    return ok

def test_notebook(path: Path, all_cells: bool) -> bool:
    "Run `path` as `nbdev_test` does (IN_TEST=1, its skip flags), stopping at the first failure unless `all_cells`."
    from nbdev.config import get_config
    from nbdev.test import test_nb
    if not all_cells:
        ok, secs = test_nb(path, skip_flags=get_config().tst_flags.split(), basepath=get_config().config_path)
        print(f"{'passed' if ok else 'FAILED'} {path.name} ({secs:.0f} s)")
        return ok
    from nbdev.process import NBProcessor
    from nbdev.frontmatter import FrontmatterProc
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory
    flags = set(get_config().tst_flags.split())
    sys.path.insert(0, str(get_config().config_path))
    nb = NBProcessor(path, procs=FrontmatterProc, process=True).nb
    def skip(cell):
        if cell.cell_type != 'code' or 'nbdev_export' + '(' in cell.source: return True
        directives = getattr(cell, 'directives_', {}) or {}
        return directives.get('eval:', [''])[0].lower() == 'false' or bool(flags & directives.keys())
    shell = CaptureShell(path)
    with working_directory(path.parent): shell.run_all(nb, exc_stop=False, preproc=skip)
    failed = [(i, o) for i, c in enumerate(nb.cells) for o in c.get('outputs', []) if o.get('output_type') == 'error']
    for i, o in failed: print(f"  cell {i}: {o['ename']}: {o['evalue'][:300]}")
    print(f"{'passed' if not failed else 'FAILED'} {path.name}: {len(failed)} failing cells")
    return not failed

if __name__ == '__main__':
    args = sys.argv[1:]
    os.environ['IN_TEST'] = '1'
    install()
    if '--self-check' in args: sys.exit(0 if self_check() else 1)
    all_cells = '--all' in args
    paths = [Path(a).resolve() for a in args if not a.startswith('--')]
    results = [test_notebook(p, all_cells) for p in paths]
    sys.exit(0 if all(results) else 1)
