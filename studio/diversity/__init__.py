"""Diversity metrics, 2-D maps and mode-collapse alarms over document sets."""
