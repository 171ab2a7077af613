"""The production chain client: the ABIs of the deployed LightChallenge contracts (`abi/`), one
JSON-RPC client for calls and locally signed transactions (`client`), the deployments file
(`deployments`) and the AIVM protocol's pure encodings (`aivm`). No module here knows the dev chain."""
