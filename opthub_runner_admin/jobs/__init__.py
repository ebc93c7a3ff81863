"""What one message means: evaluate a solution or score an evaluation.

Jobs talk to the world only through the seams (store, match source,
executor); they know nothing of click, SQS or DynamoDB item shapes, and the
worker knows nothing of them beyond the ``Handler`` call and its ``Outcome``.
"""
