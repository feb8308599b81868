"Data loading: medvision's DataLoaders (uncached and cached) against a plain torch loader, their growth with the table, and the preflight scan"
from __future__ import annotations
import statistics, sys, time
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

# ---------------------------------------------------------------- 5b. growth with the number of rows
def bench_growth(quick:bool) -> list:
    """Setup, uncached loader epoch, training epoch (ResNet-18, 64 px) and the memory cache's size at 1x, 4x and 16x the MedPix training rows
    (the copies are links under other names, so the cache holds each as its own image, as it would distinct files)"""
    if data_dir('medpix2') is None: return skipped('growth', 'medpix2')
    import tempfile
    from medvision.data.block import medvision_dataloaders
    from medvision.learner import medvision_learner
    base = medpix_subset(64 if quick else 320, 16)
    tmp = Path(tempfile.mkdtemp(prefix='mv-growth-'))
    res = {}
    for k in (1, 4, 16):
        parts = []
        for c in range(k):
            d = tmp/f'copy{c}'; d.mkdir(exist_ok=True)
            links = []
            for i, f in enumerate(base.image):
                l = d/f'{i:05d}.jpg'
                if not l.exists(): l.symlink_to(Path(f).resolve())
                links.append(str(l))
            parts.append(base.assign(image=links) if c == 0 else base[base.split == 'train'].assign(image=[l for l, s in zip(links, base.split) if s == 'train']))
        df = pd.concat(parts).reset_index(drop=True)
        rows = int((df.split == 'train').sum())
        t0 = time.perf_counter(); dls = medvision_dataloaders(df, 'modality', image_size=64, batch_size=32, aug='none', arch='resnet18', seed=0, device=OPTS.dev); t_setup = time.perf_counter() - t0
        t_load = median_time(lambda: [None for _ in dls.train], 2 if quick else 3, warmup=1)
        t0 = time.perf_counter(); cdl = medvision_dataloaders(df, 'modality', image_size=64, batch_size=32, aug='none', arch='resnet18', cache='memory', seed=0, device=OPTS.dev)
        t_csetup = time.perf_counter() - t0
        [None for _ in cdl.train]                                                  # fills the cache
        t_cached = median_time(lambda: [None for _ in cdl.train], 2 if quick else 3, warmup=0)
        nbytes = Path(cdl.train_ds.image_readers()[0].slab.path).stat().st_blocks * 512   # the space this loader's slab holds
        learn = medvision_learner(dls, arch='resnet18', pretrained=False, metrics=[])
        t_train = median_time(lambda: fit1(learn), 1 if quick else 2, warmup=1 if k == 1 else 0)
        res[k] = (rows, t_setup + t_csetup, t_load, t_cached, t_train, nbytes)
        print(f"growth {k}x: {rows} rows, setup {t_setup + t_csetup:.2f} s, loader {t_load:.2f} s, cached {t_cached:.2f} s, train {t_train:.2f} s, cache {res[k][5]/2**20:.0f} MiB", file=sys.stderr, flush=True)
    out = []
    names = ('DataLoaders setup (plain + cached)', 'uncached loader epoch', 'cached loader epoch', 'training epoch (+ validation)', 'memory cache size')
    for j, name in enumerate(names, 1):
        per = [res[k][j] / res[k][0] for k in (1, 4, 16)]                        # cost a row
        cells = ', '.join(f"{k}x ({res[k][0]} rows): " + (f"{res[k][j]/2**20:.1f} MiB" if j == 5 else f"{res[k][j]:.2f} s") for k in (1, 4, 16))
        g = per[2] / per[0]
        unit, u = (1 / 1024, 'KiB') if j == 5 else (1e3, 'ms')
        out.append(('growth', f'{name}, MedPix at 64 px, ResNet-18: {cells}', f'a row at 16x: {per[2] * unit:.3f} {u}', f'a row at 1x: {per[0] * unit:.3f} {u}',
                    f'{g:.2f}x', 'faster than linear' if g > 1.2 else 'slower than linear (a fixed part spread over more rows)' if g < 0.8 else 'linear (a row costs about the same)'))
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
