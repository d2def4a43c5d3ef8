"""The process around a run: `streamrec run`, signals, sd_notify and the watchdog, logs, exit codes, a fast exit."""
