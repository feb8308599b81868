"""What every bench section shares: the options of the run (`OPTS`), timing, the data, the rows and their intervals.

A section is a function `bench_<name>(quick) -> list` of rows `(area, what, medvision, baseline, ratio, goal)` (`Row`)."""
from __future__ import annotations
import os, platform, statistics, time
from collections import namedtuple
from pathlib import Path
from types import SimpleNamespace
import numpy as np, pandas as pd, torch

HERE = Path(__file__).parent
ROOT, CACHE = HERE.parent, HERE/'.cache'
OPTS = SimpleNamespace(dev='cpu', cells=None)   # `--device`, and `--cells`: the grid cells ('64 px, ImageNet, one-cycle') to run
Row = namedtuple('Row', 'area what medvision baseline ratio goal')
__all__ = ['HERE', 'ROOT', 'CACHE', 'OPTS', 'Row', 'machine', 'median_time', 'interleaved', 'at_least', 'at_most', 'wanted', 'row_key',
           'sync', 'data_dir', 'skipped', 'tensor_dls', 'fixed_data', 'medpix_subset', 'plain_images', 'mean_sd', 'ci', 'ci_mean_f1',
           'ci_text', 'fit1', 'RECIPES']

def machine() -> str:
    cpu = platform.processor() or ''
    try: cpu = next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except Exception: pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'
    cpu += f" ({torch.backends.cpu.get_cpu_capability()})"   # one model name covers AVX2 and AVX-512 parts (bf16 speed differs)
    return f"{cpu}, {os.cpu_count()} cores ({torch.get_num_threads()} torch threads), {gpu}, torch {torch.__version__}"

def median_time(f, reps:int, warmup:int=1) -> float:
    for _ in range(warmup): f()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)

def interleaved(fs:dict, reps:int, warmup:int=1) -> dict:
    "Median seconds of each function in `fs`, run in turn `reps` times after `warmup` rounds (drift on a shared machine hits all alike)"
    for _ in range(warmup):
        for f in fs.values(): f()
    ts = {k: [] for k in fs}
    for _ in range(reps):
        for k, f in fs.items():
            t0 = time.perf_counter(); f(); ts[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in ts.items()}

def at_least(r:float, target:float) -> str: return f">= {target:g}x: {'met' if r >= target else 'MISSED'}"

def at_most(r:float, target:float) -> str: return f"<= {target:g}x: {'met' if r <= target else 'MISSED'}"

def wanted(label:str) -> bool: return OPTS.cells is None or any(c in label for c in OPTS.cells)

def row_key(line:str) -> tuple:
    "A RESULTS.md row's identity: its area and its 'what' up to the first ' (' (the measured minutes that follow vary from run to run)"
    c = line[2:].split(' | ')
    return c[0], c[1].split(' (')[0] if len(c) > 1 else ''

def sync():
    if OPTS.dev == 'cuda': torch.cuda.synchronize()

def data_dir(name): 
    root = os.environ.get('MEDVISION_DATA')
    return Path(root)/name if root and (Path(root)/name).exists() else None

def skipped(area, name): return [(area, f'skipped: $MEDVISION_DATA/{name} not found', '-', '-', '-', '-')]

# ---------------------------------------------------------------- 2. training loop overhead
def tensor_dls(xs, ys, bs, n_classes=2):
    "fastai DataLoaders serving the same pre-made batches as the plain loop (`bs=None`: no collation), with what medvision_learner reads"
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader
    batches = [(xs[i:i + bs], ys[i:i + bs]) for i in range(0, len(xs), bs)]
    dls = DataLoaders(DataLoader(batches, bs=None, shuffle=False), DataLoader(batches[:1], bs=None), device=OPTS.dev)
    from medvision.data.block import InputSpec
    dls.spec = InputSpec(['label'], {'label': list(range(n_classes))}, tuple(xs.shape[-2:]), xs.shape[1])
    dls.tasks, dls.vocabs, dls.text, dls.n_inp = ["label"], {"label": list(range(n_classes))}, None, 1
    return dls

