"Training: medvision's learner against a hand-written loop, vanilla fastai and a timm-style loop; compile, channels_last, mixed precision, the multimodal step"
from __future__ import annotations
import statistics, sys, time, warnings
from functools import partial
import numpy as np, torch, torch.nn.functional as F
from bench.common import *

def bench_loop(quick:bool) -> list:
    "One epoch of medvision_learner vs a hand-written PyTorch loop: same model, same batches, same optimizer (torch AdamW)"
    from fastai.optimizer import OptimWrapper
    from medvision.learner import medvision_learner, bare
    nb, bs, sz = (6, 32, 64) if quick else (24, 32, 64)
    xs, ys, dls = fixed_data(nb, bs, sz)
    learn = medvision_learner(dls, arch='resnet18', pretrained=False, metrics=[], opt_func=partial(OptimWrapper, opt=torch.optim.AdamW))
    model = bare(learn.model).to(OPTS.dev)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    batches = [(xs[i:i + bs], ys[i:i + bs]) for i in range(0, nb * bs, bs)]
    def plain():
        model.train()
        t0 = time.perf_counter()
        for x, y in batches:
            loss = F.cross_entropy(model(x)['logits_label'], y); opt.zero_grad(); loss.backward(); opt.step()
        sync()
        return time.perf_counter() - t0
    from fastai.callback.core import Callback
    class TrainTimer(Callback):
        "The training phase of the epoch (the learner's validation pass is timed apart)"
        order = -100
        def before_train(self): self.t0 = time.perf_counter()
        def after_train(self): sync(); self.t = time.perf_counter() - self.t0
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
             f'{t_mv*1e3:.0f} ms', f'hand-written loop {t_plain*1e3:.0f} ms', f'{over:.3f}x ({(t_mv - t_plain) / nb * 1e3:+.1f} ms a batch)', at_most(over, 1.03))]

# ---------------------------------------------------------------- 2b. training.channels_last and training.compile
def bench_compile(quick:bool) -> list:
    """One training epoch of a ResNet-18 through medvision's learner with `training.channels_last` (fastai's `ChannelsLast`) and with
    `training.compile` (`CompileModel`: inductor), against the same learner without them, on the same batches; compile's first epoch apart"""
    from fastai.callback.channelslast import ChannelsLast
    from medvision.callbacks import CompileModel
    from medvision.learner import medvision_learner
    nb, bs, sz = (4, 32, 64) if quick else (12, 32, 128)
    xs, ys, dls = fixed_data(nb, bs, sz)
    def epoch_fn(cbs):
        learn = medvision_learner(dls, arch='resnet18', pretrained=False, metrics=[], cbs=cbs)
        def epoch():
            with learn.no_logging(), learn.no_bar(): learn.fit(1, 1e-3)
            sync()
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

def bench_peers(quick:bool) -> list:
    """One epoch (training, then validation) of MedPix JPEGs -> ResNet-18 from scratch, modality, bs 32, no augmentation, 0 workers, the
    same data, model and batch size: medvision against vanilla fastai (`ImageDataLoaders.from_df` + `vision_learner`) and a timm-style loop"""
    if data_dir('medpix2') is None: return skipped('peers', 'medpix2')
    import timm
    from fastai.vision.all import ImageDataLoaders, Resize, Normalize, imagenet_stats, vision_learner
    from medvision.data.block import medvision_dataloaders
    from medvision.learner import medvision_learner
    n, sz = (64, 64) if quick else (480, 128)
    df = medpix_subset(n)
    classes = sorted(df.modality.unique()); y = df.modality.map(classes.index).to_numpy()
    def medvision_epoch():
        dls = medvision_dataloaders(df, 'modality', image_size=sz, batch_size=32, aug='none', arch='resnet18', normalize='imagenet', seed=0, device=OPTS.dev)
        learn = medvision_learner(dls, arch='resnet18', pretrained=False, metrics=[])
        return lambda: fit1(learn)
    def fastai_epoch():
        fdf = df.assign(is_valid=df.split == 'valid')
        dls = ImageDataLoaders.from_df(fdf, path='/', fn_col='image', label_col='modality', valid_col='is_valid', item_tfms=Resize(sz, method='squish'),
                                       batch_tfms=Normalize.from_stats(*imagenet_stats), bs=32, device=OPTS.dev, seed=0)
        learn = vision_learner(dls, 'resnet18', pretrained=False, metrics=[])
        return lambda: fit1(learn)
    def timm_epoch():
        tr, va = (df.split == 'train').to_numpy(), (df.split == 'valid').to_numpy()
        dl_tr = torch.utils.data.DataLoader(plain_images(df.image[tr].tolist(), y[tr], sz), batch_size=32, shuffle=True, pin_memory=OPTS.dev == 'cuda')
        dl_va = torch.utils.data.DataLoader(plain_images(df.image[va].tolist(), y[va], sz), batch_size=64, pin_memory=OPTS.dev == 'cuda')
        model = timm.create_model('resnet18', pretrained=False, num_classes=len(classes)).to(OPTS.dev)
        opt = torch.optim.AdamW(model.parameters(), 1e-3)
        def epoch():
            model.train()
            for x, t in dl_tr:
                x, t = x.to(OPTS.dev, non_blocking=True), t.to(OPTS.dev, non_blocking=True)
                loss = F.cross_entropy(model(x), t); opt.zero_grad(); loss.backward(); opt.step()
            model.eval()
            with torch.no_grad():
                for x, t in dl_va: F.cross_entropy(model(x.to(OPTS.dev)), t.to(OPTS.dev))
            sync()
        return epoch
    t = interleaved({'medvision': medvision_epoch(), 'fastai': fastai_epoch(), 'timm': timm_epoch()}, 2 if quick else 5)
    what = f'one epoch of {n} MedPix JPEGs -> {sz} px + 32 validated, ResNet-18 from scratch, bs 32, 0 workers'
    return [('peers', f'{what}: vanilla fastai (`ImageDataLoaders.from_df`, `vision_learner`: its own head) against medvision', f"medvision {t['medvision']:.2f} s",
             f"fastai {t['fastai']:.2f} s", f"{t['fastai']/t['medvision']:.2f}x", f"medvision {'faster' if t['fastai'] > t['medvision'] else 'SLOWER'}"),
            ('peers', f'{what}: a timm-style loop (torch Dataset + DataLoader, `timm.create_model`, AdamW) against medvision', f"medvision {t['medvision']:.2f} s",
             f"timm-style {t['timm']:.2f} s", f"{t['timm']/t['medvision']:.2f}x", f"medvision {'faster' if t['timm'] > t['medvision'] else 'SLOWER'}")]

