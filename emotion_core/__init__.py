"""emotion_core: fine-tune, evaluate and run text-emotion classifiers.

    from emotion_core import Classifier
    Classifier.from_pretrained().predict("i feel like a new person today")
"""

from .errors import EmotionCoreError
from .labels import EMOTION_LABELS
from .predict import Classifier

__version__ = "0.1.0"
__all__ = ["Classifier", "EmotionCoreError", "EMOTION_LABELS", "__version__"]