def fixed_data(nb:int, bs:int=32, sz:int=64):
    "`nb` batches of random images and binary labels, and fastai DataLoaders serving them in order"
    torch.manual_seed(0)
    xs, ys = torch.randn(nb * bs, 3, sz, sz).to(OPTS.dev), torch.randint(0, 2, (nb * bs,)).to(OPTS.dev)
    return xs, ys, tensor_dls(xs, ys, bs)

# ---------------------------------------------------------------- 2c. peers: vanilla fastai and a timm-style loop on the same work
def medpix_subset(n:int, n_valid:int=32):
    from medvision.data.readers import read_medpix
    df = read_medpix(data_dir('medpix2'))
    # training rows of both modalities (MedPix's first 878 are all CT: a one-class task, which the DataLoaders refuse)
    trn = df[df.split == 'train'].groupby('modality', group_keys=False).head(n // 2)
    return pd.concat([trn, df[df.split == 'valid'].head(n_valid)]).reset_index(drop=True)

def plain_images(files, labels, sz:int, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
    "A plain torch Dataset: PIL decode, squish to `sz`, normalise (as timm's and most hand-written scripts do)"
    from PIL import Image
    m, s = torch.tensor(mean).view(3, 1, 1), torch.tensor(std).view(3, 1, 1)
    class Plain(torch.utils.data.Dataset):
        def __len__(self): return len(files)
        def __getitem__(self, i):
            im = Image.open(files[i]).convert('RGB').resize((sz, sz), Image.BILINEAR)
            x = torch.from_numpy(np.asarray(im, dtype=np.uint8)).permute(2, 0, 1).float().div_(255)
            return (x - m) / s, labels[i]
    return Plain()

# ---------------------------------------------------------------- 7b. transfer-learning recipes on PneumoniaMNIST
def mean_sd(xs) -> str: return f"{np.mean(xs):.3f} ± {np.std(xs, ddof=1) if len(xs) > 1 else 0:.3f}"   # sample std over seeds

def ci(y, p, metric:str) -> tuple:
    "The 95% stratified bootstrap interval `(lo, hi)` of `metric` on one seed's test predictions (1000 resamples, as the reports draw them)"
    from medvision.metrics import bootstrap_table
    r = bootstrap_table(y, p, names=[metric]).iloc[0]
    return r['lo'], r['hi']

def ci_mean_f1(pr:dict, tasks:list, n_boot:int=1000, level:float=0.95) -> tuple:
    "95% bootstrap interval of the mean over `tasks` of the macro F1, every task on the same resamples (stratified by the first task)"
    from medvision.metrics import bootstrap_indices, f1_macro
    ys, ps = [np.asarray(pr[t][0]) for t in tasks], [np.asarray(pr[t][1]) for t in tasks]
    vals = [np.mean([f1_macro(y[i], p[i]) for y, p in zip(ys, ps)]) for i in bootstrap_indices(ys[0], None, n_boot, 0)]
    return tuple(np.quantile(vals, [(1 - level) / 2, (1 + level) / 2]))

def ci_text(cis) -> str: 
    "Per-seed intervals summarised by the mean of their ends: the width a single run's figure carries"
    lo, hi = np.mean(cis, axis=0)
    return f"[{lo:.3f}, {hi:.3f}]"

def fit1(learn):
    with learn.no_logging(), learn.no_bar(): learn.fit(1, 1e-3)
    sync()

import medvision.stages   # noqa: E402,F401  (adds `Learner.fine_tune_medical`)
RECIPES = {   # name -> (pretrained, how to fit `epochs` epochs in all)
    'scratch, one-cycle':      (False, lambda l, n: l.fit_one_cycle(n, 3e-3)),
    'ImageNet, one-cycle':     (True,  lambda l, n: l.fit_one_cycle(n, 1e-3)),
    'ImageNet, fastai fine_tune': (True, lambda l, n: l.fine_tune(n - 1, base_lr=2e-3, freeze_epochs=1)),
    'ImageNet, medical two-stage': (True, lambda l, n: l.fine_tune_medical(stage1_epochs=1, stage1_lr=1e-3, stage2_epochs=n - 1, head_lr=1e-3,
                                                                           backbone_lr=2e-4, eta_min=1e-6, patience=n)),
}