# ---------------------------------------------------------------- 3. multimodal: cached embeddings vs a live text encoder
def bench_multimodal(quick:bool) -> list:
    "Train step of image+text models: cached MiniLM embeddings vs MiniLM run (frozen) every step, against the image-only model"
    from medvision.fusion import MultimodalModel
    from medvision.backbones import vision_backbone
    from medvision.text import text_encoder
    torch.manual_seed(0)
    bs, sz = 32, 64
    enc = text_encoder('minilm', max_length=64)
    texts = [f"axial CT of the chest showing a {w} mass in the {s} lobe, case {i}" for i, (w, s) in
             enumerate(zip(['small', 'large', 'spiculated', 'round'] * 8, ['upper', 'lower'] * 16))]
    toks = enc.tokenize(texts)
    with torch.no_grad(): emb = enc(toks)
    x, y, emb, toks = torch.randn(bs, 3, sz, sz).to(OPTS.dev), torch.randint(0, 2, (bs,)).to(OPTS.dev), emb.to(OPTS.dev), toks.to(OPTS.dev)
    def stepper(m, *inp):
        opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], 1e-3)
        def step():
            loss = F.cross_entropy(m(x, *inp)['logits_label'], y); opt.zero_grad(); loss.backward(); opt.step(); sync()
        return step
    mk = lambda text: MultimodalModel(vision_backbone('resnet18', pretrained=False), text=text, tasks={'label': 2}).train().to(OPTS.dev)
    t = interleaved({'img': stepper(mk(None)), 'emb': stepper(mk(emb.shape[1]), emb), 'live': stepper(mk(enc), toks)}, 5 if quick else 9)
    t_img, t_emb, t_live = t['img'], t['emb'], t['live']
    r = t_emb / t_img
    return [('multimodal', f'train step, ResNet-18 {sz} px + MiniLM caption embeddings (cached), bs {bs}', f'{t_emb*1e3:.0f} ms',
             f'image-only model {t_img*1e3:.0f} ms', f'{r:.3f}x', at_most(r, 1.05)),
            ('multimodal', 'the same with MiniLM (frozen) run on the tokens every step', f'{t_live*1e3:.0f} ms',
             f'cached embeddings {t_emb*1e3:.0f} ms', f'{t_live/t_emb:.2f}x slower', 'cache saves this')]

