"""The RPC extension's old name, kept for homes made before 0.2, whose files name it
(``sarge.rpc:make_interface`` in ``etc/supervisord.conf``): see
:mod:`sarge.supervisord.rpc`. Like it, it imports supervisor, never the rest of sarge."""

from .supervisord.rpc import API_VERSION, SargeNamespace, make_interface  # noqa: F401
