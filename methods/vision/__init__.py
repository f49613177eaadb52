"""Methods for classifier tasks (digits, CIFAR and your own images)."""
