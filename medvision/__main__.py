"`python -m medvision ...` is the `medvision` command (so `torchrun --nproc_per_node N -m medvision train ...` works)."
from .cli import console

if __name__ == '__main__': console()
