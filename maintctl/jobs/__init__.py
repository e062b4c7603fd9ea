"""The app's recurring jobs: their definitions and schedules, their runs, the workers' results read back,
and what list, status, stats and metrics say of them."""