# ---------------------------------------------------------------- 5. mixed precision
def bench_mixed_precision(quick:bool) -> list:
    "Train steps of a ResNet-18 at 128 px: autocast (bf16 on CPU; fp16 and bf16 on a GPU) vs fp32, in plain PyTorch and through medvision's learner"
    import timm
    from medvision.precision import mixed_precision
    torch.manual_seed(0)
    bs, sz, n = (16, 96, 3) if quick else (32, 128, 5)
    x, y = torch.randn(bs, 3, sz, sz), torch.randint(0, 2, (bs,))
    model = timm.create_model('resnet18', pretrained=False, num_classes=2)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    dev = OPTS.dev
    model, x, y = model.to(dev), x.to(dev), y.to(dev)
    def step(dtype):
        with torch.autocast(dev, dtype=dtype or torch.float32, enabled=dtype is not None): out = model(x)
        loss = F.cross_entropy(out.float(), y); opt.zero_grad(); loss.backward(); opt.step()
        sync()
    from fastai.learner import Learner
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader
    ds = [(x[i], y[i]) for i in range(bs)]
    dls = DataLoaders(DataLoader(ds, bs=bs, shuffle=False, drop_last=True), DataLoader(ds[:2], bs=2), device=dev)
    def fit(cbs):
        learn = Learner(dls, model, loss_func=torch.nn.CrossEntropyLoss(), cbs=cbs)
        with learn.no_logging(), learn.no_bar(): learn.fit(1, 1e-3)
        sync()
    fp32, mv32 = median_time(lambda: step(None), n), median_time(lambda: fit([]), n)
    rows = []
    from medvision.precision import cpu_bf16
    hw = dev if dev == 'cuda' else f'cpu {torch.backends.cpu.get_cpu_capability()}, native bf16: {cpu_bf16()}'
    for name in (('fp16', 'bf16') if dev == 'cuda' else ('bf16',)):
        low = {'fp16': torch.float16, 'bf16': torch.bfloat16}[name]
        amp = median_time(lambda: step(low), n)
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')   # the emulated-bf16 warning: this row measures what it warns of
            mv16 = median_time(lambda: fit(mixed_precision(name, dev)), n)
        rows += [('mixed precision', f'train step, ResNet-18 {sz} px, bs {bs}: {name} autocast (plain PyTorch, {hw})', f'{amp*1e3:.0f} ms',
                  f'fp32 plain PyTorch {fp32*1e3:.0f} ms', f'{fp32/amp:.2f}x', at_least(fp32/amp, 1.0)),
                 ('mixed precision', f'one fastai epoch of that batch with medvision mixed_precision({name!r})', f'{mv16*1e3:.0f} ms',
                  f'same learner in fp32 {mv32*1e3:.0f} ms', f'{mv32/mv16:.2f}x', at_least(mv32/mv16, 1.0))]
    # small grey images (PneumoniaMNIST's 28 px, one channel, its tutorial's batch of 128): does bf16 pay there too?
    xs, ys = torch.randn(128, 1, 28, 28, device=dev), torch.randint(0, 2, (128,), device=dev)
    small = timm.create_model('resnet18', pretrained=False, num_classes=2, in_chans=1).to(dev)
    sopt = torch.optim.AdamW(small.parameters(), 1e-3)
    def sstep(dtype):
        with torch.autocast(dev, dtype=dtype or torch.float32, enabled=dtype is not None): out = small(xs)
        loss = F.cross_entropy(out.float(), ys); sopt.zero_grad(); loss.backward(); sopt.step()
        sync()
    s32, s16 = median_time(lambda: sstep(None), n), median_time(lambda: sstep(torch.bfloat16), n)
    rows.append(('mixed precision', f'train step, ResNet-18 28 px, 1 channel, bs 128: bf16 autocast (plain PyTorch, {hw})',
                 f'{s16*1e3:.0f} ms', f'fp32 plain PyTorch {s32*1e3:.0f} ms', f'{s32/s16:.2f}x', at_least(s32/s16, 1.0)))
    return rows

# ---------------------------------------------------------------- the fast default: speed, and the share of the machine's peak
def matmul_peak(dtype, n:int=2048, reps:int=5) -> float:
    "FLOP/s of this machine's matrix multiply in `dtype` at the threads torch uses (n x n by n x n, the median of `reps`)"
    a, b = torch.randn(n, n, device=OPTS.dev).to(dtype), torch.randn(n, n, device=OPTS.dev).to(dtype)
    def mm(): torch.mm(a, b); sync()
    return 2 * n ** 3 / median_time(mm, reps)

def forward_flops(model, x) -> float:
    "FLOPs of `model`'s forward pass on batch `x` (every head of a medvision model), counted by torch's FlopCounterMode"
    from torch.utils.flop_counter import FlopCounterMode
    with torch.no_grad(), FlopCounterMode(display=False) as fc: model(x)
    return fc.get_total_flops()

def train_flops(model, x) -> float:
    """FLOPs of one training step (forward and backward) of `model` on batch `x`: three times the forward's, the usual rule (the
    backward computes the gradients of the inputs and of the weights, each as costly as the forward). Not FlopCounterMode's count of
    the backward: torch 2.14's counter takes a grouped convolution's backward as a dense one (a depthwise 3x3 over 64 channels
    counted 65x its forward), which put EfficientNet-Lite0 above the machine's peak"""
    return 3 * forward_flops(model, x)

