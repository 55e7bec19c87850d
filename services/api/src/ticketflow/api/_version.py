"""The api's installed version, read once (for /healthz, OpenAPI, --version, the start line)."""

from ticketflow.runtime import package_version

VERSION = package_version("ticketflow-api")
