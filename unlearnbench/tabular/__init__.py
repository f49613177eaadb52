"""The regression family: MLP regressors, their training loop and the anamnesis index."""
