"Distillation: the cost of a live teacher, and whether distilling pays on MedPix"
from __future__ import annotations
import sys, time
import numpy as np, pandas as pd
from bench.common import *

# ---------------------------------------------------------------- 4. distillation
def bench_distill(quick:bool) -> list:
    "One epoch of a ResNet-18 student: alone, with a live ResNet-50 teacher, with the teacher's outputs cached"
    from medvision.learner import medvision_learner, bare
    from medvision.distill import DistillationCallback
    nb, bs, sz = (4, 32, 64) if quick else (16, 32, 64)
    xs, ys, dls = fixed_data(nb, bs, sz)
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
    root = data_dir('medpix2')
    if root is None: return skipped('distillation pays', 'medpix2')
    from medvision.core import seed_everything
    from medvision.test_utils import tmp_dir
    from medvision.data.readers import read_medpix
    from medvision.data.block import medvision_dataloaders
    from medvision.text import text_encoder, embed_texts
    from medvision.distill import train_teacher, distill_student
    from medvision.evaluate import predict
    df = read_medpix(root)
    if quick: df = pd.concat([df[df.split == 'train'].sample(n=150, random_state=0), df[df.split != 'train']]).reset_index(drop=True)
    df['emb'] = list(embed_texts(df.text, text_encoder('minilm', max_length=64), cache=CACHE/'medpix_minilm.npz', progress=False))
    sz, t_epochs, s_epochs, seeds = (64, 1, 1, (0,)) if quick else (96, 6, 10, (0, 1, 2))
    kw = dict(image_size=sz, batch_size=32, text='embeddings', text_emb='emb', arch=DISTILL_TEACHER)   # one preprocessing (the teacher's statistics) for all
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
            cis.setdefault(loss or 'alone', []).append(ci_mean_f1(predict(l, test_dl, progress=False), tasks))
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
                     f'95% bootstrap interval of one run (mean ends over seeds) {ci_text(cis[name])}',
                     mean_sd(v), f'student alone {mean_sd(res["alone"])}', f'{np.mean(v) - alone:+.3f}; {np.mean(v)/t_score:.0%} of teacher', goal))
    return rows
