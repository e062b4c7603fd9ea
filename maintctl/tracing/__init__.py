"""`maintctl trace`: one item followed from its row to the app's reader.

records.py reads the database's side (the row, its audit rows, its
notification in the outbox), readers.py the stream's (each consumer group:
handed the entry, pending or acknowledged), trace.py puts them in one
timeline and judges the verdict. Nothing here writes: not the database, not
a stream, not a group.
"""