def bench_fast_default(quick:bool) -> list:
    """One training epoch through medvision's learner with the run's default precision and memory format (`training.mixed_precision` and
    `training.channels_last` left at `auto`, resolved on this machine) against plain fp32 PyTorch on the same batches; images/s and the
    share of this machine's measured matrix-multiply peak (fp32 and bf16) each reaches"""
    import timm
    from fastai.callback.channelslast import ChannelsLast
    from medvision.precision import resolve_precision, channels_last_default, mixed_precision, cpu_bf16, native_bf16
    from medvision.learner import medvision_learner, bare
    dev = OPTS.dev
    n = 1024 if quick else 2048 if dev == 'cpu' else 8192
    if dev == 'cuda': torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32   # fp32 as the convolutions run it
    peak32 = matmul_peak(torch.float32, n)
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')   # emulated bf16 (no native kernels): a smaller product, it is the slow path's peak
        peak16 = matmul_peak(torch.bfloat16, n if native_bf16(dev) else n // 2, 2 if quick else 3)
    prec = resolve_precision('auto', dev)
    hw = dev if dev == 'cuda' else f'cpu {torch.backends.cpu.get_cpu_capability()}, native bf16: {cpu_bf16()}'
    rows = [('fast default', f'matrix multiply peak of this machine ({torch.get_num_threads()} thread(s), {hw})', f'fp32 {peak32/1e9:.0f} GFLOP/s',
             f'bf16 {peak16/1e9:.0f} GFLOP/s', f'{peak16/peak32:.2f}x', '-')]
    grid = (('resnet18', 64, 3),) if quick else (('resnet18', 28, 1), ('resnet18', 64, 3), ('resnet18', 128, 3), ('tf_efficientnet_lite0', 64, 3),
                                                 ('tf_efficientnet_lite0', 128, 3))
    nb, bs = (2, 16) if quick else (6, 32)
    for arch, sz, ch in grid:
        torch.manual_seed(0)
        xs, ys = torch.randn(nb * bs, ch, sz, sz), torch.randint(0, 2, (nb * bs,))
        dls = tensor_dls(xs, ys, bs)
        chl = channels_last_default(dev, prec, sz)
        learn = medvision_learner(dls, arch=arch, pretrained=False, metrics=[], cbs=[*mixed_precision(prec, dev), *([ChannelsLast()] if chl else [])])
        model = timm.create_model(arch, pretrained=False, num_classes=2, in_chans=ch).to(dev)
        opt = torch.optim.AdamW(model.parameters(), 1e-3)
        batches = [(xs[i:i + bs].to(dev), ys[i:i + bs].to(dev)) for i in range(0, nb * bs, bs)]
        def plain():   # the learner's epoch: the training batches, then one validation batch
            model.train()
            for x, y in batches:
                loss = F.cross_entropy(model(x), y); opt.zero_grad(); loss.backward(); opt.step()
            model.eval()
            with torch.no_grad(): F.cross_entropy(model(batches[0][0]), batches[0][1])
            sync()
        def mv():
            with learn.no_logging(), learn.no_bar(): learn.fit(1, 1e-3)
            sync()
        t = interleaved({'plain': plain, 'mv': mv}, 2 if quick else 3)
        flops = train_flops(model, xs[:bs].to(dev)) / bs          # a training image of the plain model
        mflops = train_flops(bare(learn.model), xs[:bs].to(dev)) / bs    # and of the learner's (its heads), as it trains
        ips_mv, ips_plain = nb * bs / t['mv'], nb * bs / t['plain']   # both epochs validate one batch, counted against them
        peak = peak16 if prec == 'bf16' else peak32
        what = (f"one training epoch, {arch} {sz} px, {ch} channel(s), {nb} batches of {bs}: the default ({prec}{', channels-last' if chl else ''}, "
                f"`auto` on this machine) through medvision's learner, both epochs also validating one batch; {mflops/1e9:.2f} GFLOP a training image "
                f"(3x the forward; the plain timm model {flops/1e9:.2f})")
        rows.append(('fast default', what, f"{ips_mv:.0f} img/s, {ips_mv * mflops / peak:.0%} of the {prec} peak",
                     f"plain fp32 PyTorch {ips_plain:.0f} img/s, {ips_plain * flops / peak32:.0%} of the fp32 peak",
                     f"{ips_mv / ips_plain:.2f}x", at_least(ips_mv / ips_plain, 1.0)))
        print(f"fast_default: {arch} {sz} px: {ips_mv:.0f} vs {ips_plain:.0f} img/s", file=sys.stderr, flush=True)
    return rows
