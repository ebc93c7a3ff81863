"""What an SQS queue URL must look like, checked when the config is read.

The earlier runner took a queue's bare name; this one takes its URL. A name
(or a URL of another region than ``region_name``) passes YAML validation but
then fails every request with a misleading "check the network": better one
line at start naming the fix, and an exit code systemd does not retry.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

#: The region inside an AWS SQS endpoint: sqs.<region>.amazonaws.com (also in VPC
#: endpoint names and in China's amazonaws.com.cn), or the legacy <region>.queue.amazonaws.com.
_AWS_REGION = (
    re.compile(r"(?:^|\.)sqs[.-](?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.(?:vpce\.)?amazonaws\.com"),
    re.compile(r"^(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.queue\.amazonaws\.com"),
)
#: What a queue URL looks like, for the error line.
EXAMPLE = "https://sqs.<region>.amazonaws.com/<account id>/<queue name>"


def queue_url_problem(key: str, url: str, *, region_name: str | None) -> str | None:
    """Why ``url`` (the value of ``key``) is not a usable queue URL, or None when it is.

    The region is compared only for AWS's own endpoints: a local stack
    (``endpoint_url``: moto, LocalStack) has URLs of its own.
    """
    parts = urlsplit(url)
    path = [segment for segment in parts.path.split("/") if segment]
    if parts.scheme not in ("http", "https") or not parts.hostname or len(path) != 2:
        name = " (this version takes the URL, not the queue's name)" if "/" not in url else ""
        return (
            f"'{key}' must be the queue's URL ({EXAMPLE}), got {url!r}{name}: copy it from the"
            " SQS console (the queue's details)"
        )
    host = parts.hostname.lower()
    for pattern in _AWS_REGION:
        found = pattern.search(host)
        if found is None:
            continue
        region = found.group("region")
        if region_name and region != region_name:
            return (
                f"'{key}' is a queue of region {region} but 'region_name' is {region_name}:"
                " set region_name to the queues' and the table's region (or fix the URL)"
            )
        return None
    return None
