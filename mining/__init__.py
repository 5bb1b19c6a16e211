"""Rare-event mining: score the unlabeled pool, pick windows worth labeling, label them within a budget."""
