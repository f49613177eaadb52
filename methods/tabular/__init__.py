"""Methods for regression tasks (diabetes and your own table)."""
