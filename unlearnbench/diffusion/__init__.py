"""Class-conditional diffusion models (the ``diffusion`` task kind): the model library
(:mod:`unlearnbench.diffusion.model`: diffusers' ``UNet2DModel`` with a class embedding, the
noise-prediction loss, DDIM sampling, the one-step generator of Score Forgetting
Distillation), the family (:mod:`unlearnbench.diffusion.family`) and what several
diffusion methods share (:mod:`unlearnbench.diffusion.recipes`). ``diffusers`` is the
optional extra ``unlearnbench[diffusion]``."""
