"""Execution: everything that runs a notebook, and nothing that stores it.

The engine, the kernel manager, the isolation levels, the kernel launcher and zygote,
the meter, the run record models and the executors' wire format live here. None of
these modules imports the store or the workspace's database settings
(`tests/test_layout.py` checks it), so a Dask worker needs neither.
"""
