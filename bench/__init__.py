"The medvision benchmarks: one module per area (`data`, `training`, `inference`, `pneumonia`, `medpix`, `distillation`, `tooling`), run by `bench/run.py`"
