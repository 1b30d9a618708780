"""What the process needs of its host: log lines made safe and rate-limited, and systemd's protocols."""
