"""A private network namespace for a test: every packet on its loopback is the test's own, and
nftables rules can cut traffic between the nodes' 127.0.0.x addresses without touching the host.
"""
import os
import shutil
import subprocess
import sys

import harness as h


def enter(flag, needs=()):
    """Re-executes the test under `unshare -n` (once: `flag` is set in the environment of the
    second run) and brings lo up there. Skips the test where namespaces are not allowed or a
    tool in `needs` is missing."""
    if os.environ.get(flag) != "1":
        missing = [tool for tool in ("unshare", "ip", *needs) if shutil.which(tool) is None]
        if missing:
            h.skip("needs " + " and ".join(missing))
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True)
        if probe.returncode != 0:
            h.skip("cannot create a network namespace: " + probe.stderr.decode().strip())
        env = dict(os.environ, **{flag: "1"})
        os.execvpe("unshare", ["unshare", "-n", sys.executable, *sys.argv], env)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def nft(*commands):
    for command in commands:
        subprocess.run(["nft", *command.split()], check=True)


class Firewall:
    """Drops traffic between chosen nodes (by address) until healed."""

    def __init__(self):
        nft("add table inet lab", "add chain inet lab out { type filter hook output priority 0 ; }")

    def cut(self, node, others):
        """Nothing passes between `node` and any of `others`, either way."""
        rules = []
        for other in others:
            rules.append(f"add rule inet lab out ip saddr {node.addr} ip daddr {other.addr} drop")
            rules.append(f"add rule inet lab out ip saddr {other.addr} ip daddr {node.addr} drop")
        nft(*rules)

    def heal(self):
        nft("flush chain inet lab out")
