"""The classifier family: image classifiers, their training loop and forget-set selection."""
