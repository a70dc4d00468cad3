"""`ckc serve`: the slot engine (engine.py), OpenAI request checks (protocol.py)
and the Starlette app (app.py)."""
