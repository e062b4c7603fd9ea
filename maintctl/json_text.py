"""JSON text as maintctl writes it (non-ASCII kept as it is), from one encoder
made once: json.dumps with options builds a new encoder for every call."""

import json

encode = json.JSONEncoder(ensure_ascii=False).encode
