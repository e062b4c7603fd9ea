"""What the command line, the environment and .env say: Settings (flags > environment > .env), the
flags as given, the Redis URL read once and never shown whole."""
