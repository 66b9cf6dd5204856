"""Business rules: who may reset, rate limits, what gets audited. Views and jobs call these."""
