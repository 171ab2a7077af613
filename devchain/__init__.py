"""The project's own Solidity contracts (same events and functions as the real ones), their compiled
artifacts, deployment onto anvil, scenario drivers that produce every indexed event, and a local AIVM
network simulator.

Modules: `build` (compile, write and check artifacts), `client` (artifacts -> web3 contracts, anvil
dev accounts), `deploy` (deploy and wire everything, deployments JSON), `scenario` (real transactions
producing each event), `aivm_sim` (workers and validators of a local AIVM network).
"""
