"""What one published version of a workflow is, as both clients return it.

Apart from :mod:`treadle.clientlib.versions` (which reads versions from the database) so
that the API client, which has no database, does not import the store to describe them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class VersionInfo:
    """One published version of a workflow and how many runs were started on it."""

    ref: str
    version: int
    content_hash: str
    author: str | None
    created_at: datetime
    dialect: str
    runs: int
    #: Who owns the definition: a workspace, or '' when every workspace shares it.
    workspace: str = ""

    @property
    def short_hash(self) -> str:
        return self.content_hash[:12]
