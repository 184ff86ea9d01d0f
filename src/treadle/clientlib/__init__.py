"""The pieces behind :class:`treadle.Client`: database access, registry lookups, run views.

Applications import :class:`treadle.Client` (and :class:`~treadle.clientlib.views.RunInfo`
for type hints); the modules here keep the client small and let ``treadle`` commands reuse
the same connection handling without going through the client's public methods.
"""

from treadle.clientlib.views import InquiryInfo, ItemInfo, RunInfo, TaskInfo

__all__ = ["InquiryInfo", "ItemInfo", "RunInfo", "TaskInfo"]
