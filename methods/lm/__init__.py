"""Methods for language-model tasks (TOFU, MUSE, WMDP and their synthetic worlds)."""
