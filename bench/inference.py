"Prediction: `medvision predict` and `evaluate` (ONNX Runtime engine by default, and PyTorch) against a plain PyTorch loop and ONNX Runtime on the exported model"
from __future__ import annotations
import numpy as np, torch
import warnings
from pathlib import Path
from bench.common import *

# ---------------------------------------------------------------- 4b. inference: `medvision predict` against plain PyTorch and ONNX Runtime
def bench_inference(quick:bool) -> list:
    """Images/s predicting a folder of MedPix JPEGs at 224 px with a ResNet-18 checkpoint: `predict_files` (what `medvision predict` runs, in
    this process), against plain PyTorch (Dataset + DataLoader + the bare model) and ONNX Runtime on the exported model (the same loader)"""
    if data_dir('medpix2') is None: return skipped('inference', 'medpix2')
    import tempfile, onnxruntime as ort
    from medvision.data.block import medvision_dataloaders
    from medvision.learner import medvision_learner, bare
    from medvision.checkpoint import save_checkpoint
    from medvision.run.predict import predict_files, export_model
    n = 64 if quick else 512
    df = medpix_subset(n)   # training rows of both modalities, then 32 dev rows
    tmp = Path(tempfile.mkdtemp(prefix='mv-bench-'))
    imgs = tmp/'images'; imgs.mkdir()
    files = df[df.split == 'train'].image.tolist()
    for i, f in enumerate(files): (imgs/f'{i:05d}.jpg').symlink_to(Path(f).resolve())
    dls = medvision_dataloaders(df, 'modality', image_size=224, batch_size=64, aug='none', arch='resnet18', seed=0)
    learn = medvision_learner(dls, arch='resnet18', pretrained=False, metrics=[])
    ck = save_checkpoint(learn, tmp/'resnet18')
    onnx_file = export_model(ck, 'onnx', tmp/'resnet18.onnx')
    spec = dls.spec
    model = bare(learn.model).eval().to(OPTS.dev)
    ordered = sorted(imgs.iterdir())
    loader = lambda: torch.utils.data.DataLoader(plain_images([str(f) for f in ordered], np.zeros(len(ordered), int), 224, spec.mean, spec.std), batch_size=64)
    def plain():
        with torch.no_grad():
            for x, _ in loader(): model(x.to(OPTS.dev))
        sync()
    so = ort.SessionOptions(); so.intra_op_num_threads = torch.get_num_threads()
    sess = ort.InferenceSession(str(onnx_file), so, providers=['CUDAExecutionProvider', 'CPUExecutionProvider'] if OPTS.dev == 'cuda' else ['CPUExecutionProvider'])
    def onnx_run():
        for x, _ in loader(): sess.run(None, {'image': x.numpy()})
    def mv(engine='auto'):
        with warnings.catch_warnings(): warnings.simplefilter('ignore'); return predict_files(ck, imgs, batch_size=64, engine=engine)
    used = mv().attrs['engine']                                 # the default's engine here (its graph exported and cached by this call)
    from medvision.evaluate import evaluate
    from medvision.engine import engine_graph
    engine_graph(ck)
    edf = df.drop(columns='group', errors='ignore').assign(split=np.where(np.arange(len(df)) % 8 == 0, 'train', 'valid'))   # most rows evaluated
    edl = medvision_dataloaders(edf, 'modality', image_size=224, batch_size=64, aug='none', arch='resnet18', seed=0, cache='memory')
    ev = lambda engine: evaluate(ck, edl, engine=engine, cams=0, bootstrap=0)
    t = interleaved({'mv': mv, 'mv_torch': lambda: mv('torch'), 'plain': plain, 'onnx': onnx_run, 'ev': lambda: ev('auto'), 'ev_torch': lambda: ev('torch')},
                    2 if quick else 5)
    k, ke = len(ordered), len(edl.valid_ds)
    return [('inference', f'`medvision predict` (predict_files: the checkpoint loaded, {k} JPEGs read, checked, decoded once) -> 224 px, ResNet-18, bs 64, '
             f'default engine (auto: {used} here), images/s', f"{k/t['mv']:.0f} img/s", f"ONNX Runtime on the exported model, plain loader {k/t['onnx']:.0f} img/s",
             f"{t['onnx']/t['mv']:.2f}x", f"at ONNX Runtime's speed (>= 0.95x): {'met' if t['onnx']/t['mv'] >= 0.95 else 'MISSED'}"),
            ('inference', 'the same, against plain PyTorch (Dataset + DataLoader + the bare model)', f"{k/t['mv']:.0f} img/s",
             f"plain PyTorch {k/t['plain']:.0f} img/s", f"{t['plain']/t['mv']:.2f}x", at_least(t['plain']/t['mv'], 1.0)),
            ('inference', '`medvision predict --engine torch` (fastai get_preds on the PyTorch model)', f"{k/t['mv_torch']:.0f} img/s",
             f"plain PyTorch {k/t['plain']:.0f} img/s", f"{t['plain']/t['mv_torch']:.2f}x", at_least(t['plain']/t['mv_torch'], 1.0)),
            ('inference', 'ONNX Runtime on the exported model (`medvision export`), the same plain loader', f"{k/t['onnx']:.0f} img/s",
             f"plain PyTorch {k/t['plain']:.0f} img/s", f"{t['plain']/t['onnx']:.2f}x", '-'),
            ('inference', f'`evaluate` of the checkpoint on {ke} cached MedPix rows at 224 px (no bootstrap, no Grad-CAM), default engine (auto: {used}) vs --engine torch',
             f"{ke/t['ev']:.0f} img/s", f"torch engine {ke/t['ev_torch']:.0f} img/s", f"{t['ev_torch']/t['ev']:.2f}x", at_least(t['ev_torch']/t['ev'], 1.0))]
