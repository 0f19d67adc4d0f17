"""Small reference models for examples, configs and tests."""

from iaside_lightning.models.adversarial import AdversarialCNNClassifier
from iaside_lightning.models.small_cnn import SmallCNNClassifier

__all__ = ["AdversarialCNNClassifier", "SmallCNNClassifier"]
