"""AWS as the runner meets it: the clients, how their errors are sorted, the keys that reach it.

Only this package, ``queue/`` and ``store/`` import boto3 or botocore.
"""
