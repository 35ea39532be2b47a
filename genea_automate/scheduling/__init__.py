"""Time-driven work: cron expressions, timed rules and expiring waits."""
