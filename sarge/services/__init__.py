"""Backing services: one Redis, Memcached or RabbitMQ server per app, run by the home's
supervisord beside the app's instances (``sarge HOME service``).

The package: :mod:`.manager` (add, list, remove, back up: what the commands call),
:mod:`.store` (the records, and the variables they give instances), :mod:`.programs`
(the supervisord program and the server's configuration), :mod:`.launch` (what the
launcher execs), :mod:`.kinds` (by name) with :mod:`.kind` (what every kind is),
:mod:`.redis`, :mod:`.memcached` and :mod:`.rabbitmq`. It imports nothing here, so
that :mod:`sarge.environ` can read the store without the rest.
"""
