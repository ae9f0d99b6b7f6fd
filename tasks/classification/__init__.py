"""Image classification: ResNets with any registry norm on Fashion-MNIST, CIFAR and ImageNet."""
