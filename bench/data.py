"Data loading: medvision's DataLoaders (uncached and cached) against a plain torch loader, their growth with the table, and the preflight scan"
from __future__ import annotations
import gc, os, statistics, sys, time
import numpy as np, pandas as pd, torch
from pathlib import Path
from bench.common import *

# ---------------------------------------------------------------- 1. data loading
def bench_data(quick:bool) -> list:
    """MedPix JPEGs decoded, resized to 224 px and normalised: medvision DataLoaders (uncached, and with the decoded-image cache after
    its first epoch) vs a plain torch Dataset + DataLoader, with 0 and 2 worker processes; the rounds interleaved, so drift hits all alike"""
    root = data_dir('medpix2')
    if root is None: return skipped('data', 'medpix2')
    from medvision.data.block import medvision_dataloaders
    n = 192 if quick else 640
    df = medpix_subset(n)
    files = df[df.split == 'train'].image.tolist()
    Plain = lambda: plain_images(files, np.zeros(len(files), int), 224)
    def timed(dl):   # each batch on the device the model would use (medvision's DataLoaders move it there themselves)
        t0 = time.perf_counter(); k = sum(len(b[0].to(OPTS.dev, non_blocking=True)) for b in dl); sync(); assert k == len(files), k
        return time.perf_counter() - t0
    reps, rows, nb = (3 if quick else 5), [], len(files)
    for nw in (0, 2):
        plain = torch.utils.data.DataLoader(Plain(), batch_size=32, shuffle=True, num_workers=nw, pin_memory=OPTS.dev == 'cuda')
        mv = medvision_dataloaders(df, 'modality', image_size=224, batch_size=32, aug='none', seed=0, num_workers=nw, device=OPTS.dev)
        cached = medvision_dataloaders(df, 'modality', image_size=224, batch_size=32, aug='none', cache='memory', seed=0, num_workers=nw, device=OPTS.dev)
        timed(plain); timed(mv.train)                              # warm-up: the files in the OS cache for both
        t_first = timed(cached.train)                              # decodes and fills the cache (in the workers, with workers)
        tp, tm, tc = [], [], []
        for _ in range(reps): tp.append(timed(plain)); tm.append(timed(mv.train)); tc.append(timed(cached.train))
        t_plain, t_mv, t_cached = map(statistics.median, (tp, tm, tc))
        w = f'{nw} workers' if nw else 'no workers'
        def first_batch():
            t0 = time.perf_counter(); it = iter(cached.train); next(it); t = time.perf_counter() - t0
            for _ in it: pass
            return t
        t_start = statistics.median(first_batch() for _ in range(reps))
        rows += [('data', f'one epoch of {nb} MedPix JPEGs -> 224 px, normalised, bs 32, {w} (images/s)', f'{nb/t_mv:.0f} img/s',
                  f'plain Dataset+DataLoader {nb/t_plain:.0f} img/s', f'{t_plain/t_mv:.2f}x', at_least(t_plain/t_mv, 1.0)),
                 ('data', f'the same with the decoded-image cache (cache=memory), epochs after the first, {w}', f'{nb/t_cached:.0f} img/s',
                  f'plain Dataset+DataLoader {nb/t_plain:.0f} img/s', f'{t_plain/t_cached:.2f}x', at_least(t_plain/t_cached, 4.0)),
                 ('data', f'first epoch with the cache (decoding and filling it), {w}', f'{nb/t_first:.0f} img/s', f'plain {nb/t_plain:.0f} img/s',
                  f'{t_plain/t_first:.2f}x', '-'),
                 ('data', f'cached: the time to the first batch of an epoch, {w} (an epoch wholly in the memory cache runs in the main process: '
                  f'fastai would fork its workers anew for it)', f'{t_start*1e3:.0f} ms', f'the cached epoch {t_cached*1e3:.0f} ms',
                  f'{t_start/t_cached:.2f} of the epoch', '-')]
    return rows

