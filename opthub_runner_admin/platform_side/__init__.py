"""OptHub's side of the contract, played locally, and the harness that runs runners against it.

The demo, the tests and the benchmarks share it: the emulators (moto,
MiniStack), the table and the queues as the platform makes them, Solution
items and queue bodies as it writes them, config files pointing at a local
stack, runner processes and a second Docker daemon. The runner itself never
imports it. Keys and bodies are built from the definitions the runner parses
(``store/items.py``, ``jobs/messages.py``), so that the contract is spelt once.
"""
