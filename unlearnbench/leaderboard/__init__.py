"""The leaderboard: submissions (validated, recomputed), rankings, and the boards rendered from them."""
