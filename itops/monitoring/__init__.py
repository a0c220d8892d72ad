"""Monitoring: Device health from the dedicated poller, incidents and the live dashboard."""
