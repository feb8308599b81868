"Everything public in medvision, for notebooks: `from medvision.all import *` (as `fastai.vision.all`)."
from .core import *
from .data.readers import *
from .data.splits import *
from .data.block import *
from .augment import *
from .backbones import *
from .fusion import *
from .losses import *
from .learner import *
from .callbacks import *
from .checkpoint import *
from .metrics import *
from .distill import *
from .evaluate import *
from .embeddings import *
from .run import *