# ---------------------------------------------------------------- 5b. growth with the number of rows, to ISIC size
GROWTH_STEPS = {   # step -> (what the row says, the baseline timed beside it)
    'read': ('table read: `read_sources` of one CSV source, as `medvision train` reads data.sources (paths made absolute, labels, groups, '
             'tabular age/sex, every file checked to exist)', 'pandas.read_csv of the same CSV'),
    'split': ('grouped split: `split_table(valid=0.1, test=0.1, by=group, stratify=label)`, as `build_table` calls it',
              "sklearn GroupShuffleSplit (test, then valid), not stratified"),
    'folds': ('grouped folds: `kfold(k=5, by=group, stratify=label)` of the train+valid rows, as `build_table` calls it',
              'sklearn StratifiedGroupKFold(5) over the same rows'),
    'scan': ('preflight: `scan_images` (SHA-1 of each file and its header; files in the OS cache)', 'bare hashlib SHA-1 loop over the files'),
    'setup': ('DataLoaders setup: `medvision_dataloaders(64 px, bs 64, no aug, no cache)` (table checks, leakage check, vocab, spec, '
              'fastai Datasets)', None),
    'epoch': ('uncached epoch: a full pass over the training DataLoader (decode, squish to 64 px, normalise, batch of 64, no workers); '
              'no model: its per-image cost is constant and measured in `loop`/`peers`', 'plain PIL Dataset + torch DataLoader, same work'),
    'fill': ('first epoch with `cache=memory` (decoding and filling the cache), the same pass', 'plain PIL Dataset + torch DataLoader'),
    'cached': ('cached epoch: the same pass, every image from the memory cache (`cache=memory`, cache_max_gb=5, raised from the default 4.0: '
               'the train+valid rows at 256x need 4.1 GiB)', 'plain PIL Dataset + torch DataLoader (uncached)'),
    'mem': ('peak memory: RSS high-water mark of a fresh process per scale, above its RSS after the imports (all of the steps above, '
            'the memory cache included: its slab pages count once touched)', None),
}

def _growth_links(base:pd.DataFrame, k:int, folder:Path) -> pd.DataFrame:
    "`k` copies of `base` as links in one flat folder (as ISIC's images are), each copy with patient ids of its own; the table a user's CSV holds"
    parts = []
    for c in range(k):
        names = [f'MPX_{c:03d}_{i:05d}.jpg' for i in range(len(base))]
        for n, f in zip(names, base.image): os.symlink(f, folder/n)
        parts.append(pd.DataFrame({'image': names, 'patient_id': [f'{g}_c{c:03d}' for g in base.group], 'label': base.modality.to_numpy(),
                                   'age': base.age.to_numpy(), 'sex': base.sex.to_numpy()}))
    return pd.concat(parts, ignore_index=True)

def growth_scale(csv:str, image_dir:str, reps:int, warmup:int, epoch_reps:int, out:str, threads:int, dev:str):
    "One scale of `bench_growth`, in a process of its own (so its RSS high-water mark is its own): every step timed, written to `out` as JSON"
    import contextlib, hashlib, io, json, resource, warnings
    from sklearn.model_selection import GroupShuffleSplit, StratifiedGroupKFold
    from medvision.data.readers import read_sources
    from medvision.data.splits import split_table, kfold, scan_images
    from medvision.data.block import medvision_dataloaders
    warnings.filterwarnings('ignore'); torch.set_num_threads(threads)
    rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024     # the high-water mark, bytes (Linux gives KiB)
    now = int(Path('/proc/self/statm').read_text().split()[1]) * os.sysconf('SC_PAGE_SIZE')   # resident now, after the imports
    res, quiet = {'rss0': now}, contextlib.redirect_stdout(io.StringIO())      # fastprogress bars print to stdout
    src = {'reader': 'csv', 'csv': csv, 'image_dir': image_dir, 'image_col': 'image', 'targets': {'label': 'label'}, 'group_col': 'patient_id',
           'tabular': ['age', 'sex']}
    t = interleaved({'mv': lambda: res.update(df=read_sources({'sources': [src]})), 'base': lambda: pd.read_csv(csv)}, reps, warmup)
    df = res.pop('df'); res['read'] = (t['mv'], t['base']); res['rows'] = len(df)
    def gss():
        g = df.group.to_numpy()
        rest, te = next(GroupShuffleSplit(1, test_size=0.1, random_state=0).split(df, groups=g))
        tr, va = next(GroupShuffleSplit(1, test_size=0.1 / 0.9, random_state=0).split(rest, groups=g[rest]))
        return rest[tr], rest[va], te
    t = interleaved({'mv': lambda: res.update(sp=split_table(df, valid=0.1, test=0.1, by='group', stratify='label', seed=0)), 'base': gss},
                    reps, warmup)
    sp = res.pop('sp'); res['split'] = (t['mv'], t['base'])
    tv = sp[sp.split.isin(['train', 'valid'])]
    def sgkf():
        fold = np.empty(len(tv), int)
        for i, (_, te) in enumerate(StratifiedGroupKFold(5, shuffle=True, random_state=0).split(tv, tv.label, tv.group)): fold[te] = i
        return fold
    t = interleaved({'mv': lambda: kfold(tv, 5, by='group', stratify='label', seed=0), 'base': sgkf}, reps, warmup)
    res['folds'] = (t['mv'], t['base']); res['tv_rows'] = len(tv)
    files = df.image.tolist()
    def sha_loop():
        for f in files: hashlib.sha1(Path(f).read_bytes()).hexdigest()
    with quiet: t = interleaved({'mv': lambda: scan_images(df), 'base': sha_loop}, reps, warmup)
    res['scan'] = (t['mv'], t['base']); res['rss_tables'] = rss()
    mk = lambda **kw: medvision_dataloaders(sp, 'label', image_size=64, batch_size=64, aug='none', arch='resnet18', seed=0, device=dev,
                                            **kw)
    t = interleaved({'mv': lambda: res.update(dls=mk())}, reps, warmup)
    dls = res.pop('dls'); res['setup'] = (t['mv'], None)
    trn = sp[sp.split == 'train']; res['train_rows'] = len(trn)
    plain = torch.utils.data.DataLoader(plain_images(trn.image.tolist(), pd.factorize(trn.label)[0], 64), batch_size=64, shuffle=True,
                                        num_workers=0)
    def run(dl): return sum(len(b[0]) for b in dl)
    t = interleaved({'mv': lambda: run(dls.train), 'base': lambda: run(plain)}, epoch_reps, int(epoch_reps > 1))
    res['epoch'] = (t['mv'], t['base']); res['rss_epoch'] = rss()
    dls = None; gc.collect()                                                   # the uncached loaders go before the cache is made
    t0 = time.perf_counter(); cdl = mk(cache='memory', cache_max_gb=5.0); res['setup_cached'] = time.perf_counter() - t0
    t0 = time.perf_counter(); run(cdl.train); res['fill'] = (time.perf_counter() - t0, t['base'])
    t = interleaved({'mv': lambda: run(cdl.train)}, epoch_reps, 0)
    res['cached'] = (t['mv'], res['epoch'][1])
    r = cdl.train_ds.image_readers()[0]
    res['slab'] = (Path(r.slab.path).stat().st_blocks * 512, len(r.slots), r.slab.n)
    res['mem'] = (rss() - res['rss0'], None); res['rss'] = rss()
    Path(out).write_text(json.dumps(res))

