"""What a person runs besides the service: the demo and its evaluation, fine-tuning, soak, bench."""
