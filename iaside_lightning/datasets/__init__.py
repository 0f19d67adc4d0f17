"""Data sets: planted-band synthetic images with known ground truth, real MNIST digits (MNIST-5k), BlockMNIST
(a digit and a label-independent null block, with signal masks), synthetic digits and loaders for CIFAR-10 or
image folders already on disk."""

from iaside_lightning.datasets.block_mnist import BlockMNIST, make_block_mnist, null_pattern_masks
from iaside_lightning.datasets.block_mnist_datamodule import BlockMNISTDataModule
from iaside_lightning.datasets.block_mnist_digits import load_digits
from iaside_lightning.datasets.local import CIFAR10_NORMALIZATION, LocalImageDataModule, load_cifar10, load_image_folder
from iaside_lightning.datasets.mnist5k import MNIST5kDataModule, load_mnist5k
from iaside_lightning.datasets.planted import PlantedBandDataset, make_planted_band_images
from iaside_lightning.datasets.planted_datamodule import PlantedBandDataModule
from iaside_lightning.datasets.splits import stratified_split, symmetric_label_noise
from iaside_lightning.datasets.synthetic_digits import make_synthetic_digits

__all__ = [
    "BlockMNIST",
    "BlockMNISTDataModule",
    "CIFAR10_NORMALIZATION",
    "LocalImageDataModule",
    "MNIST5kDataModule",
    "PlantedBandDataModule",
    "PlantedBandDataset",
    "load_cifar10",
    "load_digits",
    "load_image_folder",
    "load_mnist5k",
    "make_block_mnist",
    "make_planted_band_images",
    "make_synthetic_digits",
    "null_pattern_masks",
    "stratified_split",
    "symmetric_label_noise",
]
