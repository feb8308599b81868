"The test suite's time and the command line's start-up"
from __future__ import annotations
import subprocess, sys, time
from pathlib import Path
from bench.common import *

# ---------------------------------------------------------------- 6. the test suite
def bench_tests(quick:bool) -> list:
    "Wall time of the whole nbdev-test suite (not in --quick)"
    if quick: return [('tests', 'nbdev-test wall time: not run with --quick', '-', '-', '-', '< 10 min')]
    t0 = time.time()
    r = subprocess.run(['nbdev-test'], cwd=ROOT, capture_output=True, text=True)
    t = time.time() - t0
    return [('tests', f'nbdev-test, whole suite ({"passed" if r.returncode == 0 else "FAILED"})', f'{t/60:.1f} min', '-', '-',
             f"< 10 min: {'met' if t < 600 else 'MISSED'}")]

# ---------------------------------------------------------------- 9. command-line start-up
def bench_cli(quick:bool) -> list:
    "Wall time of `medvision --help` and `medvision train --help` in fresh processes, against the bare interpreter (`python -c pass`)"
    exe = str(Path(sys.executable).parent/'medvision')
    def t(cmd): return median_time(lambda: subprocess.run(cmd, capture_output=True, check=True), 3 if quick else 7)
    base, torch_t = t([sys.executable, '-c', 'pass']), t([sys.executable, '-c', 'import torch'])
    rows = []
    for args in (['--help'], ['train', '--help']):
        s = t([exe, *args])
        rows.append(('command line', f"`medvision {' '.join(args)}` wall time, a fresh process (`import torch` alone: {torch_t:.2f} s)", f'{s:.2f} s',
                     f'python -c pass {base:.2f} s', f'{s / base:.1f}x', f"< 2 s: {'met' if s < 2 else 'MISSED'}"))
    return rows
