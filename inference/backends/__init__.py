"""Ways to run a torch classifier faster on the CPU: torch fp32/bf16/int8 (optionally compiled) and OpenVINO.

Each backend turns a TorchClassifier into another Classifier with the same labels, input and
model id; `inference.backends.select` builds the configured one, or picks one with `precision = "auto"`.
"""
