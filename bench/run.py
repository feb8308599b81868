"""medvision benchmarks: every speed figure is a ratio to a plain PyTorch baseline timed in the same run
(median of several repetitions after a warm-up); accuracy figures are set against published tables.

    python bench/run.py [--quick] [--only SECTION ...] [--cells TEXT ...] [--device cpu|cuda]

Each section (a function of one of the area modules beside this file) writes `bench/results/<section>.json`: its rows, the
date, the command, the minutes and the machine of its last run. `bench/RESULTS.md` is made from those files, each section's
table under the date and command it was measured with. `--quick` runs every section at its smallest and writes to
`bench/results/quick/` (figures for checking that each section runs, not for quoting). Needs $MEDVISION_DATA (MedPix 2.0
and PneumoniaMNIST) for the data, accuracy and MedPix sections; they say so in their rows when it is unset.
"""
import argparse, datetime, gc, json, os, sys, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # `bench` as a package, run as a script
import torch
torch.set_num_threads(int(os.environ.get('MEDVISION_BENCH_THREADS', os.cpu_count() or 1)))  # pinned: every figure of a run uses the same threads
from bench import data, training, inference, pneumonia, medpix, distillation, tooling
from bench.common import HERE, OPTS, Row, machine, row_key

SECTIONS = {   # section -> its function, in the order of RESULTS.md
    'data': data.bench_data, 'loop': training.bench_loop, 'compile': training.bench_compile, 'peers': training.bench_peers,
    'inference': inference.bench_inference, 'growth': data.bench_growth, 'multimodal': training.bench_multimodal,
    'distill': distillation.bench_distill, 'mixed_precision': training.bench_mixed_precision, 'fast_default': training.bench_fast_default,
    'fast_default_accuracy': pneumonia.bench_fast_default_accuracy, 'pneumonia': pneumonia.bench_pneumonia,
    'recipes': pneumonia.bench_recipes, 'pneumonia_goal': pneumonia.bench_pneumonia_goal, 'medpix_recipes': medpix.bench_medpix_recipes,
    'medpix_caption': medpix.bench_medpix_caption, 'medpix': medpix.bench_medpix, 'medpix_goal': medpix.bench_medpix_goal, 'distill_pays': distillation.bench_distill_pays,
    'distill_fraction': distillation.bench_distill_fraction, 'distill_fraction_controls': distillation.bench_distill_fraction_controls,
    'distill_privileged': distillation.bench_distill_privileged, 'distill_teacher_outputs': distillation.bench_distill_teacher_outputs,
    'distill_crossfit': distillation.bench_distill_crossfit,
    'tests': tooling.bench_tests, 'cli': tooling.bench_cli, 'preflight': data.bench_preflight}
RESULTS = HERE/'results'
INTRO = ("Speed figures are medians of several repetitions after a warm-up, each against a plain PyTorch baseline timed in the same run.\n"
         "Each section below was last measured on the date, by the command and on the machine written above its table; "
         "`python bench/run.py --only SECTION` measures it again and rewrites its table here. `python bench/run.py --quick` (every section at "
         "its smallest; 4.0 min on this machine on 2026-12-01) writes to `bench/results/quick/`: its figures check that each section runs.")

def section_file(name:str, quick:bool=False) -> Path: return (RESULTS/'quick' if quick else RESULTS)/f'{name}.json'

def merge_rows(old:list, new:list) -> list:
    "Rows `new` in place of the `old` rows they measure again (same area and what, up to the measured minutes), the others kept, new ones last"
    key = lambda r: row_key('| ' + ' | '.join(r))
    at = {key(r): i for i, r in enumerate(old)}
    out = [list(r) for r in old]
    for r in new:
        if key(r) in at: out[at[key(r)]] = list(r)
        else: out.append(list(r))
    return out

def save_section(name:str, rows:list, command:str, minutes:float, quick:bool=False, cells=None) -> dict:
    "Write the section's JSON: its rows (with `cells`, merged into the rows of its last run), the date, command, minutes and machine"
    f = section_file(name, quick)
    old = json.loads(f.read_text()) if f.exists() else {}
    rows = [list(Row(*r)) for r in rows]
    d = {'section': name, 'date': str(datetime.date.today()), 'command': command, 'minutes': round(minutes, 1), 'machine': machine(),
         'rows': merge_rows(old.get('rows', []), rows) if cells else rows, 'notes': old.get('notes', [])}
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text(json.dumps(d, indent=1, ensure_ascii=False) + '\n')
    return d

def render(folder:Path=RESULTS) -> str:
    "RESULTS.md from the sections' JSON files, in `SECTIONS` order, each table under the date, command and machine of its last run"
    out = ['# medvision benchmarks', '', INTRO, '']
    for name in SECTIONS:
        f = folder/f'{name}.json'
        if not f.exists(): continue
        d = json.loads(f.read_text())
        mins = f" ({d['minutes']} min)" if d.get('minutes') is not None else ''
        out += [f"## {name}", '', f"Last run {d['date']}: `{d['command']}`{mins}, on {d['machine']}.", '']
        out += [*(f"{n}\n" for n in d.get('notes', []))]
        out += ['| area | what | medvision | baseline | ratio | goal |', '| --- | --- | --- | --- | --- | --- |']
        out += [f"| {' | '.join(r)} |" for r in d['rows']] + ['']
    return '\n'.join(out)

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--quick', action='store_true'); ap.add_argument('--only', nargs='*')
    ap.add_argument('--device', default='cpu', choices=('cpu', 'cuda'), help="where the models run (cuda: every section on the GPU)")
    ap.add_argument('--cells', nargs='*', help="with --only: run only the grid cells of `recipes`/`medpix_recipes` (`distill_privileged`: 'loss kd', ...; `distill_crossfit`: 'alone', 'in-sample', 'cross-fitted', its teachers trained whatever it names) whose label ('96 px, ImageNet, "
                    "fastai fine_tune') contains one of these texts; their rows replace the same rows and keep the section's others")
    a = ap.parse_args()
    from medvision.core import plain_if_piped   # into a log (`> bench.log 2>&1`): lines, each progress bar its last frame
    sys.stdout, sys.stderr = plain_if_piped(sys.stdout), plain_if_piped(sys.stderr)
    if a.device == 'cuda' and not torch.cuda.is_available(): sys.exit("--device cuda: no CUDA GPU is visible to torch here")
    if a.only and (bad := [s for s in a.only if s not in SECTIONS]): sys.exit(f"--only: unknown section(s) {bad}; known: {', '.join(SECTIONS)}")
    OPTS.dev, OPTS.cells = a.device, a.cells
    for name, s in SECTIONS.items():
        if a.only and name not in a.only: continue
        cmd = (f"python bench/run.py{' --quick' if a.quick else ''} --only {name}" + (f" --device {a.device}" if a.device != 'cpu' else '')
               + (f" --cells {' '.join(repr(c) for c in a.cells)}" if a.cells else ''))
        t0 = time.time(); rows = s(a.quick); mins = (time.time() - t0) / 60
        save_section(name, rows, cmd, mins, a.quick, a.cells)
        print(f"{name}: {mins * 60:.0f} s", file=sys.stderr, flush=True)
        gc.collect()   # the section's loaders (fastai's hold reference cycles) and their image-cache slabs go before the next one measures
    md = render(RESULTS/'quick' if a.quick else RESULTS)
    if a.quick: (RESULTS/'quick'/'RESULTS.md').write_text(md)
    else: (HERE/'RESULTS.md').write_text(md)
    print(md)

if __name__ == '__main__': main()
