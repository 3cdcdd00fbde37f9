"""The billing API (contract §3): checkout, the subscriber\x27s own subscription, payment webhooks."""
