"""The dev-only commands: `lc contracts build|check|deploy` (the project's own test contracts) and
`lc run aivm-simulator` (plays Lightchain's AIVM network on a dev chain). The only place of the
command line, with `lc demo`, that imports the dev chain (`devchain`)."""

from __future__ import annotations

import argparse
import json

from cli.settings import Settings
from eventlog.config import PROJECT_ROOT
from eventlog.consumer import StopFlag


def cmd_contracts(settings: Settings, args: argparse.Namespace) -> int:
    from devchain.build import build_artifacts, check_artifacts

    if args.action == "build":
        for path in build_artifacts():
            print(f"wrote {path.relative_to(PROJECT_ROOT)}")
        return 0
    if args.action == "check":
        problems = check_artifacts()
        for problem in problems:
            print(problem)
        print("artifacts match the sources" if not problems else f"{len(problems)} artifact(s) out of date")
        return 1 if problems else 0
    from devchain.deploy import deployment_mismatches, write_deployments
    from devchain.system import LightChallenge

    if args.if_missing:
        mismatches = deployment_mismatches(settings.rpc_url, settings.deployments_path)
        if not mismatches:
            print(f"{settings.deployments_path} matches the chain: nothing to deploy")
            return 0
        print("deploying: " + "; ".join(mismatches))
    system = LightChallenge.deploy(settings.rpc_url)
    path = write_deployments(settings.deployments_path, system.addresses, system.client.chain_id, system.roles)
    print(json.dumps(system.addresses, indent=2))
    print(f"deployments written to {path}")
    return 0


def run_aivm_simulator(settings: Settings, stop: StopFlag) -> None:
    """The local AIVM network (workers and validators) for dev chains; never run against a real one."""
    import threading

    from devchain.aivm_sim import AivmSimulator, SimConfig
    from devchain.system import LightChallenge

    simulator = AivmSimulator(LightChallenge.from_deployments(settings.rpc_url, settings.deployments_path),
                              SimConfig(poll_seconds=0.2))
    worker = threading.Thread(target=simulator.run_forever, name="aivm-simulator", daemon=True)
    worker.start()
    while not stop.wait(0.5) and worker.is_alive():
        pass
    simulator.stop()
    worker.join(30)
