"""Fine-tuning ResNet-18 on a product catalog: datasets, augmentation, the training loop."""
