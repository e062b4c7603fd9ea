"""What a run tells beside its output: pings and the metrics file, behind one hook interface."""
