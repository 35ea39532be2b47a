"""What the daemon shows about itself: probes, metrics and the status page."""