def bench_growth(quick:bool) -> list:
    """Growth to ISIC size (401,059 images): 1x/16x/64x/256x a MedPix table of linked files (256x = 400,128 rows), each step a user's 400k-row CSV
    goes through, a fresh process per scale; each step's cost a row and its growth (a row at 256x against a row at 1x), beside a plain baseline"""
    if data_dir('medpix2') is None: return skipped('growth', 'medpix2')
    import json, shutil, subprocess, tempfile
    from medvision.data.readers import read_medpix
    scales, n = ((1, 16), 64) if quick else ((1, 16, 64, 256), 1563)
    base = read_medpix(data_dir('medpix2'))
    # --quick: rows of both modalities (the first 64 are all CT, a one-class task the DataLoaders refuse); the full run's
    # first 1563 rows hold both
    base = base.groupby('modality', group_keys=False).head(n // 2) if quick else base.head(n)
    tmp = Path(tempfile.mkdtemp(prefix='mv-growth-')); (tmp/'images').mkdir()
    try:
        table = _growth_links(base, scales[-1], tmp/'images')
        res = {}
        for k in scales:
            csv, out = tmp/f'table{k}.csv', tmp/f'res{k}.json'
            table.head(k * n).to_csv(csv, index=False)
            reps, warmup = (3, 1) if k * n < 50_000 else (1, 0)                # the whole-table steps: median of 3 up to 16x, one run above
            args = json.dumps(dict(csv=str(csv), image_dir=str(tmp/'images'), reps=reps, warmup=warmup, epoch_reps=3 if k * n < 5_000 else 1,
                                   out=str(out), threads=torch.get_num_threads(), dev=OPTS.dev))
            t0 = time.perf_counter()
            code = 'import json, sys; from bench.data import growth_scale; growth_scale(**json.loads(sys.argv[1]))'
            subprocess.run([sys.executable, '-c', code, args], cwd=ROOT, check=True, env={**os.environ, 'PYTHONWARNINGS': 'ignore'})
            res[k] = json.loads(out.read_text())
            steps = ', '.join(f"{s} {res[k][s][0]:.2f} s" for s in GROWTH_STEPS if s != 'mem')
            print(f"growth {k}x: {res[k]['rows']} rows in {time.perf_counter() - t0:.0f} s: {steps}, peak +{res[k]['mem'][0] / 2**20:.0f} MiB",
                  file=sys.stderr, flush=True)
    finally: shutil.rmtree(tmp, ignore_errors=True)
    CACHE.mkdir(exist_ok=True); (CACHE/f"growth{'-quick' if quick else ''}.json").write_text(json.dumps(res))   # the raw figures, kept
    return _growth_rows(res, scales)

def _growth_rows(res:dict, scales:tuple) -> list:
    lo, hi = scales[0], scales[-1]
    rows_of = lambda s, k: res[k]['train_rows'] if s in ('epoch', 'fill', 'cached') else res[k]['tv_rows'] if s == 'folds' else res[k]['rows']
    out = []
    for s, (what, bname) in GROWTH_STEPS.items():
        mem = s == 'mem'
        per = {k: res[k][s][0] / rows_of(s, k) for k in scales}
        u, f = ('KiB', 1 / 1024) if mem else ('µs', 1e6)
        tot = ', '.join(f"{k}x ({rows_of(s, k):,} rows) " + (f"{res[k]['rss'] / 2**20:,.0f} MiB, +{res[k][s][0] / 2**20:,.0f} over the imports "
                                                            f"(+{(res[k]['rss_epoch'] - res[k]['rss0']) / 2**20:,.0f} before the cache, which holds "
                                                            f"{res[k]['slab'][0] / 2**20:,.0f} MiB)" if mem else f"{res[k][s][0]:.2f} s")
                        for k in scales)
        mv = 'a row: ' + ', '.join(f"{k}x {per[k] * f:.1f}" for k in scales) + f' {u}'
        if bname:
            b = {k: res[k][s][1] / rows_of(s, k) for k in scales}
            base = (f"{bname}: a row {lo}x {b[lo] * 1e6:.1f}, {hi}x {b[hi] * 1e6:.1f} µs (growth {b[hi] / b[lo]:.2f}x); "
                    f"medvision's row {per[hi] / b[hi]:.2f}x theirs at {hi}x")
        else: base = '-'
        g = per[hi] / per[lo]
        out.append(('growth', f"{what}: {tot}", mv, base, f"{g:.2f}x",
                    f"a row at {hi}x within 1.5x of a row at {lo}x: {'met' if g <= 1.5 else 'MISSED'}"))
    return out

# ---------------------------------------------------------------- preflight: hashing and headers before training
def bench_preflight(quick:bool) -> list:
    "What the check before the first epoch costs (every MedPix file hashed and its header parsed): against a bare SHA-1 loop over the same files and one plain epoch decoding them"
    root = data_dir('medpix2')
    if root is None: return skipped('preflight', 'medpix2')
    import hashlib
    from PIL import Image
    from medvision.data.readers import read_medpix, read_medmnist
    from medvision.data.splits import scan_images
    df = read_medpix(root)
    if quick: df = df.head(512)
    files = df.image.tolist()
    def sha_loop():
        for f in files: hashlib.sha1(Path(f).read_bytes()).hexdigest()
    class Plain(torch.utils.data.Dataset):
        def __len__(self): return len(files)
        def __getitem__(self, i): return torch.from_numpy(np.asarray(Image.open(files[i]).convert('RGB').resize((224, 224), Image.BILINEAR))).permute(2, 0, 1), 0
    plain = torch.utils.data.DataLoader(Plain(), batch_size=32, num_workers=0)
    def epoch():
        for _ in plain: pass
    t = interleaved({'scan': lambda: scan_images(df), 'sha': sha_loop, 'epoch': epoch}, reps=3 if quick else 5)   # warm-up reads the files into the OS cache for all
    n = len(files)
    rows = [('preflight', f'`scan_images` over {n} MedPix JPEGs (SHA-1 of each file and its header), files in the OS cache', f"{t['scan']*1000:.0f} ms ({n/t['scan']:.0f} img/s)",
             f"bare SHA-1 loop {t['sha']*1000:.0f} ms", f"{t['scan']/t['sha']:.2f}x", '-'),
            ('preflight', 'the same, as a share of one plain epoch decoding those files at 224 px (bs 32, 0 workers)', f"{t['scan']*1000:.0f} ms",
             f"plain epoch {t['epoch']*1000:.0f} ms", f"{t['scan']/t['epoch']:.2f} of an epoch", f"<= 0.25 of an epoch: {'met' if t['scan'] <= 0.25 * t['epoch'] else 'MISSED'}")]
    pm = data_dir('pneumoniamnist.npz')
    if pm is not None:
        pdf = read_medmnist(pm)
        ts = median_time(lambda: scan_images(pdf), 3)
        rows.append(('preflight', f'`scan_images` over the {len(pdf)} PneumoniaMNIST arrays (in memory: SHA-1 of the bytes, shape as header)', f"{ts*1000:.0f} ms", '-', '-', '-'))
    return rows
