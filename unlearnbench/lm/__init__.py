"""The language-model family: prompt formats, loading, training, the scoring engine, concept
vectors, quantization and the synthetic worlds (TOFU- and MUSE-style)."""
