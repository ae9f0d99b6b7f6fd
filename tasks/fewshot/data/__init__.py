"""Few-shot data sets (embedded Fashion-MNIST rotations, UCI digits; CIFAR-FS, Omniglot, mini-ImageNet on disk)
and learn2learn episodes."""
