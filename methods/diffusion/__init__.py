"""Methods for class-conditional diffusion models (task kind ``diffusion``)."""
