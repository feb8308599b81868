"""medvision benchmarks: every speed figure is a ratio to a plain PyTorch baseline timed in the same run.

    python bench/run.py [--quick]

Rewrites bench/RESULTS.md with the figures, the machine and the date. Sections so far: mixed precision.
"""
import argparse, datetime, os, platform, statistics, sys, time, warnings
from pathlib import Path
warnings.filterwarnings('ignore')
import numpy as np, torch, torch.nn.functional as F

HERE = Path(__file__).parent

def machine() -> str:
    cpu = platform.processor() or ''
    try: cpu = next(l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name'))
    except Exception: pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU'
    return f"{cpu}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__}"

def median_time(f, reps:int, warmup:int=1) -> float:
    for _ in range(warmup): f()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); f(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)

def _goal(r:float, target:float) -> str: return f"> {target:g}x: {'met' if r > target else 'missed'}"

def bench_mixed_precision(quick:bool) -> list:
    "Train steps of a ResNet-18 at 128 px: bf16 autocast vs fp32, in plain PyTorch and through medvision's learner"
    import timm
    from medvision.learner import CPUAutocastCallback
    torch.manual_seed(0)
    bs, sz, n = (16, 96, 3) if quick else (32, 128, 5)
    x, y = torch.randn(bs, 3, sz, sz), torch.randint(0, 2, (bs,))
    model = timm.create_model('resnet18', pretrained=False, num_classes=2)
    opt = torch.optim.AdamW(model.parameters(), 1e-3)
    def step(bf16):
        with torch.autocast('cpu', dtype=torch.bfloat16, enabled=bf16): out = model(x)
        loss = F.cross_entropy(out.float(), y); opt.zero_grad(); loss.backward(); opt.step()
    fp32 = median_time(lambda: step(False), n)
    bf16 = median_time(lambda: step(True), n)
    # the same batch through a fastai Learner, with and without medvision's callback
    from fastai.learner import Learner
    from fastai.data.core import DataLoaders
    from fastai.data.load import DataLoader
    ds = [(x[i], y[i]) for i in range(bs)]
    dls = DataLoaders(DataLoader(ds, bs=bs, shuffle=False, drop_last=True), DataLoader(ds[:2], bs=2))
    def fit(cbs):
        learn = Learner(dls, model, loss_func=torch.nn.CrossEntropyLoss(), cbs=cbs)
        with learn.no_logging(), learn.no_bar(): learn.fit(1, 1e-3)
    mv32 = median_time(lambda: fit([]), n)
    mv16 = median_time(lambda: fit([CPUAutocastCallback()]), n)
    return [('mixed precision', f'train step, ResNet-18 {sz} px, bs {bs}: bf16 autocast (plain PyTorch)', f'{bf16*1e3:.0f} ms',
             f'fp32 plain PyTorch {fp32*1e3:.0f} ms', f'{fp32/bf16:.2f}x', _goal(fp32/bf16, 1.0)),
            ('mixed precision', f'one fastai epoch of that batch with medvision CPUAutocastCallback', f'{mv16*1e3:.0f} ms',
             f'same learner in fp32 {mv32*1e3:.0f} ms', f'{mv32/mv16:.2f}x', _goal(mv32/mv16, 1.0))]

SECTIONS = [bench_mixed_precision]

def main():
    ap = argparse.ArgumentParser(); ap.add_argument('--quick', action='store_true'); a = ap.parse_args()
    rows = []
    for s in SECTIONS:
        t0 = time.time(); rows += s(a.quick); print(f"{s.__name__}: {time.time() - t0:.0f} s", file=sys.stderr)
    head = (f"# medvision benchmarks\n\nMachine: {machine()}  \nDate: {datetime.date.today()}  \n"
            f"Run: `python bench/run.py{' --quick' if a.quick else ''}`\n\n"
            "| area | what | medvision | baseline | ratio | goal |\n| --- | --- | --- | --- | --- | --- |\n")
    (HERE/'RESULTS.md').write_text(head + ''.join(f"| {' | '.join(r)} |\n" for r in rows))
    print((HERE/'RESULTS.md').read_text())

if __name__ == '__main__': main()
