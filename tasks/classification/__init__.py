"""Image classification: ResNets with any registry norm on Fashion-MNIST, CIFAR and ImageNet."""

from ..registry import register_task

register_task(
    "classification",
    "tasks.classification.task:CLASSIFICATION",
    description="Image classification with CIFAR-style or torchvision ResNets.",
)
