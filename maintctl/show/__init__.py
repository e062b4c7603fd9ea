"""What people read: a run's report (text, table, JSON), the views of history, stats, status and doctor,
and the questions status and stats ask."""
