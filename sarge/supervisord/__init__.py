"""The supervisord side of sarge: what talks to the home's supervisord, and what it runs.

- :mod:`~sarge.supervisord.client`: the XML-RPC client sarge's commands use (one fault
  translator, into :mod:`sarge.errors`);
- :mod:`~sarge.supervisord.states`: supervisord's process states, named once;
- :mod:`~sarge.supervisord.rpc`: the ``sarge.*`` extension loaded into supervisord;
- :mod:`~sarge.supervisord.launch`: the launcher supervisord runs for every process;
- :mod:`~sarge.supervisord.crashwatch`: the event listener that ends crash loops;
- :mod:`~sarge.supervisord.crashmark`: the crash mark, ``var/run/ID/crashed.json``.

Importing the package imports none of them.
"""
