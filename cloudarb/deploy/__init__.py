"""Deploy: an optimization's allocation becomes running capacity; the reconciler; metering, costs, budgets."""
