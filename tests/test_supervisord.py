"""The supervisord side: the client's faults, the extension's version, the crash watch,
and the module names that homes made before 0.2 keep in their files."""

import os
import subprocess

from .conftest import get, kill_home, new, put_server, sarge, start_supervisord


def test_a_home_made_before_0_2_keeps_working(home):
    """Its supervisord.conf and program files name sarge.rpc, sarge.crashwatch and
    sarge.launch: those still load, listen and launch."""
    with open(home.supervisord_conf) as f:
        text = f.read()
    old = (text.replace("sarge.supervisord.rpc:", "sarge.rpc:")
           .replace(" sarge.supervisord.crashwatch ", " sarge.crashwatch "))
    assert old != text and "sarge.supervisord" not in old
    with open(home.supervisord_conf, "w") as f:
        f.write(old)
    start_supervisord(home)
    try:
        instance_id = new(home)
        path = home.program_path(instance_id)
        with open(path) as f:
            program = f.read()
        assert " sarge.supervisord.launch " in program
        with open(path, "w") as f:
            f.write(program.replace(" sarge.supervisord.launch ", " sarge.launch "))
        subprocess.run([os.path.join(home.path, "bin", "supervisorctl"), "update"],
                       check=True, capture_output=True)
        put_server(home, instance_id)
        sarge(home, "start", instance_id, check=True)
        assert get(home.get(instance_id).port)[0] == 200
        assert home.supervisor._call("sarge.getAPIVersion") == "1"
        assert home.supervisor.process("sarge-crashwatch")["statename"] == "RUNNING"
        cmdline = " ".join(open(f"/proc/{home.supervisor.process('sarge-crashwatch')['pid']}"
                                "/cmdline").read().split("\0"))
        assert " sarge.crashwatch " in cmdline
    finally:
        kill_home(home)
