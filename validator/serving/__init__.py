"""Serving the validator: our own small HTTP/1.1 server, with the Flask app behind it.

A master process (master.py) holds the data directory's lock and the listening socket, forks
the workers and the outbox sender and keeps them running. Each worker (worker.py) runs one
asyncio event loop that reads every request whole, within sizes and times
(connection.py, on h11), so a slow client holds no thread; complete requests run on a pool
of threads (wsgi.py), so that those in flight at once share the store's group commit. The
workers take new connections in turn (turns.py, table.py). docs/adr/0003-serving.md says why
this and not gunicorn, waitress or granian.
"""

from validator.serving.connection import Limits
from validator.serving.master import Master

__all__ = ["Limits", "Master"]
