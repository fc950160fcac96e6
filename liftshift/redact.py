"""Keep secrets out of logs, the ledger and reports."""

import re

# The password runs to the last '@' of the URL: one written unencoded may hold '/', '?', '#' or '@'.
_PASSWORD_IN_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@?#\s]*):(?P<pw>\S*)@")
_PASSWORD_PARAM = re.compile(r"(?i)(password|passwd|pwd|secret|token)=([^&\s]+)")


def redact(text: str) -> str:
    """Replace passwords in URLs and key=value pairs with '***'."""
    text = _PASSWORD_IN_URL.sub(lambda m: f"{m['scheme']}{m['user']}:***@" if m["pw"] else m[0], text)
    return _PASSWORD_PARAM.sub(lambda m: f"{m[1]}=***", text)
