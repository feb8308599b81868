"""The run layer: a config (YAML path, `RunConfig` or dict) -> sample table -> DataLoaders -> learner -> fit ->
checkpoints -> report, the same for Jupyter and for every `medvision` command. One module a step or a command,
lowest layer first:
`distributed`, `build`, `schedules`, `folders`, `keys`, `embed`, `train`, `predict`, `demo`, `distill`, `compare`.
`from medvision.all import *` brings all of them; this package re-exports nothing, so that `medvision.run.train` is
the module and `medvision.run.train.train` the command."""
